"""A client library's repeated log line: the first of each window printed, the rest
counted and the count said by the next one printed."""

from __future__ import annotations

import io
import logging

from mode.utils.logging import ExtensionFormatter

from services.runtime.log_flood import RepeatFilter


def logger_with(repeat: RepeatFilter, name: str, *streams: io.StringIO) -> logging.Logger:
    log = logging.getLogger(name)
    log.propagate = False
    log.handlers.clear()
    log.setLevel(logging.INFO)
    for stream in streams:
        handler = logging.StreamHandler(stream)
        handler.addFilter(repeat)
        log.addHandler(handler)
    return log


def test_a_retry_loop_prints_one_line_a_window_with_the_count_held_back() -> None:
    now = [0.0]
    out = io.StringIO()
    log = logger_with(RepeatFilter(30.0, lambda: now[0]), "aiokafka.conn.t1", out)
    for attempt in range(100):  # ten a second for 10 s, then again 25 s later
        log.error("Unable connect to node with id %s: %s", 1, f"refused #{attempt}")
        now[0] += 0.1
    now[0] = 35.0
    log.error("Unable connect to node with id %s: %s", 1, "refused #100")
    assert out.getvalue().splitlines() == [
        "Unable connect to node with id 1: refused #0",
        "Unable connect to node with id 1: refused #100 "
        "[and 99 more like this in the last 35s, not shown]",
    ]


def test_other_messages_and_our_own_loggers_are_not_held() -> None:
    now = [0.0]
    out = io.StringIO()
    repeat = RepeatFilter(30.0, lambda: now[0])
    lib = logger_with(repeat, "faust.worker.t2", out)
    ours = logger_with(repeat, "marketsignal.processor.t2", out)
    lib.info("Starting %s", "consumer")
    lib.info("Starting %s", "producer")  # the same template: held
    lib.info("Ready")
    ours.warning("levels: %d armed", 1)
    ours.warning("levels: %d armed", 2)
    assert out.getvalue().splitlines() == [
        "Starting consumer",
        "Ready",
        "levels: 1 armed",
        "levels: 2 armed",
    ]
    assert repeat.held_back() == [("faust.worker.t2", "Starting %s", 1)]


def test_a_record_seen_by_two_handlers_is_counted_once() -> None:
    now = [0.0]
    first, second = io.StringIO(), io.StringIO()
    repeat = RepeatFilter(30.0, lambda: now[0])
    log = logger_with(repeat, "kafka.cluster.t3", first, second)
    for _ in range(3):
        log.warning("No node available for metadata refresh - backoff/retry")
    assert first.getvalue() == second.getvalue()
    assert len(first.getvalue().splitlines()) == 1
    assert repeat.held_back() == [
        ("kafka.cluster.t3", "No node available for metadata refresh - backoff/retry", 2)
    ]


def test_the_count_survives_fausts_formatter() -> None:
    """mode's formatter (faust's worker logs through it) turns `args=None` into (None,)
    and then fails on a message without a placeholder: the count's line must print."""
    now = [0.0]
    out = io.StringIO()
    log = logger_with(RepeatFilter(30.0, lambda: now[0]), "aiokafka.t4", out)
    log.handlers[0].setFormatter(ExtensionFormatter(stream=out, fmt="%(message)s"))
    log.error("Unable to update metadata from %s", [1])
    log.error("Unable to update metadata from %s", [1])
    now[0] = 31.0
    log.error("Unable to update metadata from %s", [1])
    assert out.getvalue().splitlines() == [
        "Unable to update metadata from [1]",
        "Unable to update metadata from [1] [and 1 more like this in the last 31s, not shown]",
    ]
