"""Live sources on the real broker: standard input and a followed file (the WebSocket
feed is in test_websocket_feed.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.support.live_ingest import (
    BUNDLES,
    T0_MS,
    csv_line,
    ingest,
    prices,
    stop,
    wait_metric,
    wait_prices,
)
from tests.support.services import free_port
from tests.support.summary import summary_counts

pytestmark = pytest.mark.integration

# -- standard input -----------------------------------------------------------------------


@BUNDLES
def test_stdin_jsonl_and_csv_with_a_bom(
    settings: Callable[..., Settings], read_topic: Callable[..., list[Any]], bundle: bool
) -> None:
    s = settings(partitions=1)
    jsonl = "".join(
        json.dumps({"symbol": "Z", "ts": T0_MS + i * 1000, "price": 100 + i}) + "\n"
        for i in range(3)
    )
    proc = ingest(s, "-", bundle=bundle)
    _, err = proc.communicate(jsonl + '{"symbol":"Z","ts":1,"price":true}\n', timeout=120)
    assert proc.returncode == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"], counts["dead-lettered"]) == (4, 3, 1)
    assert counts["malformed"] == 1
    # CSV with a byte-order mark, told by --format (there is no file name to go by)
    proc = ingest(s, "-", "--format", "csv", bundle=bundle)
    _, err = proc.communicate("\ufeffsymbol,ts,price\n" + csv_line(3) + csv_line(4), timeout=120)
    assert proc.returncode == 0, err
    assert prices(read_topic(s.ticks_topic, timeout_s=60)) == [100, 101, 102, 103, 104]
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=1)]
    assert (dead.source, dead.line, dead.field) == ("<stdin>", 4, "price")


# -- a followed file --------------------------------------------------------------------


@BUNDLES
def test_follow_survives_truncation_and_rotation_and_resumes_without_resending(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
    bundle: bool,
) -> None:
    s = settings(partitions=1)
    feed, position = tmp_path / "feed.csv", tmp_path / "position.json"
    feed.write_text("symbol,ts,price\n" + csv_line(0) + csv_line(1) + csv_line(2))
    port = free_port()
    args = [str(feed), "--follow", "--position-file", str(position)]
    proc = ingest(s, *args, metrics_port=port, bundle=bundle)

    def expect(n: int) -> None:
        assert wait_prices(read_topic, s.ticks_topic, n) == [100 + i for i in range(n)]

    expect(3)
    with feed.open("a") as fh:  # growth, and a line still being written
        fh.write(csv_line(3) + csv_line(4) + csv_line(5)[:6])
    expect(5)
    with feed.open("a") as fh:
        fh.write(csv_line(5)[6:])
    expect(6)
    # truncated in place (same inode): read again from the start, header included
    feed.write_text("symbol,ts,price\n" + csv_line(6) + csv_line(7))
    expect(8)
    # rotated: the old file's last line first, then the new file from its start
    rotated = tmp_path / "feed.csv.1"
    feed.rename(rotated)
    with rotated.open("a") as fh:
        fh.write(csv_line(8))
    feed.write_text("symbol,ts,price\n" + csv_line(9) + csv_line(10))
    expect(11)
    last = wait_metric(
        port,
        "marketsignal_ingest_last_tick_timestamp_seconds",
        lambda v: v == (T0_MS + 10_000) / 1000,
        proc,
    )
    assert last == (T0_MS + 10_000) / 1000
    # The long-running mode's throughput: lines read in the last seconds, so not zero yet.
    wait_metric(port, "marketsignal_ingest_throughput_lines_per_second", lambda v: v > 0, proc)
    code, err = stop(proc)
    assert code == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"], counts["dead-lettered"]) == (11, 11, 0)
    assert json.loads(position.read_text())["offset"] == feed.stat().st_size

    # stopped: two lines arrive meanwhile; a restart sends only those
    with feed.open("a") as fh:
        fh.write(csv_line(11) + csv_line(12))
    proc = ingest(s, *args, bundle=bundle)
    expect(13)
    # Stopping flushes the producer: whatever this run sent is on the topic afterwards,
    # and its own count says it read and sent the two new lines only.
    code, err = stop(proc)
    assert code == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"]) == (2, 2)
    assert prices(read_topic(s.ticks_topic)) == [100 + i for i in range(13)]
