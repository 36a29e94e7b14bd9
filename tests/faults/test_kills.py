"""Faults on the real stack, kill -9 and SIGTERM of the services.

Every test in tests/faults replays the generated workload (tests/faults/workload.py) through
real processes, injects its fault at random points while the feed runs, lets the system
heal on its own, and then requires the Redis stream and a catch-all subscription's
stream to hold exactly the backtest's alerts: 0 missing, 0 extra, 0 duplicates, and
each subject's alerts in the backtest's order. Recovery times are measured from the
stream's entry times and printed in the "fault suite figures" summary (tests/faults/scenario.py
holds the settings, FAULT_KILLS and FAULT_SEED).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
import redis

from tests.faults.components import Fault
from tests.faults.scenario import (
    KILLS,
    RATE,
    RECOVERY_LIMIT_S,
    SECONDS_PER_KILL,
    SEED,
    Report,
    check,
    fault_pipeline,
    kill_cycles,
    recoveries,
)
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# What mode's Worker (faust's base) logs as it stops: the first line once the signal is
# handled, the line once every service has stopped, and the last line before it exits.
STOP_BEGUN = "Signal received: 15"
SERVICES_STOPPED = "Gathering service tasks..."
STOP_DONE = "Closing event loop"


def test_processor_kill9_one_worker(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    pipe = fault_pipeline(settings, redis_client, tmp_path, KILLS * SECONDS_PER_KILL + 40)
    rng = random.Random(SEED)
    try:
        pipe.start_processor("worker-1")
        pipe.start_alerter()
        pipe.start_feed(RATE)

        def strike() -> Fault:
            fault = pipe.kill_processor("worker-1")
            pipe.start_processor("worker-1")  # as the supervisor does, at once
            return fault

        faults = kill_cycles(pipe, rng, KILLS, strike)

        # A SIGTERM stop must end within 10 s; then a stop killed half-way (SIGKILL
        # while the graceful stop is under way) must not cost anything either.
        started = time.monotonic()
        term = pipe.kill_processor("worker-1", signal.SIGTERM)
        stop_s = time.monotonic() - started
        report(f"SIGTERM'd processor stopped in {stop_s:.1f} s (limit 10 s)")
        assert stop_s <= 10.0
        pipe.start_processor("worker-1")
        pipe.wait_new_signals(term)
        worker = pipe.processors["worker-1"]
        time.sleep(rng.uniform(0.5, 2.0))  # a random point of the replay
        term_sent = time.time()
        worker.proc.send_signal(signal.SIGTERM)
        # Strike as soon as the worker says its stop began, polling its log every few ms:
        # an idle worker's whole stop takes about a second, most of it the final pause.
        wait_for(
            "worker-1 to begin its graceful stop",
            lambda: STOP_BEGUN in worker.log_path.read_text(errors="replace"),
            10,
            max_poll_s=0.005,
        )
        killed_stop = pipe.kill_processor("worker-1")
        killed_stop.what = "processor worker-1 SIGKILL during a SIGTERM stop"
        # Proof that the kill cut the stop short: it killed a live process, whose log
        # stops before the stop's last step.
        log = worker.log_path.read_text(errors="replace")
        assert worker.proc.returncode == -signal.SIGKILL, (
            f"the stop ended before the kill (exit code {worker.proc.returncode})"
        )
        assert STOP_DONE not in log, "the stop had finished before the kill"
        phase = "its services still stopping" if SERVICES_STOPPED not in log else "at its end"
        report(f"SIGKILL {killed_stop.at - term_sent:.3f} s after the SIGTERM, {phase}")
        pipe.start_processor("worker-1")
        pipe.wait_new_signals(killed_stop)
        check(pipe, report)
    finally:
        pipe.stop_all()
    report(f"{len(faults)} kill -9 of the only worker, every run exact")
    times = recoveries(pipe, [*faults, killed_stop], report)
    # The limit is for a kill -9; after a SIGTERM the figure includes the stop itself.
    recoveries(pipe, [term], report)
    assert max(times) <= RECOVERY_LIMIT_S, times


def test_processor_kill9_one_of_two_workers(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    pipe = fault_pipeline(settings, redis_client, tmp_path, KILLS * SECONDS_PER_KILL + 40)
    rng = random.Random(SEED + 1)
    try:
        pipe.start_processor("worker-1")
        pipe.start_processor("worker-2")
        pipe.start_alerter()
        pipe.start_feed(RATE)

        def strike() -> Fault:
            victim = rng.choice(["worker-1", "worker-2"])
            fault = pipe.kill_processor(victim)
            pipe.start_processor(victim)
            return fault

        faults = kill_cycles(pipe, rng, KILLS, strike)
        check(pipe, report)
    finally:
        pipe.stop_all()
    report(f"{len(faults)} kill -9 of one of two workers, every run exact")
    times = recoveries(pipe, faults, report)
    assert max(times) <= RECOVERY_LIMIT_S, times


def test_alerter_kill9_and_sigterm(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    pipe = fault_pipeline(settings, redis_client, tmp_path, 2 * SECONDS_PER_KILL + 40)
    rng = random.Random(SEED + 2)
    signals = iter([signal.SIGKILL, signal.SIGTERM])
    try:
        pipe.start_processor("worker-1")
        pipe.start_alerter()
        pipe.start_feed(RATE)

        def strike() -> Fault:
            fault = pipe.kill_alerter(next(signals))
            pipe.start_alerter()
            return fault

        faults = kill_cycles(pipe, rng, 2, strike)
        check(pipe, report)
    finally:
        pipe.stop_all()
    times = recoveries(pipe, faults, report)
    assert max(times) <= RECOVERY_LIMIT_S, times
