"""`marketsignal backtest --plot`: PNG files, one marker per signal, sessions as gaps.

Markers are checked in the plotted data (the lines tagged `signals:*`), never in pixels;
the files are checked to be PNGs that decode to an image of the figure's size.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from schemas.signals import SIGNAL_ADAPTER
from services.backtest.chart_data import DEFAULT_LIMIT, ChartData, choose, file_name
from services.backtest.charts import FIGURES, MARKER_GID, write_charts
from services.backtest.run import run_backtest
from services.backtest.session_axis import GAP_WIDTH_S, SessionAxis
from services.cli import main
from services.detection.rules import Rules
from services.detection.timeline import to_us

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "demo"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def markers(fig: Figure) -> dict[str, list[tuple[float, float]]]:
    """gid -> the (x, y) points of every marker line tagged as signals."""
    out: dict[str, list[tuple[float, float]]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            gid = line.get_gid()
            if gid and gid.startswith(MARKER_GID + ":"):
                xs, ys = line.get_xdata(), line.get_ydata()
                out.setdefault(gid, []).extend(zip(map(float, xs), map(float, ys), strict=True))
    return out


def assert_png(path: Path) -> None:
    raw = path.read_bytes()
    assert raw.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    width, height = struct.unpack(">II", raw[16:24])  # the IHDR chunk comes first
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    assert min(width, height) >= 400


@pytest.fixture(scope="module")
def demo() -> tuple[ChartData, list[Any]]:
    rules = Rules.load(DEMO / "rules.toml")
    data = ChartData(rules)
    out = io.BytesIO()
    run_backtest(DEMO / "ticks.csv", rules, out, io.StringIO(), progress=False, charts=data)
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in out.getvalue().splitlines()]
    return data, signals


def test_every_subject_that_fired_gets_one_marker_per_signal(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    subjects = {(s.kind, s.subject) for s in signals}
    assert {kind for kind, _ in subjects} == {"record_high", "index_divergence", "ah_premium"}
    for kind, subject in sorted(subjects):
        expected = [s for s in signals if (s.kind, s.subject) == (kind, subject)]
        fig = FIGURES[kind](data, subject)
        points = markers(fig)
        assert sum(len(p) for p in points.values()) == len(expected), (kind, subject)
        if kind == "record_high":
            for window in ("all_time", "52w"):
                ys = [y for _, y in points.get(f"{MARKER_GID}:{window}", [])]
                assert ys == [s.price for s in expected if s.window == window]
        elif kind == "index_divergence":
            for phase in ("open", "close"):
                ys = [y for _, y in points.get(f"{MARKER_GID}:{phase}", [])]
                assert ys == [s.spread_pp for s in expected if s.phase == phase]
        else:
            for phase in ("open", "close"):
                ys = [y for _, y in points.get(f"{MARKER_GID}:{phase}", [])]
                assert ys == [s.premium_pct for s in expected if s.phase == phase]
        # no marker falls into a gap (a NaN position)
        xs = sorted(x for p in points.values() for x, _ in p)
        assert all(not math.isnan(x) for x in xs)


def test_markers_sit_on_the_plotted_line(demo: tuple[ChartData, list[Any]]) -> None:
    data, _ = demo
    fig = FIGURES["ah_premium"](data, "688981.SH/0981.HK")
    line = next(x for x in fig.axes[0].get_lines() if str(x.get_label()).startswith("premium"))
    curve = {
        (float(x), float(y))
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
        if not math.isnan(x)
    }
    for point in markers(fig)[f"{MARKER_GID}:open"]:
        assert point in curve


def test_the_cli_writes_valid_pngs_and_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", str(DEMO / "ticks.csv"), "--config", str(DEMO / "rules.toml")]
    wanted = "2513.HK,000688.SH/HSTECH.HK,*/0981.HK"
    assert main([*args, "--plot", str(tmp_path), "--plot-symbols", wanted]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") > 200  # the signals still go to stdout, unchanged
    listed = [
        Path(line[len("chart: ") :]) for line in err.splitlines() if line.startswith("chart: ")
    ]
    names = sorted(p.name for p in listed)
    assert names == [
        "ah_premium-688981.SH-vs-0981.HK.png",
        "index_divergence-000688.SH-vs-HSTECH.HK.png",
        "record_high-2513.HK.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for path in listed:
        assert_png(path)


def test_default_choice_pairs_and_listings_first_then_busiest_symbols(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, _ = demo
    chosen = choose(data, None)
    assert len(chosen) == min(DEFAULT_LIMIT, len(data.signals)) == 12  # the demo: all
    assert chosen[:2] == [
        ("ah_premium", "688981.SH/0981.HK"),
        ("index_divergence", "000688.SH/HSTECH.HK"),
    ]
    assert chosen[2] == ("record_high", "2513.HK")  # the most record highs
    counts = [len(data.signals[key]) for key in chosen[2:]]
    assert counts == sorted(counts, reverse=True)
    assert choose(data, None, limit=5) == chosen[:5]
    assert choose(data, ["*.SH"]) == [
        ("record_high", s) for s in ("000688.SH", "600519.SH", "688981.SH")
    ]
    assert choose(data, ["NOPE.HK"]) == []


def test_file_names_are_plain() -> None:
    assert file_name(("index_divergence", "000688.SH/HSTECH.HK")) == (
        "index_divergence-000688.SH-vs-HSTECH.HK.png"
    )
    assert file_name(("record_high", "^GSPC")) == "record_high--GSPC.png"


# -- the session axis -----------------------------------------------------------------

HKT = timedelta(hours=8)


def session_ticks() -> list[int]:
    """Two days of a Hong Kong-like session: 09:30-12:00 and 13:00-16:00, every 10 min."""
    out = []
    for day in (date(2026, 2, 12), date(2026, 2, 13)):
        for start, end in (((9, 30), (12, 0)), ((13, 0), (16, 0))):
            t = datetime(day.year, day.month, day.day, *start, tzinfo=UTC) - HKT
            stop = datetime(day.year, day.month, day.day, *end, tzinfo=UTC) - HKT
            while t <= stop:
                out.append(to_us(t))
                t += timedelta(minutes=10)
    return out


def test_closed_sessions_become_fixed_gaps_and_break_the_line() -> None:
    instants = session_ticks()
    axis = SessionAxis(instants, UTC)
    xs, ys = axis.line(instants, [float(i) for i in range(len(instants))])
    # four sessions: three breaks (lunch, night, lunch)
    assert sum(math.isnan(x) for x in xs) == 3
    real = [x for x in xs if not math.isnan(x)]
    steps = [b - a for a, b in itertools.pairwise(real)]
    assert set(steps) == {600.0, float(GAP_WIDTH_S)}
    assert steps.count(float(GAP_WIDTH_S)) == 3
    assert len(ys) == len(xs)


def test_history_bars_are_drawn_before_the_ticks() -> None:
    rules = Rules(divergence=())
    data = ChartData(rules)
    instants = session_ticks()
    for i, us in enumerate(instants):
        data.tick("2513.HK", us, 100.0 + i)
    bars = [(date(2026, 2, d), 90.0 + d, 85.0 + d) for d in (9, 10, 11)]
    data.add_history("2513.HK", bars)
    fig = FIGURES["record_high"](data, "2513.HK")
    ax = fig.axes[0]
    history = [c for c in ax.collections if str(c.get_label()).startswith("history")]
    assert len(history) == 1
    segments = history[0].get_segments()  # type: ignore[attr-defined]
    assert [(s[0][1], s[1][1]) for s in segments] == [(c, h) for _, h, c in bars]
    price = next(x for x in ax.get_lines() if str(x.get_label()).startswith("2513.HK price"))
    first_tick_x = min(x for x in price.get_xdata() if not math.isnan(x))
    assert max(s[0][0] for s in segments) < first_tick_x
    alpha = history[0].get_alpha()
    assert alpha is not None
    assert alpha < 0.5  # faint


def test_write_charts_writes_what_it_chose(
    tmp_path: Path, demo: tuple[ChartData, list[Any]]
) -> None:
    data, _ = demo
    written = write_charts(data, tmp_path / "charts", ["HSTECH.HK"])
    assert written == [tmp_path / "charts" / "record_high-HSTECH.HK.png"]
    assert_png(written[0])
