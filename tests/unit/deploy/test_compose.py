"""docker-compose.yml and deploy/Dockerfile without a Docker engine: the Compose
Specification schema, and every command, port and healthcheck against the image and CLI."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.cli import COMMANDS, build_parser
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
# service -> (marketsignal subcommand, metrics port from Settings)
SERVICES = {
    "ingestor": ("ingest", Settings.model_fields["ingestor_metrics_port"].default),
    "processor": ("process", Settings.model_fields["processor_metrics_port"].default),
    "alerter": ("alert", Settings.model_fields["alerter_metrics_port"].default),
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(compose(), schema, cls=jsonschema.Draft7Validator)


def test_the_schema_check_catches_a_broken_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["alerter"]["helthcheck"] = broken["services"]["alerter"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_every_service_has_a_healthcheck_and_depends_only_on_healthy_services() -> None:
    services = compose()["services"]
    assert set(services) == {
        "kafka", "redis", "prometheus", "grafana", "ingestor", "processor", "alerter", "history"
    }  # fmt: skip
    # A job that runs to completion (history load --wait) is depended on by its success.
    one_shot = {"history"}
    for name, svc in services.items():
        if name in one_shot:
            assert svc["restart"] == "no", name
        else:
            assert "healthcheck" in svc, name
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep in one_shot:
                assert cond == {"condition": "service_completed_successfully"}, (name, dep)
            else:
                assert cond == {"condition": "service_healthy"}, (name, dep)
                assert "healthcheck" in services[dep]


def test_no_latest_tags_and_kafka_is_the_local_stacks_version() -> None:
    stack = (ROOT / "deploy" / "local" / "stack.sh").read_text()
    version = re.search(r'KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"', stack)
    assert version
    for name, svc in compose()["services"].items():
        image = svc["image"]
        assert ":" in image, (name, image)
        assert not image.endswith(":latest"), (name, image)
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile(), re.M)
    assert base
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))


def test_required_secrets_are_demanded_not_defaulted() -> None:
    text = COMPOSE.read_text()
    assert "${REDIS_PASSWORD:?" in text
    assert "${GRAFANA_ADMIN_PASSWORD:?" in text
    assert not re.search(r"\$\{(REDIS_PASSWORD|GRAFANA_ADMIN_PASSWORD)(:-|-|\})", text)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_command_is_a_real_cli_invocation(service: str) -> None:
    subcommand, _ = SERVICES[service]
    command = compose()["services"][service]["command"]
    assert command[0] == subcommand
    assert subcommand in COMMANDS
    args = build_parser(command).parse_args(command)  # exits (fails) on a bad option
    assert args.command == subcommand
    # Files named on the command line are in the image.
    for arg in command[1:]:
        if arg.startswith("/"):
            assert re.search(rf"^COPY \S+ {re.escape(arg)}$", dockerfile(), re.M), arg


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_healthcheck_probes_the_services_own_readiness_port(service: str) -> None:
    _, port = SERVICES[service]
    svc = compose()["services"][service]
    test = svc["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", test[3])
    assert urls == [(str(port), "/readyz")]
    compile(test[3], "<healthcheck>", "exec")  # the probe is valid Python
    assert svc["image"] == "marketsignal:0.1.0"
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"


def test_dockerfile_exposes_every_port_runs_as_non_root_and_caches_dependencies() -> None:
    text = dockerfile()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    ports = {port for _, port in SERVICES.values()}
    ports.add(Settings.model_fields["processor_web_port"].default)
    assert ports <= exposed
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # multi-stage
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user
    assert user[-1] not in ("root", "0")
    assert re.search(r"MARKETSIGNAL_METRICS_HOST=0\.0\.0\.0", text)
    assert re.search(r'^ENTRYPOINT \["marketsignal"\]$', text, re.M)
    # dependencies installed from pyproject.toml alone, before the sources are copied
    deps = text.index("pip install -r")
    assert text.index("COPY pyproject.toml") < deps < text.index("COPY services")


def test_compose_mounts_exist_in_the_repository() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
    prom = compose()["services"]["prometheus"]
    assert any(
        "prometheus.compose.yml:/etc/prometheus/prometheus.yml" in v for v in prom["volumes"]
    )


def test_the_image_installs_the_live_sources_extras_by_default() -> None:
    # `ingest --yahoo/--akshare/--futu` in a container needs their extras (docs/feeds.md).
    text = dockerfile()
    default = re.search(r'^ARG EXTRAS="([^"]*)"$', text, re.M)
    assert default is not None
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(default.group(1).split()) == {"yahoo", "akshare", "futu"}
    assert set(default.group(1).split()) <= set(optional)
    assert "optional-dependencies" in text  # the install reads them from pyproject.toml
