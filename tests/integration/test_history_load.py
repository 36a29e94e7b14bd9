"""`marketsignal history load` against the real broker: bars keyed by symbol, bad ones
reported by line, and --strict publishing nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.bar import Bar
from services.runtime.settings import Settings
from tests.support import factories
from tests.support.services import run_cli
from tests.support.summary import summary_counts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

BARS = """\
symbol,date,high,close,volume
0700.HK,2025-11-27,620,615,100
0700.HK,2025-11-28,618,610,
HSTECH.HK,2025-11-28,5650,5600,
0700.HK,2025-11-28,700,690,
0700.HK,2025-11-31,620,615,
"""


def history_load(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = factories.service_env(settings)
    return run_cli("history", "load", *args, env=env, timeout_s=120)


def test_bars_are_published_by_symbol_and_bad_ones_reported_by_line(
    tmp_path: Path, settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=3)
    bars = tmp_path / "bars.csv"
    bars.write_text(BARS)

    strict = history_load(s, str(bars), "--strict")
    assert strict.returncode == 2
    assert "nothing published" in strict.stderr

    done = history_load(s, str(bars))
    assert done.returncode == 0, done.stderr
    assert f"{bars}:5: bad bar: a second bar for 0700.HK on 2025-11-28 (first on line 3)" in (
        done.stderr
    )
    assert f"{bars}:6: bad bar: date: '2025-11-31' is not a real date" in done.stderr
    counts = summary_counts(done.stderr, "history:")
    assert (counts["bars"], counts["bad"]) == (3, 2)
    records = read_topic(s.history_topic, expect=3)
    assert len(records) == 3  # the --strict run published nothing
    got = [Bar.model_validate_json(r.value) for r in records]
    assert all(r.key == b.symbol.encode() for r, b in zip(records, got, strict=True))
    # one symbol's bars share a partition, in file order
    tencent = [r for r in records if r.key == b"0700.HK"]
    assert len({r.partition for r in tencent}) == 1
    assert [Bar.model_validate_json(r.value).date.isoformat() for r in tencent] == [
        "2025-11-27",
        "2025-11-28",
    ]
