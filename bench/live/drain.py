"""The consumers measured on one filled topic: the raw aiokafka limit, the bare faust
ceiling, `marketsignal process` draining the backlog, the Quix Streams peer, and the
backtest that the processor's signals are checked against."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.live.common import (
    BOOTSTRAP,
    CACHE,
    PY,
    ROOT,
    cpu_seconds,
    env_for,
    group_lag,
    log,
    process_args,
    processor_group,
    rate_in,
    rss_mb,
    ticks_evaluated,
    wait,
)
from schemas.pair_feed import PAIR_FEED_TOPIC
from tests.support.services import free_port

QUIX_VENV = CACHE / "venv-quix"
QUIX_PIN = "quixstreams==3.28.1"


def contender(
    args: list[str], out: Path, timeout_s: float, logfile: Path, env: dict[str, str]
) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    with logfile.open("wb") as fh:
        proc = subprocess.run(
            args,
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    if not out.exists():
        raise RuntimeError(f"{args[1:3]} wrote no result (exit {proc.returncode}); see {logfile}")
    return dict(json.loads(out.read_text()))


def limits(topic: str, count: int, logs: Path, env: dict[str, str]) -> dict[str, Any]:
    """The raw aiokafka limit with each decoder, and the bare faust agent (the ceiling)."""
    out: dict[str, Any] = {}
    for decoder in ("json", "orjson"):
        log(f"aiokafka limit ({decoder})")
        result = logs / f"aiokafka-{decoder}.json"
        command = [PY, "bench/contenders.py", "aiokafka", "--topic", topic, "--count", str(count)]
        command += ["--decoder", decoder, "--out", str(result)]
        log_file = logs / f"aiokafka-{decoder}.log"
        out[f"aiokafka_{decoder}"] = contender(command, result, 600, log_file, env)
    log("bare faust agent (the ceiling)")
    result = logs / "faust.json"
    command = [PY, "bench/contenders.py", "faust", "--topic", topic, "--count", str(count)]
    command += ["--out", str(result)]
    out["faust_bare"] = contender(command, result, 900, logs / "faust.log", env)
    return out


def quix_peer(
    topic: str, signals: str, count: int, rules: Path, logs: Path, env: dict[str, str]
) -> dict[str, Any]:
    """The Quix Streams peer on `topic`, its signals written to `signals`."""
    result = logs / "quix.json"
    command = [str(QUIX_VENV / "bin" / "python"), "bench/quix_peer.py", "--bootstrap", BOOTSTRAP]
    command += ["--topic", topic, "--signals", signals, "--count", str(count)]
    command += ["--config", str(rules), "--out", str(result)]
    return contender(command, result, 900, logs / "quix.log", env)


def processor_drain(
    namespace: str, rules: Path, count: int, logs: Path, extra_workers: int = 0
) -> dict[str, Any]:
    """`marketsignal process` on the filled topic: ticks evaluated per second, from its
    own counter (sampled every 50 ms), the wall time until the group's lag is 0, and the
    workers' CPU per tick from the first sample until the lag is 0 (user + system, every
    thread; a few ms of idle polling included): a figure that waits on nothing, steadier
    than the rate on a shared machine."""
    ports = [free_port() for _ in range(1 + extra_workers)]
    env = env_for(namespace, rules)
    procs = []
    files = []
    started = time.perf_counter()
    for i, port in enumerate(ports):
        fh = (logs / f"process-{namespace}{len(ports)}w-{i}.log").open("wb")
        files.append(fh)
        procs.append(
            subprocess.Popen(
                [PY, "-m", "services.cli", *process_args(port)],
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        first = last = 0.0
        evaluated = at_first = 0.0
        cpu_first = cpu_last = 0.0
        deadline = time.monotonic() + max(300.0, count / 500)
        while time.monotonic() < deadline:
            total = 0.0
            for port in ports:
                with suppress(OSError):
                    total += ticks_evaluated(port)
            now = time.perf_counter()
            if total > 0 and not first:
                first, at_first = now, total
                cpu_first = sum(cpu_seconds(p.pid) or 0.0 for p in procs)
            if total >= count:
                last, evaluated = now, total
                break
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"process exited ({p.returncode}); see {logs}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"processor drain timed out at {total:.0f}/{count}")
        group = processor_group(namespace)
        wait(
            "the processor's lag to reach 0",
            # by_pair also carries the leader's heartbeats, a few a second, committed
            # every few seconds: its lag at rest is a handful of heartbeats, never 0.
            lambda: (
                group_lag(group, namespace + "ticks") == 0
                and group_lag(group, namespace + PAIR_FEED_TOPIC) < 100
            ),
            120,
        )
        drained = time.perf_counter() - started
        # At lag 0, not at the last tick evaluated: the pair stage's work is counted whole.
        cpu_last = sum(cpu_seconds(p.pid) or 0.0 for p in procs)
        rss = [rss_mb(p.pid) for p in procs]
    finally:
        # Every worker is told at once, so none waits on a group the others have left.
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for fh in files:
            fh.close()
    # The first sample sees the first batch done: count it out of the window too.
    ticks = evaluated - at_first
    return {
        "rate": ticks / (last - first) if last > first else 0.0,
        "seconds": last - first,
        "cpu_s": cpu_last - cpu_first,
        "cpu_us_per_tick": (cpu_last - cpu_first) / ticks * 1e6 if ticks > 0 else 0.0,
        "lag_drain_wall_s": drained,
        "rss_mb": rss,
        "workers": len(ports),
    }


def backtest(data: Path, rules: Path, out: Path, levels: Path | None = None) -> dict[str, Any]:
    """`marketsignal backtest` of `data` (with `--levels` when given), its signals in `out`."""
    command = [PY, "-m", "services.cli", "backtest", str(data), "--config", str(rules)]
    command += [] if levels is None else ["--levels", str(levels)]
    started = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run(
            command,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.PIPE,
            check=False,
        )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode()[-2000:])
    summary = proc.stderr.decode().strip().splitlines()[-1]
    return {"rate": rate_in(summary), "wall_s": wall, "summary": summary}


def quix_available() -> bool:
    """The peer's own virtualenv (its pins clash with ours), created on first use. An
    install that failed (no network, e.g. inside a private namespace) leaves a venv without
    the package: checked by importing it, and installed again."""
    py = QUIX_VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {QUIX_VENV} for the Quix Streams peer ({QUIX_PIN})")
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    elif subprocess.run([str(py), "-c", "import quixstreams"], check=False).returncode == 0:
        return True
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", QUIX_PIN, "orjson==3.13.0", "tzdata==2026.6"],
        check=False,
    )
    return proc.returncode == 0
