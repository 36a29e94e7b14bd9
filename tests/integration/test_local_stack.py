"""deploy/local/stack.sh and kafka.sh on real brokers of their own, beside the shared stack.

Each test runs the script with its own state directory (STACK_STATE) and free ports, so the
brokers it starts never meet the stack the other tests use. The Kafka version is the one in
use (KAFKA_VERSION, as `make test-kafka-compat` sets it, else kafka.sh's default); "the other
version" is the other supported line.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack.sh"
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


def supported_versions() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(KAFKA_SH), "versions"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split() for line in out.splitlines())


VERSIONS = supported_versions()
IN_USE = os.environ.get("KAFKA_VERSION") or VERSIONS["default"]
OTHER = VERSIONS["compat"] if IN_USE.startswith("4.") else VERSIONS["default"]


class LocalKafka:
    """`stack.sh` for Kafka only, in a private state directory on free ports."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.controller_port = free_port()

    def run(self, command: str, version: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.update(
            STACK_STATE=str(self.state),
            STACK_COMPONENTS="kafka",
            KAFKA_VERSION=version,
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_HEAP="256m",
        )
        return subprocess.run(
            ["bash", str(STACK), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def up(self, version: str) -> None:
        done = self.run("up", version)
        assert done.returncode == 0, done.stdout + done.stderr

    def meta(self, version: str) -> dict[str, str]:
        path = self.state / "kafka" / version / "data" / "meta.properties"
        lines = path.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")


@pytest.fixture
def local_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path / "state")
    yield kafka
    kafka.run("down", IN_USE)  # stops whichever version runs: the pid file is the same


def dash_cluster_id() -> str:
    """A random cluster id (16 bytes, base64url) that starts with '-', as 1 in 64 do."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0] = 0xF8 | (raw[0] & 0x03)  # first 6 bits 111110: base64url character 62, '-'
    cid = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert cid.startswith("-")
    assert len(cid) == 22
    return cid


def test_storage_format_accepts_a_cluster_id_that_starts_with_a_dash(
    local_kafka: LocalKafka,
) -> None:
    cid = dash_cluster_id()
    version_dir = local_kafka.state / "kafka" / IN_USE
    version_dir.mkdir(parents=True)
    (version_dir / "cluster.id").write_text(cid)
    local_kafka.up(IN_USE)
    assert local_kafka.meta(IN_USE)["cluster.id"] == cid
    status = local_kafka.run("status", IN_USE)
    assert f"Kafka {IN_USE}" in status.stdout
    assert f"127.0.0.1:{local_kafka.port}" in status.stdout


def test_each_version_keeps_its_own_data_and_a_switch_while_running_is_refused(
    local_kafka: LocalKafka,
) -> None:
    local_kafka.up(IN_USE)
    first = local_kafka.meta(IN_USE)["cluster.id"]
    pid = (local_kafka.state / "run" / "kafka.pid").read_text().strip()

    refused = local_kafka.run("up", OTHER)
    assert refused.returncode != 0
    assert f"kafka {IN_USE} is running" in refused.stderr
    assert "stack.sh down" in refused.stderr
    assert (local_kafka.state / "run" / "kafka.pid").read_text().strip() == pid
    assert not (local_kafka.state / "kafka" / OTHER).exists()

    assert local_kafka.run("down", IN_USE).returncode == 0
    local_kafka.up(OTHER)
    # A new cluster in the other version's own directory; the first one's data is untouched.
    assert local_kafka.meta(OTHER)["cluster.id"] != first
    assert local_kafka.meta(IN_USE)["cluster.id"] == first
    props = (local_kafka.state / "kafka" / OTHER / "server.properties").read_text()
    assert f"log.dirs={local_kafka.state / 'kafka' / OTHER / 'data'}" in props.splitlines()
    assert f"Kafka {OTHER}" in local_kafka.run("status", OTHER).stdout

    # `reset` forgets every version's data.
    assert local_kafka.run("reset", OTHER).returncode == 0
    assert not (local_kafka.state / "kafka").exists()


def test_every_tool_name_is_a_class_in_the_resolved_jars() -> None:
    libs = subprocess.run(
        ["bash", str(KAFKA_SH), "libs"], capture_output=True, text=True, check=True, timeout=600
    ).stdout.strip()
    classes: set[str] = set()
    for jar in Path(libs).glob("*.jar"):
        with zipfile.ZipFile(jar) as zf:
            classes.update(n for n in zf.namelist() if n.endswith(".class"))
    tools = subprocess.run(
        ["bash", str(KAFKA_SH), "tools"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(tools) >= 8
    for line in tools:
        name, cls = line.split()
        assert cls.replace(".", "/") + ".class" in classes, (IN_USE, name, cls)
