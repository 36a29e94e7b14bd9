"""The Kafka versions the project names agree with each other.

One default (the newest 4.x release that passes the suite) and one compatibility version
(the 3.9 line, `make test-kafka-compat`), named in deploy/local/kafka.sh and repeated in the
pom, stack.sh, docker-compose.yml, the Makefile and the README. The tool names kafka.sh maps to
class names are checked here for both lines; that the classes exist in the resolved jars is
checked on the real libs by tests/integration/test_local_stack.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


def kafka_sh_version(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", KAFKA_SH.read_text(), re.M)
    assert match, name
    return match.group(1)


DEFAULT = kafka_sh_version("DEFAULT_VERSION")
COMPAT = kafka_sh_version("COMPAT_VERSION")


def kafka_sh(*args: str, version: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_VERSION"}
    if version is not None:
        env["KAFKA_VERSION"] = version
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args], env=env, capture_output=True, text=True, check=False
    )


def test_the_default_is_a_4x_release_and_the_compat_version_a_39_release() -> None:
    assert re.fullmatch(r"4\.\d+\.\d+", DEFAULT)
    assert re.fullmatch(r"3\.9\.\d+", COMPAT)
    assert kafka_sh("versions").stdout.split() == ["default", DEFAULT, "compat", COMPAT]


def test_the_pom_stack_and_compose_default_to_the_same_version() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(ROOT / "deploy" / "kafka" / "pom.xml").getroot()
    assert pom.findtext("m:properties/m:kafka.version", namespaces=ns) == DEFAULT
    stack = (ROOT / "deploy" / "local" / "stack.sh").read_text()
    assert f'export KAFKA_VERSION="${{KAFKA_VERSION:-{DEFAULT}}}"' in stack
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{DEFAULT}"
    # The data volume is named after the version: another image version never gets this data.
    volume = f"kafka-{DEFAULT}-data"
    assert f"{volume}:/var/lib/kafka/data" in kafka["volumes"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert volume in compose["volumes"]


def test_the_makefile_tests_the_compat_version_and_the_readme_names_both() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^KAFKA_COMPAT_VERSION \?= {re.escape(COMPAT)}$", makefile, re.M)
    assert re.search(r"^test: .*\n(\t.*\n)*\t\$\(MAKE\) .*test-kafka-compat", makefile, re.M)
    readme = (ROOT / "README.md").read_text()
    assert f"Kafka {DEFAULT}" in readme
    assert f"Kafka {COMPAT}" in readme


@pytest.mark.parametrize(
    ("version", "tool", "cls"),
    [
        (DEFAULT, "api-versions", "org.apache.kafka.tools.BrokerApiVersionsCommand"),
        (COMPAT, "api-versions", "kafka.admin.BrokerApiVersionsCommand"),
        (DEFAULT, "console-producer", "org.apache.kafka.tools.ConsoleProducer"),
        (COMPAT, "console-producer", "kafka.tools.ConsoleProducer"),
        (DEFAULT, "console-consumer", "org.apache.kafka.tools.consumer.ConsoleConsumer"),
        (COMPAT, "console-consumer", "org.apache.kafka.tools.consumer.ConsoleConsumer"),
        (DEFAULT, "storage", "kafka.tools.StorageTool"),
        (COMPAT, "storage", "kafka.tools.StorageTool"),
    ],
)
def test_tools_map_to_the_class_of_the_version_in_use(version: str, tool: str, cls: str) -> None:
    done = kafka_sh("class", tool, version=version)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == cls


def test_each_line_logs_as_its_distribution_does() -> None:
    assert "log4j2.configurationFile=" in kafka_sh("log-opt", "broker", version=DEFAULT).stdout
    assert "-Dlog4j.configuration=file:" in kafka_sh("log-opt", "broker", version=COMPAT).stdout
    for name in ("kafka-log4j2.yaml", "tools-log4j2.yaml"):
        config = yaml.safe_load((ROOT / "deploy" / "local" / name).read_text())
        assert config["Configuration"]["Loggers"]["Root"]["level"] in {"INFO", "WARN"}


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("3.8.1", "only 3.9 is supported"),
        ("2.8.2", "supported lines are 4.x and 3.9"),
        ("4.4", "is not a release number"),
        ("latest", "is not a release number"),
    ],
)
def test_unsupported_versions_are_refused_with_a_reason(version: str, message: str) -> None:
    done = kafka_sh("class", "topics", version=version)
    assert done.returncode != 0
    assert message in done.stderr
