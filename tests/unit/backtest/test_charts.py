"""`marketsignal backtest --plot`: PNG files, one marker per signal, sessions as gaps.

Markers are checked in the plotted data (the lines tagged `signals:*`), never in pixels;
the files are checked to be PNGs that decode to an image of the figure's size.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import imread

from schemas.signals import SIGNAL_ADAPTER, LimitHit, PriceMove, RecordHigh
from services.backtest.chart_data import DEFAULT_LIMIT, ChartData, choose, file_name
from services.backtest.charts import FIGURES, MARKER_GID, write_charts
from services.backtest.levels import read_levels
from services.backtest.run import run_backtest
from services.backtest.session_axis import GAP_WIDTH_S, SessionAxis
from services.cli import main
from services.detection.boards import limit_prices
from services.detection.engine import Engine
from services.detection.rules import LimitRules, PriceMoveRules, Rules, VolumeSpikeRules
from services.detection.timeline import to_us

ROOT = Path(__file__).resolve().parents[3]
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
    """The demo as the README runs it: its rules (every kind on), its history, and its
    price level (2513.HK above 400)."""
    rules = Rules.load(DEMO / "rules.toml")
    data = ChartData(rules)
    out = io.BytesIO()
    run_backtest(
        DEMO / "ticks.csv",
        rules,
        out,
        io.StringIO(),
        progress=False,
        history=DEMO / "bars.csv",
        charts=data,
        levels=read_levels(DEMO / "levels.jsonl"),
    )
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in out.getvalue().splitlines()]
    return data, signals


# The y of each signal's marker, by marker gid, as each chart draws it.
MARKED: dict[str, Callable[[Any], tuple[str, float]]] = {
    "record_high": lambda s: (s.window, s.price),
    "index_divergence": lambda s: (s.phase, s.spread_pp),
    "ah_premium": lambda s: (s.phase, s.premium_pct),
    "price_move": lambda s: (s.direction, s.change_pct),
    "limit_hit": lambda s: (f"{s.phase}-{s.direction}", s.price),
    "volume_spike": lambda s: (f"x{s.multiple:g}", float(s.volume)),
    "price_level": lambda s: (s.direction, s.price),
}


def test_every_subject_that_fired_gets_one_marker_per_signal(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    subjects = {(s.kind, s.subject) for s in signals}
    assert {kind for kind, _ in subjects} == set(FIGURES) == set(MARKED)
    for kind, subject in sorted(subjects):
        expected = [s for s in signals if (s.kind, s.subject) == (kind, subject)]
        fig = FIGURES[kind](data, subject)
        points = markers(fig)
        assert sum(len(p) for p in points.values()) == len(expected), (kind, subject)
        by_gid: dict[str, list[float]] = {}
        for s in expected:
            tag, y = MARKED[kind](s)
            by_gid.setdefault(f"{MARKER_GID}:{tag}", []).append(y)
        assert {gid: [y for _, y in p] for gid, p in points.items()} == by_gid, (kind, subject)
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
    assert names == [  # a symbol named: every kind of it that fired
        "ah_premium-688981.SH-vs-0981.HK.png",
        "index_divergence-000688.SH-vs-HSTECH.HK.png",
        "price_move-2513.HK.png",
        "record_high-2513.HK.png",
        "volume_spike-2513.HK.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for path in listed:
        assert_png(path)


def test_default_choice_pairs_and_listings_first_then_symbols_kind_by_kind_in_turn(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, _ = demo
    chosen = choose(data, None)
    assert len(data.signals) > DEFAULT_LIMIT == len(chosen) == 12
    assert chosen == [
        ("ah_premium", "688981.SH/0981.HK"),
        ("index_divergence", "000688.SH/HSTECH.HK"),
        # round 1: the biggest of each kind, the user's own levels first, then limit hits
        ("price_level", "2513.HK"),
        ("limit_hit", "688795.SH"),  # two seals
        ("price_move", "2513.HK"),  # past 20%, with the most crossings
        ("volume_spike", "2513.HK"),  # 2x, tied with 601127.SH: by name
        ("record_high", "2513.HK"),  # the most record highs
        # round 2
        ("limit_hit", "601127.SH"),
        ("price_move", "688795.SH"),  # past 20% too, fewer crossings
        ("volume_spike", "601127.SH"),
        ("record_high", "688795.SH"),
        # round 3: no level, limit hit or volume spike left
        ("price_move", "0981.HK"),
    ]
    left_out = set(data.signals) - set(chosen)
    assert left_out == {
        ("price_move", "601127.SH"),
        ("price_move", "688981.SH"),
        ("record_high", "600519.SH"),
    }
    assert choose(data, None, limit=5) == chosen[:5]
    assert choose(data, None, limit=0) == []
    # named subjects: every kind of each, no limit
    assert choose(data, ["601127.SH", "*/0981.HK"]) == [
        ("ah_premium", "688981.SH/0981.HK"),
        ("limit_hit", "601127.SH"),
        ("price_move", "601127.SH"),
        ("volume_spike", "601127.SH"),
    ]
    assert choose(data, ["NOPE.HK"]) == []


def test_a_kind_that_fires_everywhere_does_not_crowd_out_the_others() -> None:
    """A wide market day: 5% moves on many symbols, one limit hit, one record high."""
    data = ChartData(Rules(divergence=()))
    ts = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
    for i in range(20):
        symbol = f"{600000 + i}.SH"
        data.signal(
            PriceMove(
                symbol=symbol,
                ts=ts,
                price=105.0,
                direction="up",
                level_pct=10.0 if i == 7 else 5.0,
                change_pct=10.0 if i == 7 else 5.0,
                previous_close=100.0,
                previous_close_date="2026-02-12",
            )
        )
    data.signal(
        RecordHigh(
            symbol="0700.HK",
            ts=ts,
            price=500.0,
            window="52w",
            previous_high=490.0,
            previous_high_ts=ts - timedelta(days=30),
            change_pct=2.04,
        )
    )
    data.signal(
        LimitHit(
            symbol="600019.SH",
            ts=ts,
            price=110.0,
            direction="up",
            phase="sealed",
            limit_price=110.0,
            limit_pct=10.0,
            previous_close=100.0,
            seals=1,
        )
    )
    chosen = choose(data, None, limit=4)
    assert chosen == [
        ("limit_hit", "600019.SH"),
        ("price_move", "600007.SH"),  # the largest level first
        ("record_high", "0700.HK"),
        ("price_move", "600000.SH"),
    ]


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
    directory = tmp_path / "charts"
    written = write_charts(data, directory, ["2513.HK", "688795.SH", "601127.SH"])
    assert [p.name for p in written] == [
        "limit_hit-601127.SH.png",
        "limit_hit-688795.SH.png",
        "price_level-2513.HK.png",
        "price_move-2513.HK.png",
        "price_move-601127.SH.png",
        "price_move-688795.SH.png",
        "record_high-2513.HK.png",
        "record_high-688795.SH.png",
        "volume_spike-2513.HK.png",
        "volume_spike-601127.SH.png",
    ]
    assert sorted(directory.iterdir()) == written
    for path in written:
        assert_png(path)


# -- the day moves ----------------------------------------------------------------------


def line_points(ax: Axes, label_start: str) -> list[tuple[float, float]]:
    """The points of the line whose label starts with `label_start`, NaNs included."""
    line = next(x for x in ax.get_lines() if str(x.get_label()).startswith(label_start))
    return list(zip(map(float, line.get_xdata()), map(float, line.get_ydata()), strict=True))


def on_curve(points: list[tuple[float, float]]) -> set[tuple[float, float]]:
    return {p for p in points if not math.isnan(p[0])}


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def of(signals: list[Any], kind: str, symbol: str) -> list[Any]:
    return [s for s in signals if (s.kind, s.subject) == (kind, symbol)]


def test_price_move_chart_marks_each_crossing_on_the_change_line(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    moves = of(signals, "price_move", "2513.HK")
    fig = FIGURES["price_move"](data, "2513.HK")
    top, bottom = fig.axes
    points = markers(fig)
    up = [s.change_pct for s in moves if s.direction == "up"]
    down = [s.change_pct for s in moves if s.direction == "down"]
    assert (len(up), len(down)) == (27, 3)  # the demo's story: 13 Feb crosses 5, 10, 20
    assert [y for _, y in points[f"{MARKER_GID}:up"]] == up
    assert [y for _, y in points[f"{MARKER_GID}:down"]] == down
    change = line_points(bottom, "change vs previous close")
    for point in points[f"{MARKER_GID}:up"] + points[f"{MARKER_GID}:down"]:
        assert point in on_curve(change)  # each crossing sits on the tick that made it
    levels = sorted(
        ys[0]
        for line in bottom.get_lines()
        if line.get_linestyle() == ":"
        for ys in [[float(y) for y in line.get_ydata()]]
        if ys  # not the legend's entry
    )
    assert levels == [-20.0, -10.0, -5.0, 5.0, 10.0, 20.0]
    assert "crossed up (27)" in legend_labels(bottom)
    assert "crossed down (3)" in legend_labels(bottom)
    # the price panel: each date's previous close, the one each crossing was judged against
    closes = {y for _, y in on_curve(line_points(top, "previous close"))}
    assert {s.previous_close for s in moves} <= closes
    trace = data.day_traces["2513.HK"]
    assert len(closes) == len({state.day for _, state in trace.states})
    # the biggest crossing is ringed and told in the margin, with the day's high
    ((ring_x, ring_y),) = line_points(bottom, "largest crossing: +20%")
    assert (ring_x, ring_y) in points[f"{MARKER_GID}:up"]
    (note,) = [t.get_text() for t in bottom.texts if t.get_text().startswith("largest")]
    assert note == (
        "largest crossing: +20.4%\nat 2026-02-13 14:56\n"
        "vs 401.94, the close of 2026-02-12;\nthat day's high: +23.4%"
    )


def test_limit_hit_chart_marks_every_seal_and_opening_inside_the_band(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    hits = of(signals, "limit_hit", "688795.SH")
    fig = FIGURES["limit_hit"](data, "688795.SH")
    top, bottom = fig.axes
    points = markers(fig)
    assert {gid: [y for _, y in p] for gid, p in points.items()} == {
        f"{MARKER_GID}:sealed-up": [200.33, 200.33],
        f"{MARKER_GID}:opened-up": [197.33],
    }
    assert [h.price for h in hits] == [200.33, 197.33, 200.33]
    zoom_price = on_curve(line_points(bottom, "688795.SH price"))
    assert all(p in zoom_price for pts in points.values() for p in pts)
    # markers only on the zoom below, where seals minutes apart can be told apart
    assert not [x for x in top.get_lines() if str(x.get_gid()).startswith(MARKER_GID)]
    texts = [t.get_text() for t in bottom.texts]
    assert texts == ["seal #1 10:30", "opened 11:03", "seal #2 11:24"]
    # the zoom's band is 26 January's limits, the one the seals were judged against
    assert {y for _, y in on_curve(line_points(bottom, "upper limit"))} == {200.33}
    assert {y for _, y in on_curve(line_points(bottom, "lower limit"))} == {133.55}
    assert "limit-up sealed (2)" in legend_labels(bottom)
    assert "limit-up opened (1)" in legend_labels(bottom)
    assert "2 seals and 1 opening" in top.get_title()
    # the overview: one step per date with a limit; the first five (a new listing) free
    trace = data.day_traces["688795.SH"]
    dates = sorted({state.day for _, state in trace.states})
    limited = sorted({state.day for _, state in trace.states if state.band is not None})
    assert limited == dates[5:]
    upper = on_curve(line_points(top, "upper limit"))
    assert len(upper) == 2 * len(limited)
    assert "no limit on 5 dates (new listing)" in legend_labels(top)
    for _, state in trace.states:
        if state.band is not None:
            assert state.band == limit_prices(state.prev_close, 20.0)


def test_limit_down_chart_fits_the_hit_and_says_the_other_limit_is_off_the_chart(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    (hit,) = of(signals, "limit_hit", "601127.SH")
    fig = FIGURES["limit_hit"](data, "601127.SH")
    _, bottom = fig.axes
    assert {gid: [y for _, y in p] for gid, p in markers(fig).items()} == {
        f"{MARKER_GID}:sealed-down": [hit.price]
    }
    assert hit.limit_price == 117.9
    labels = legend_labels(bottom)
    assert "upper limit (+10%) (off the chart)" in labels
    assert "lower limit (-10%)" in labels
    lo, hi = bottom.get_ylim()
    assert lo < hit.limit_price < hi
    # one date zoomed: its hours labelled, 13:00 (after lunch) too, none inside the lunch
    hours = [t.get_text() for t in bottom.get_xticklabels(minor=True)]
    assert hours == ["10:00", "11:00", "13:00", "14:00", "15:00"]


def test_volume_spike_chart_marks_each_spike_on_the_days_volume(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    (spike,) = of(signals, "volume_spike", "2513.HK")
    fig = FIGURES["volume_spike"](data, "2513.HK")
    (ax,) = fig.axes
    points = markers(fig)
    assert points.keys() == {f"{MARKER_GID}:x2"}
    ((x, y),) = points[f"{MARKER_GID}:x2"]
    assert y == spike.volume
    assert (x, y) in on_curve(line_points(ax, "2513.HK the day's volume"))
    # the baseline and the 2x line of that date are the ones the spike was judged against
    average = {y for _, y in on_curve(line_points(ax, "5-day average"))}
    double = {y for _, y in on_curve(line_points(ax, "2 x average"))}
    assert spike.average_volume in average
    assert 2 * spike.average_volume in double
    assert "5 x average (above the chart)" in legend_labels(ax)
    assert "volume past 2x (1)" in legend_labels(ax)
    assert ax.get_ylim()[1] < 5 * spike.average_volume
    assert [t.get_text() for t in ax.texts] == [
        "x2 at 2026-02-13 14:00:\n  838,500 vs 415,560 a day"
    ]
    # the trace's volume is the detector's running volume
    trace = data.day_traces["2513.HK"]
    assert trace.volume[trace.us.index(to_us(spike.ts))] == spike.volume


def test_day_trace_skips_what_was_not_judged_and_breaks_the_line_at_midnight(
    tmp_path: Path,
) -> None:
    """A feed across local midnight (no session gap): a late tick of the earlier date is
    accepted but never judged, and each date's change starts from its own close."""
    rules = Rules(
        divergence=(),
        price_move=PriceMoveRules(),
        limits=LimitRules(),
        volume_spike=VolumeSpikeRules(days=1),
    )
    bars = tmp_path / "bars.csv"
    bars.write_text("symbol,date,high,close,volume\n688001.SH,2026-02-11,96,95,20\n")
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "symbol,ts,price,volume,kind\n"
        "688001.SH,2026-02-12T23:50:00+08:00,100,10,trade\n"
        "688001.SH,2026-02-13T00:00:02+08:00,105,10,trade\n"
        "688001.SH,2026-02-12T23:59:59+08:00,50,99,trade\n"  # late, accepted, earlier date
        # 21%, not 20%: (120 / 100 - 1) * 100 is 19.999999999999996 in floats
        "688001.SH,2026-02-13T00:10:00+08:00,121,30,trade\n"
    )
    data = ChartData(rules)
    out = io.BytesIO()
    summary = run_backtest(ticks, rules, out, io.StringIO(), history=bars, charts=data)
    assert (summary.accepted, summary.late) == (4, 0)  # the late one too
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in out.getvalue().splitlines()]
    trace = data.day_traces["688001.SH"]
    assert trace.price == [100.0, 105.0, 121.0]
    assert trace.volume == [10, 10, 40]
    feb12, feb13 = date(2026, 2, 12).toordinal(), date(2026, 2, 13).toordinal()
    assert [(start, s.day, s.prev_close) for start, s in trace.states] == [
        (0, feb12, 95.0),
        (1, feb13, 100.0),
    ]
    assert [s.band for _, s in trace.states] == [(114.0, 76.0), (120.0, 80.0)]
    assert [s.average_volume for _, s in trace.states] == [20.0, 10.0]
    fig = FIGURES["price_move"](data, "688001.SH")
    change = line_points(fig.axes[1], "change vs previous close")
    ys = [y for _, y in change]
    assert math.isnan(ys[1])  # 10 minutes apart, one session, two dates: a break
    assert [round(y, 6) for y in ys if not math.isnan(y)] == [
        round((100 / 95 - 1) * 100, 6),
        5.0,
        21.0,
    ]
    moves = [(s.kind, getattr(s, "level_pct", None)) for s in signals if s.kind != "record_high"]
    assert moves == [
        ("price_move", 5.0),
        ("price_move", 5.0),
        ("price_move", 20.0),  # one tick over two levels: one signal, at the larger
        ("limit_hit", None),
        ("volume_spike", None),  # 40 against the 10 of 12 February (the late 99 uncounted)
    ]
    for kind in ("price_move", "limit_hit", "volume_spike"):
        expected = sorted(MARKED[kind](s)[1] for s in of(signals, kind, "688001.SH"))
        drawn = markers(FIGURES[kind](data, "688001.SH"))
        assert sorted(y for p in drawn.values() for _, y in p) == expected, kind


