"""`make up` / `make status` / `make down`: the services under supervisord, on the real stack.

deploy/local/services.sh runs here with its own run and log directories, a namespace
and free ports, so it never meets a `make up` of the same machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from services.runtime.settings import Settings
from tests.support.services import ROOT, free_port
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

SERVICES = ROOT / "deploy" / "local" / "services.sh"


def services(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        ["bash", str(SERVICES), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.stdout + proc.stderr


def state(env: dict[str, str], name: str) -> tuple[str, int | None]:
    line = next(
        (x for x in services(env, "status").splitlines() if x.startswith(name)), f"{name} ?"
    )
    pid = re.search(r"pid (\d+)", line)
    return line.split()[1], int(pid.group(1)) if pid else None


def wait_state(env: dict[str, str], name: str, want: str, timeout_s: float = 90) -> int | None:
    """The pid of `name` once supervisord reports it in state `want` (None if it has none)."""

    def reached() -> tuple[int | None] | None:
        got, pid = state(env, name)
        return (pid,) if got == want else None

    # Each poll runs `services.sh status`, a supervisorctl process: no faster than 0.5 s.
    return wait_for(f"{name} {want}", reached, timeout_s, max_poll_s=0.5)[0]


def test_a_crashed_service_is_restarted_and_down_stops_everything(
    settings: SettingsFactory, tmp_path: Path
) -> None:
    s: Settings = settings()
    feed = tmp_path / "ticks.csv"
    feed.write_text("symbol,ts,price\n0700.HK,2026-01-05T09:30:00+08:00,400\n", encoding="utf-8")
    env = {
        **os.environ,
        "SV_RUN": str(tmp_path / "run"),
        "SV_LOGS": str(tmp_path / "logs"),
        "FEED": str(feed),
        "HISTORY": "",  # no daily history to load first
        "MARKETSIGNAL_NAMESPACE": s.namespace,
        "MARKETSIGNAL_PARTITIONS": str(s.partitions),
        "MARKETSIGNAL_STATE_DIR": str(tmp_path / "state"),
        "MARKETSIGNAL_PROCESSOR_WEB_PORT": str(free_port()),
        "MARKETSIGNAL_PROCESSOR_METRICS_PORT": "0",
        "MARKETSIGNAL_ALERTER_METRICS_PORT": "0",
        "MARKETSIGNAL_INGESTOR_METRICS_PORT": "0",
        "MARKETSIGNAL_API_PORT": str(free_port()),
        "MARKETSIGNAL_API_HOST": "127.0.0.1",
    }
    try:
        services(env, "up")
        first = wait_state(env, "processor", "RUNNING")
        wait_state(env, "alerter", "RUNNING")
        wait_state(env, "ingestor", "EXITED")  # the one-shot feed ran to its end
        assert first is not None
        os.kill(first, signal.SIGKILL)

        def restarted() -> int | None:
            got, pid = state(env, "processor")
            return pid if got == "RUNNING" and pid not in (None, first) else None

        pid = wait_for("the processor restarted", restarted, 90, max_poll_s=0.5)
        # `up` again: a no-op for what runs, it starts what exited.
        services(env, "up")
        assert state(env, "processor") == ("RUNNING", pid)
        log = (tmp_path / "logs" / "supervisord.log").read_text()
        assert "exited: processor (terminated by SIGKILL" in log
    finally:
        out = services(env, "down")
    assert "stopped" in out
    assert "supervisord not running" in services(env, "status")
    for name in ("processor", "alerter"):
        assert (tmp_path / "logs" / f"{name}.log").stat().st_size > 0
