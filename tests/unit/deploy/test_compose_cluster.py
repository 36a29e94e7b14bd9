"""docker-compose.cluster.yml without a Docker engine: merged over docker-compose.yml as
`docker compose -f docker-compose.yml -f docker-compose.cluster.yml` merges it, the result
is valid Compose, runs three health-checked brokers of the base file's image in one
quorum, and the services wait for all three and create their topics replicated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "docker-compose.yml"
CLUSTER = ROOT / "docker-compose.cluster.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
BROKERS = ("kafka", "kafka-2", "kafka-3")
SERVICES = ("processor", "alerter", "history", "ingestor")


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge rules for what these files use: mappings merge key by key, a
    service's volumes by their target path; any other value is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = merge(base[k], v, k) if k in base else v
        return out
    if key == "volumes" and isinstance(base, list) and isinstance(override, list):
        by_target = {str(v).split(":")[1]: v for v in base}
        by_target.update({str(v).split(":")[1]: v for v in override})
        return list(by_target.values())
    return override


def merged() -> dict[str, Any]:
    data: dict[str, Any] = merge(
        yaml.safe_load(BASE.read_text()), yaml.safe_load(CLUSTER.read_text())
    )
    return data


def test_merged_file_is_valid_compose() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(merged(), schema, cls=jsonschema.Draft7Validator)
    # The override alone is a valid file too (Compose parses each file on its own first).
    jsonschema.validate(yaml.safe_load(CLUSTER.read_text()), schema, cls=jsonschema.Draft7Validator)


def test_three_health_checked_brokers_of_one_image_in_one_quorum() -> None:
    services = merged()["services"]
    images = {services[b]["image"] for b in BROKERS}
    assert images == {yaml.safe_load(BASE.read_text())["services"]["kafka"]["image"]}
    voters = {services[b]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for b in BROKERS}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    ids = [services[b]["environment"]["KAFKA_NODE_ID"] for b in BROKERS]
    assert ids == [1, 2, 3]
    volumes = [services[b]["volumes"] for b in BROKERS]
    # One data volume each, none of them the single broker's.
    assert [len(v) for v in volumes] == [1, 1, 1]
    assert len({v[0].split(":")[0] for v in volumes}) == 3
    assert all("kafka-4.4.0-data" not in v[0] for v in volumes)
    for b in BROKERS:
        env = services[b]["environment"]
        assert "healthcheck" in services[b], b
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3


def test_services_wait_for_every_broker_and_replicate_their_topics() -> None:
    services = merged()["services"]
    for name in SERVICES:
        svc = services[name]
        for b in BROKERS:
            assert svc["depends_on"][b] == {"condition": "service_healthy"}, (name, b)
        env = svc["environment"]
        assert env["MARKETSIGNAL_KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        assert env["MARKETSIGNAL_REPLICATION_FACTOR"] == "3"
        assert env["MARKETSIGNAL_MIN_INSYNC_REPLICAS"] == "2"
        # What the base file gives them stays: the Redis URL with its password.
        assert env["MARKETSIGNAL_REDIS_URL"].startswith("redis://")
