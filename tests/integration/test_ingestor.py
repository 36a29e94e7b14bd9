"""`marketsignal ingest` against the real broker: what lands on `ticks` and `ticks.dlq`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from schemas.topics import DLQ_REASON_HEADER
from services.runtime.settings import Settings
from tests.support import factories
from tests.support.services import run_cli
from tests.support.summary import summary_counts

pytestmark = pytest.mark.integration

CSV = """\
symbol,ts,price,volume,kind
2513.HK,2026-02-13T10:00:00+08:00,400.5,100,trade
2513.HK,2026-02-13T10:00:01+08:00,abc,100,trade
2513.HK,2026-02-13T10:00:02+08:00,NaN,100,trade
bad symbol!,2026-02-13T10:00:00+08:00,1,,
2513.HK,2026-02-13T10:00:03+08:00,401
2513.HK,,401,,
2513.HK,2026-02-30T10:00:00,401,,
2513.HK,2026-02-13T09:59:00+08:00,399,5,trade
2513.HK,2026-02-13T09:59:58+08:00,402,5,trade
000688.SH,1770948000000,1000.25,,index
HSTECH.HK,2026-02-13T10:00:00,5000,,index
"""

# line -> (reason, field, symbol)
EXPECTED_DEAD = {
    3: ("malformed", "price", "2513.HK"),
    4: ("malformed", "price", "2513.HK"),
    5: ("malformed", "symbol", None),
    7: ("malformed", "ts", "2513.HK"),
    8: ("malformed", "ts", "2513.HK"),
    9: ("late", "ts", "2513.HK"),
}
GOOD = [
    {"symbol": "2513.HK", "ts": "2026-02-13T10:00:00+08:00", "price": 400.5, "volume": 100},
    # line 6: a short row, only the optional volume and kind missing: defaulted
    {"symbol": "2513.HK", "ts": "2026-02-13T10:00:03+08:00", "price": 401},
    {"symbol": "2513.HK", "ts": "2026-02-13T09:59:58+08:00", "price": 402, "volume": 5},
    {"symbol": "000688.SH", "ts": 1770948000000, "price": 1000.25, "kind": "index"},
    {"symbol": "HSTECH.HK", "ts": "2026-02-13T10:00:00", "price": 5000, "kind": "index"},
]


def ingest(
    settings: Settings, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # One tick per record: these tests read each record as the tick it carries (bundles,
    # on by default since issue 15, have their own tests).
    base = {"MARKETSIGNAL_INGEST_BUNDLE": "false", **os.environ, **(env_extra or {})}
    env = factories.service_env(settings, base=base)
    return run_cli("ingest", *args, env=env, timeout_s=120)


def expected_by_symbol() -> dict[str, list[dict[str, Any]]]:
    """GOOD's ticks per symbol, in line order, as JSON: what `ticks` must carry."""
    # The model itself, not the ingestor's fast path, says what each good line means.
    out: dict[str, list[dict[str, Any]]] = {}
    for fields in GOOD:
        tick = Tick.model_validate(fields)
        out.setdefault(tick.symbol, []).append(json.loads(tick.model_dump_json()))
    return out


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    """CSV, written to a file."""
    path = tmp_path / "feed.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_csv_goes_to_ticks_and_dead_letters_with_reasons(
    feed: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings()

    done = ingest(s, str(feed))

    assert done.returncode == 0, done.stderr
    assert summary_counts(done.stderr, "ingest:") == {
        "read": 11,
        "published": 5,
        "dead-lettered": 6,
        "late": 1,
        "malformed": 5,
    }

    ticks = read_topic(s.ticks_topic, expect=5)
    expected = [Tick.model_validate(fields) for fields in GOOD]
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for rec in ticks:
        assert rec.key == json.loads(rec.value)["symbol"].encode()
        by_symbol.setdefault(rec.key.decode(), []).append(json.loads(rec.value))
    assert by_symbol == expected_by_symbol()
    assert Tick.model_validate_json(ticks[0].value).ts.utcoffset() is not None
    assert json.loads(expected[4].model_dump_json())["ts"] == "2026-02-13T10:00:00+08:00"

    dead = read_topic(s.dlq_topic, expect=len(EXPECTED_DEAD))
    assert len(dead) == len(EXPECTED_DEAD)
    lines = CSV.splitlines()
    seen = {}
    for rec in dead:
        letter = DeadLetter.model_validate_json(rec.value)
        assert dict(rec.headers)[DLQ_REASON_HEADER] == letter.reason.encode()
        assert letter.source == str(feed)
        assert letter.line is not None
        assert letter.raw == lines[letter.line - 1]
        assert rec.key == (letter.symbol.encode() if letter.symbol else None)
        seen[letter.line] = (letter.reason, letter.field, letter.symbol)
    assert seen == EXPECTED_DEAD


def test_default_bundles_hold_one_partitions_ticks_in_order(
    feed: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    """The default path: ticks bundled per partition (docs/bundles.md), nothing lost."""
    s = settings()

    # A wide window, so that bundling does not depend on how fast this machine reads.
    done = ingest(
        s, str(feed), "--bundle-ms", "2000", env_extra={"MARKETSIGNAL_INGEST_BUNDLE": "true"}
    )

    assert done.returncode == 0, done.stderr
    assert summary_counts(done.stderr, "ingest:")["published"] == 5
    records = sorted(read_topic(s.ticks_topic), key=lambda r: (r.partition, r.offset))
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    bundles = 0
    for rec in records:
        value = json.loads(rec.value)
        ticks = value if isinstance(value, list) else [value]
        bundles += isinstance(value, list)
        symbols = {t["symbol"] for t in ticks}
        assert all(partition_of(sym, s.partitions) == rec.partition for sym in symbols)
        assert rec.key in (None, *(sym.encode() for sym in symbols if len(symbols) == 1))
        for tick in ticks:
            by_symbol.setdefault(tick["symbol"], []).append(tick)
    # The three good 2513.HK lines share a partition, so they travel as one bundle.
    assert bundles >= 1
    assert len(records) < 5
    assert by_symbol == expected_by_symbol()


def test_jsonl_with_unreadable_lines(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings()
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"symbol": "AAPL", "ts": "2026-02-13T15:00:00Z", "price": 250.0}\n'
        "{not json\n"
        "[1, 2]\n"
        '{"symbol": "AAPL", "ts": "2026-02-13T15:00:01Z", "price": -1}\n',
        encoding="utf-8",
    )

    done = ingest(s, str(feed), "--rate", "1000")

    assert done.returncode == 0, done.stderr
    ticks = read_topic(s.ticks_topic, expect=1)
    assert [json.loads(r.value)["price"] for r in ticks] == [250.0]
    dead = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=3)]
    assert sorted((d.line, d.reason, d.field) for d in dead) == [
        (2, "malformed", None),
        (3, "malformed", None),
        (4, "malformed", "price"),
    ]


def test_broker_down_is_a_clear_error_not_a_traceback(
    feed: Path, settings: Callable[..., Settings]
) -> None:
    s = settings(kafka_bootstrap="127.0.0.1:1")
    done = ingest(s, str(feed), env_extra={"MARKETSIGNAL_KAFKA_BOOTSTRAP_TIMEOUT_MS": "1000"})
    assert done.returncode == 1
    assert "make stack-up" in done.stderr
    assert "Traceback" not in done.stderr
