"""`marketsignal ingest` as a subprocess on the real broker, and what the live-source
tests read back: the ticks on a topic, the ingestor's metrics."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.runtime.settings import Settings
from tests.support import factories
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


# Every source runs with tick bundles (the default since issue 15) and with one tick per
# record (`--no-bundle`, what other producers send): the topic must hold the same ticks.
BUNDLES = pytest.mark.parametrize("bundle", [True, False], ids=["bundles", "single"])


def env_for(settings: Settings, metrics_port: int | None = None, *, bundle: bool) -> dict[str, str]:
    return factories.service_env(
        settings,
        ingestor_metrics_port=metrics_port or 0,
        ingest_bundle="true" if bundle else "false",
    )


def ingest(
    settings: Settings,
    *args: str,
    metrics_port: int | None = None,
    bundle: bool,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """`marketsignal ingest ARGS` in `settings`' namespace, `env` added to its environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "ingest", *args],
        cwd=ROOT,
        env={**env_for(settings, metrics_port, bundle=bundle), **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def csv_line(i: int) -> str:
    return f"Z,{T0_MS + i * 1000},{100 + i}\n"


def prices(records: list[Any]) -> list[float]:
    """The prices of the ticks on a topic, in order: a record holds one tick or a bundle."""
    out: list[float] = []
    for record in records:
        value = json.loads(record.value)
        out.extend(tick["price"] for tick in (value if isinstance(value, list) else [value]))
    return out


def wait_prices(
    read_topic: Callable[..., list[Any]], topic: str, n: int, timeout_s: float = 60.0
) -> list[float]:
    """The topic's tick prices once it holds at least `n` ticks (or at the deadline): the
    number of records depends on how the ingestor bundled them."""
    got: list[float] = []

    def enough() -> bool:
        got[:] = prices(read_topic(topic))
        return len(got) >= n

    # A short list is not this helper's failure: the caller's assertion shows the prices.
    with contextlib.suppress(AssertionError):
        wait_for(f"{n} ticks on {topic}", enough, timeout_s, max_poll_s=0.2)
    return got


def wait_ticks(
    read_topic: Callable[..., list[Any]], topic: str, n: int, timeout_s: float = 90.0
) -> list[dict[str, Any]]:
    """The topic's ticks (`ticks_of`) once it holds at least `n`; fails at the deadline."""
    got: list[dict[str, Any]] = []

    def enough() -> bool:
        got[:] = ticks_of(read_topic(topic))
        return len(got) >= n

    wait_for(f"{n} ticks on {topic}", enough, timeout_s, max_poll_s=0.2)
    return got


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def readyz(port: int) -> int:
    """The ingestor's /readyz status: 200 ready, 503 not (the reason is the body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def has_read_through(port: int, ts_s: float) -> Callable[[], bool]:
    """Whether the ingestor with metrics on `port` has seen a tick stamped `ts_s` or later:
    a feed server's `delivered`, so that it drops the connection only then."""

    def delivered() -> bool:
        try:
            seen = scrape(port).get("marketsignal_ingest_last_tick_timestamp_seconds", 0.0)
        except OSError:
            return False
        return bool(seen >= ts_s)

    return delivered


def wait_metric(port: int, name: str, check: Callable[[float], bool], proc: Any) -> float:
    def passed() -> tuple[float] | None:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            value = scrape(port).get(name)
        except OSError:
            return None
        # In a tuple: a value of 0.0 that passes the check is still an answer.
        return (value,) if value is not None and check(value) else None

    return wait_for(f"{name} to pass its check", passed, 60, max_poll_s=0.2)[0]


def ticks_of(records: list[Any]) -> list[dict[str, Any]]:
    """The ticks of a topic's records, in order: a record holds one tick or a bundle."""
    out: list[dict[str, Any]] = []
    for record in records:
        value = json.loads(record.value)
        out.extend(value if isinstance(value, list) else [value])
    return out
