"""docker-compose.redis-ha.yml without a Docker engine: merged over docker-compose.yml as
`docker compose -f docker-compose.yml -f docker-compose.redis-ha.yml` merges it, the result
is a valid Compose file whose Redis nodes and sentinels are health-gated and whose alerter
finds the primary through the sentinels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "docker-compose.yml"
OVERLAY = ROOT / "docker-compose.redis-ha.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
HA_SERVICES = {"redis", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}


def merge(base: Any, over: Any) -> Any:
    """Compose's merge for what these files use: mappings key by key, the rest replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return over


def merged() -> dict[str, Any]:
    base = yaml.safe_load(BASE.read_text())
    over = yaml.safe_load(OVERLAY.read_text())
    over = {k: v for k, v in over.items() if not k.startswith("x-")}
    result: dict[str, Any] = merge(base, over)
    return result


def test_the_merged_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(yaml.safe_load(OVERLAY.read_text()), schema, cls=jsonschema.Draft7Validator)
    jsonschema.validate(merged(), schema, cls=jsonschema.Draft7Validator)


def test_every_redis_node_and_sentinel_is_health_gated_on_the_same_image() -> None:
    services = merged()["services"]
    image = yaml.safe_load(BASE.read_text())["services"]["redis"]["image"]
    for name in HA_SERVICES:
        assert services[name]["image"] == image, name
        assert "healthcheck" in services[name], name
        for dep in services[name].get("depends_on", {}).values():
            assert dep["condition"] == "service_healthy", name
    alerter = services["alerter"]
    for name in ("redis", "sentinel-1", "sentinel-2", "sentinel-3"):
        assert alerter["depends_on"][name]["condition"] == "service_healthy"


def test_the_alerter_asks_the_sentinels_and_waits_for_a_replica() -> None:
    env = merged()["services"]["alerter"]["environment"]
    fields = Settings.model_fields
    for key in env:
        assert key.startswith("MARKETSIGNAL_")
        assert key.removeprefix("MARKETSIGNAL_").lower() in fields, key
    s = Settings(
        redis_sentinels=env["MARKETSIGNAL_REDIS_SENTINELS"],
        redis_sentinel_master=env["MARKETSIGNAL_REDIS_SENTINEL_MASTER"],
        redis_min_replicas=env["MARKETSIGNAL_REDIS_MIN_REPLICAS"],
        redis_password_file=None,
    )
    assert len(s.redis_sentinels) == 3
    assert s.redis_min_replicas == 1
    # The name the sentinels monitor (deploy/redis-ha/sentinel.sh) is the one asked for.
    sentinel = (ROOT / "deploy" / "redis-ha" / "sentinel.sh").read_text()
    assert f"sentinel monitor {s.redis_sentinel_master} redis 6379 2" in sentinel


def test_no_password_on_a_command_and_the_mounted_scripts_exist() -> None:
    services = merged()["services"]
    for name in HA_SERVICES:
        command = " ".join(services[name]["command"])
        assert "REDIS_PASSWORD" not in command, name
        script = command.split()[1]
        assert (ROOT / "deploy" / "redis-ha" / Path(script).name).is_file()
        assert "./deploy/redis-ha:/ha:ro" in services[name]["volumes"]