def test_no_day_trace_without_day_moves_or_without_attach() -> None:
    data = ChartData(Rules(divergence=()))
    data.day_move("2513.HK", 0, 1.0)  # not attached: nothing to read
    data.attach(Engine(Rules(divergence=())))  # day moves off
    data.day_move("2513.HK", 0, 1.0)
    assert data.day_traces == {}


def test_price_level_chart_draws_each_level_and_marks_each_crossing_on_the_price(
    demo: tuple[ChartData, list[Any]],
) -> None:
    data, signals = demo
    crossings = of(signals, "price_level", "2513.HK")
    assert len(crossings) == 6
    fig = FIGURES["price_level"](data, "2513.HK")
    (ax,) = fig.axes
    # The level is drawn as a horizontal line at its price...
    ys = [[float(y) for y in line.get_ydata()] for line in ax.get_lines()]
    assert [y[0] for y in ys if len(set(y)) == 1] == [400.0]
    # ...and every crossing sits on the price line, at or past the level.
    price = on_curve(line_points(ax, "2513.HK price"))
    marked = markers(fig)[f"{MARKER_GID}:above"]
    assert len(marked) == len(crossings)
    for point in marked:
        assert point in price
        assert point[1] >= 400.0
    assert "1 price level, 6 crossings" in ax.get_title()
