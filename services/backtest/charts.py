"""Charts of a backtest: one PNG per subject that fired (matplotlib, headless Agg).

- record_high: the symbol's price, each record high marked by window, the last one
  labelled; daily history bars (date, high, close), when given, drawn faintly before.
- index_divergence: both indices' window returns at every evaluated tick, the spread
  below them with the open level (`threshold_pp`) and the close level
  (`threshold_pp * hysteresis`) as a shaded band, and the time the divergence was open.
- ah_premium: the premium at every evaluated tick with the same threshold and
  hysteresis band and open spans.
- price_move: the price over the previous close it is judged against (each date's, as
  steps), and below it the change vs the previous close at every evaluated tick, broken
  between dates, with the +/- level lines and each crossing marked up or down.
- limit_hit: the price with each date's limit band (upper and lower limit as steps),
  the dates with a hit shaded; below, those dates alone with every seal (filled) and
  opening (hollow) marked, up or down, and labelled with its seal number and time.
- volume_spike: the day's cumulative volume (from zero each date) against each date's
  baseline average and its multiple lines, each spike marked.
- price_level (`--levels`): the symbol's price with each of its levels as a line (solid
  above, dashed below) and every crossing marked where the price reached it.

The day-move charts read `ChartData.day_traces`: what the detector judged each tick
against (previous close, limit band, volume baseline), recorded during the run.

The time axis (session_axis.py) is the subject's exchange-local time (a pair: its first
symbol's zone) with closed sessions collapsed: wherever consecutive points are more than
`GAP_S` apart (night, lunch, weekend, a holiday) the axis jumps by a fixed gap and the
lines break, so a chart of two months shows the trading, not the nights. Figures are built with
`matplotlib.figure.Figure` (no pyplot state); saving a PNG uses the Agg canvas.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FuncFormatter, NullLocator

from schemas.signals import (
    AhPremium,
    IndexDivergence,
    LimitHit,
    PriceLevel,
    PriceMove,
    RecordHigh,
    VolumeSpike,
)
from services.backtest.chart_data import (
    DEFAULT_LIMIT,
    ChartData,
    DayState,
    DayTrace,
    choose,
    file_name,
)
from services.backtest.session_axis import SessionAxis
from services.detection.timeline import ZoneClock, from_us, to_us

MARKER_GID = "signals"
WINDOW_STYLE = {"all_time": ("^", "#d62728"), "52w": ("o", "#ff7f0e")}
PHASE_STYLE = {"open": ("^", "#d62728"), "close": ("v", "#2ca02c")}
LEVEL_STYLE = {"above": ("^", "#2ca02c", "-"), "below": ("v", "#d62728", "--")}
MAX_LEVEL_LABELS = 8


def local_time(ts: datetime, zone: tzinfo) -> str:
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _bar_us(day: date, zone: tzinfo) -> int:
    # A bar sits at its date's local noon: one point per day, a gap between days.
    return to_us(datetime.combine(day, time(12, 0), zone))


def _finish(fig: Figure, axis: SessionAxis, *axes: Axes) -> Figure:
    """Grid and legend on every panel; date labels under the last one."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axis.decorate(axes[-1])
    return fig


# -- the kinds of chart ---------------------------------------------------------------


def _markers(
    ax: Axes,
    axis: SessionAxis,
    points: Sequence[tuple[int, float]],
    tag: str,
    style: tuple[str, str],
    label: str,
) -> None:
    xs = [axis.x(us) for us, _ in points]
    ys = [y for _, y in points]
    ax.plot(
        xs,
        ys,
        linestyle="none",
        marker=style[0],
        color=style[1],
        markersize=7,
        markeredgecolor="black",
        markeredgewidth=0.5,
        label=label,
        gid=f"{MARKER_GID}:{tag}",
        zorder=5,
    )


def record_high_figure(data: ChartData, symbol: str) -> Figure:
    signals = [
        s for s in data.signals.get(("record_high", symbol), []) if isinstance(s, RecordHigh)
    ]
    zone = data.zone(symbol)
    instants, prices = data.ticks.get(symbol, ([], []))
    bars = sorted(data.history.get(symbol, []))
    bar_us = [_bar_us(d, zone) for d, _, _ in bars]
    axis = SessionAxis([*bar_us, *instants], zone)
    fig = Figure(figsize=(11, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if bars:
        xs = [axis.x(us) for us in bar_us]
        ax.vlines(
            xs,
            [c for _, _, c in bars],
            [h for _, h, _ in bars],
            color="grey",
            alpha=0.35,
            linewidth=2,
            label=f"history: {len(bars)} daily bars (close to high)",
        )
        ax.plot(xs, [c for _, _, c in bars], color="grey", alpha=0.35, linewidth=1)
    lx, ly = axis.line(instants, prices)
    ax.plot(lx, ly, color="#1f77b4", linewidth=0.9, label=f"{symbol} price ({len(prices)} ticks)")
    for window in ("all_time", "52w"):
        chosen = [(to_us(s.ts), s.price) for s in signals if s.window == window]
        if chosen:
            _markers(
                ax,
                axis,
                chosen,
                window,
                WINDOW_STYLE[window],
                f"{window} record high ({len(chosen)})",
            )
    if signals:
        last = signals[-1]
        ax.annotate(
            f"{last.price:g} ({last.window})\n{local_time(last.ts, zone)}",
            xy=(axis.x(to_us(last.ts)), last.price),
            xytext=(-150, -4),
            textcoords="offset points",
            fontsize=8,
            arrowprops={"arrowstyle": "->", "linewidth": 0.6},
        )
    n = len(signals)
    ax.set_title(f"{symbol}: {n} record high{'' if n == 1 else 's'}", fontsize=11)
    ax.set_ylabel("price")
    return _finish(fig, axis, ax)


def _open_spans(
    signals: Sequence[IndexDivergence | AhPremium], end_us: int | None
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    opened: int | None = None
    for s in signals:
        us = to_us(s.ts)
        if s.phase == "open":
            opened = us
        elif opened is not None:
            spans.append((opened, us))
            opened = None
    if opened is not None and end_us is not None:
        spans.append((opened, max(opened, end_us)))
    return spans


def _band(ax: Axes, threshold: float, hysteresis: float, negative: bool, unit: str) -> None:
    close = threshold * hysteresis
    for sign in (1, -1) if negative else (1,):
        ax.axhspan(sign * close, sign * threshold, color="#ff7f0e", alpha=0.15, linewidth=0)
        ax.axhline(sign * threshold, color="#d62728", linestyle="--", linewidth=0.8)
        ax.axhline(sign * close, color="#2ca02c", linestyle=":", linewidth=0.8)
    ax.plot([], [], color="#d62728", linestyle="--", label=f"open at |x| >= {threshold:g}{unit}")
    ax.plot([], [], color="#2ca02c", linestyle=":", label=f"close below {close:g}{unit}")


def _phase_markers(ax: Axes, axis: SessionAxis, signals: Sequence[tuple[str, int, float]]) -> None:
    for phase in ("open", "close"):
        chosen = [(us, y) for p, us, y in signals if p == phase]
        if chosen:
            _markers(ax, axis, chosen, phase, PHASE_STYLE[phase], f"{phase} ({len(chosen)})")


def divergence_figure(data: ChartData, pair: str) -> Figure:
    signals = [
        s
        for s in data.signals.get(("index_divergence", pair), [])
        if isinstance(s, IndexDivergence)
    ]
    rule = next(r for r in data.rules.divergence if r.name == pair)
    trace = data.traces.get(("index_divergence", pair), [])
    zone = data.zone(rule.a)
    instants = [row[0] for row in trace]
    axis = SessionAxis(instants, zone)
    fig = Figure(figsize=(11, 7), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for col, symbol, colour in ((1, rule.a, "#1f77b4"), (2, rule.b, "#9467bd")):
        lx, ly = axis.line(instants, [row[col] for row in trace])
        top.plot(lx, ly, color=colour, linewidth=0.9, label=f"{symbol} {rule.window} return")
    top.axhline(0, color="black", linewidth=0.5)
    lx, ly = axis.line(instants, [row[3] for row in trace])
    bottom.plot(lx, ly, color="black", linewidth=0.9, label="spread (A - B)")
    _band(bottom, rule.threshold_pp, rule.hysteresis, True, "pp")
    _phase_markers(bottom, axis, [(s.phase, to_us(s.ts), s.spread_pp) for s in signals])
    for start, end in _open_spans(signals, instants[-1] if instants else None):
        for ax in (top, bottom):
            ax.axvspan(axis.x(start), axis.x(end), color="#d62728", alpha=0.08, linewidth=0)
    top.set_title(
        f"{rule.a} vs {rule.b}: {rule.window} returns and spread "
        f"({len(signals)} signal{'' if len(signals) == 1 else 's'})",
        fontsize=11,
    )
    top.set_ylabel("return (%)")
    bottom.set_ylabel("spread (pp)")
    return _finish(fig, axis, top, bottom)


def ah_figure(data: ChartData, pair: str) -> Figure:
    signals = [s for s in data.signals.get(("ah_premium", pair), []) if isinstance(s, AhPremium)]
    rule = next(r for r in data.rules.ah if r.name == pair)
    trace = data.traces.get(("ah_premium", pair), [])
    zone = data.zone(rule.a)
    instants = [row[0] for row in trace]
    premiums = [row[1] for row in trace]
    axis = SessionAxis(instants, zone)
    fig = Figure(figsize=(11, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    lx, ly = axis.line(instants, premiums)
    fx = rule.fx if rule.fx is not None else f"fixed {rule.fx_rate:g}"
    ax.plot(
        lx, ly, color="#1f77b4", linewidth=0.9, label=f"premium of {rule.a} (x {fx}) over {rule.h}"
    )
    negative = bool(premiums) and min(premiums) < 0
    _band(ax, rule.threshold_pct, rule.hysteresis, negative, "%")
    _phase_markers(ax, axis, [(s.phase, to_us(s.ts), s.premium_pct) for s in signals])
    for start, end in _open_spans(signals, instants[-1] if instants else None):
        ax.axvspan(axis.x(start), axis.x(end), color="#d62728", alpha=0.08, linewidth=0)
    ax.set_title(f"A/H premium {rule.a} / {rule.h} ({len(signals)} signals)", fontsize=11)
    ax.set_ylabel("premium (%)")
    return _finish(fig, axis, ax)


# -- the day moves --------------------------------------------------------------------

MOVE_STYLE = {"up": ("^", "#d62728"), "down": ("v", "#2ca02c")}
HIT_COLOUR = {"up": "#d62728", "down": "#2ca02c"}
HIT_MARKER = {"up": "^", "down": "v"}
SPIKE_COLOURS = ("#ff7f0e", "#d62728", "#9467bd", "#8c564b")


def _legend_outside(*axes: Axes) -> None:
    # Right of the plot: a day's move can be anywhere in the panel, so no corner is free.
    for ax in axes:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)


def _margin_note(ax: Axes, text: str) -> None:
    """Text in the right margin, at the bottom (the legend is at the top)."""
    ax.text(1.01, 0.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=8)


def _day_chunks(days: Sequence[int]) -> list[tuple[int, int]]:
    """(first, end) index of each run of equal dates."""
    chunks: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i] != days[start]:
            chunks.append((start, i))
            start = i
    return chunks


def _date_line(
    axis: SessionAxis, instants: Sequence[int], values: Sequence[float], days: Sequence[int]
) -> tuple[list[float], list[float]]:
    """Like `SessionAxis.line`, and also broken where the date changes: each date's
    values are against its own reference (previous close, volume from zero)."""
    xs: list[float] = []
    ys: list[float] = []
    for start, end in _day_chunks(days):
        lx, ly = axis.line(instants[start:end], values[start:end])
        if xs:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.extend(lx)
        ys.extend(ly)
    return xs, ys


def _steps(
    axis: SessionAxis, trace: DayTrace, value: Callable[[DayState], float | None]
) -> tuple[list[float], list[float]]:
    """A level held over each run of ticks (a date, or part of one if the state changed
    within it), from its first tick to its last, broken between runs and where None."""
    xs: list[float] = []
    ys: list[float] = []
    for state, start, end in trace.runs():
        y = value(state)
        if y is None:
            continue
        xs += [axis.x(trace.us[start]), axis.x(trace.us[end - 1]), float("nan")]
        ys += [y, y, float("nan")]
    return xs, ys


def _trace_days(trace: DayTrace) -> list[int]:
    days: list[int] = []
    for state, start, end in trace.runs():
        days += [state.day] * (end - start)
    return days


def price_move_figure(data: ChartData, symbol: str) -> Figure:
    signals = [s for s in data.signals.get(("price_move", symbol), []) if isinstance(s, PriceMove)]
    trace = data.day_traces.get(symbol, DayTrace())
    levels = sorted(data.rules.price_move.levels_pct) if data.rules.price_move else []
    zone = data.zone(symbol)
    axis = SessionAxis(trace.us, zone)
    days = _trace_days(trace)
    closes = [state.prev_close for state, start, end in trace.runs() for _ in range(start, end)]
    changes = [(p / c - 1.0) * 100.0 for p, c in zip(trace.price, closes, strict=True)]
    fig = Figure(figsize=(12, 7), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 3))
    lx, ly = _date_line(axis, trace.us, trace.price, days)
    top.plot(lx, ly, color="#1f77b4", linewidth=0.9, label=f"{symbol} price")
    sx, sy = _steps(axis, trace, lambda state: state.prev_close)
    top.plot(sx, sy, color="grey", linestyle="--", linewidth=0.9, label="previous close")
    lx, ly = _date_line(axis, trace.us, changes, days)
    bottom.plot(
        lx,
        ly,
        color="black",
        linewidth=0.8,
        label=f"change vs previous close ({len(changes)} ticks)",
    )
    bottom.axhline(0, color="grey", linewidth=0.5)
    # Darker for a bigger level: the eye finds the 20% line first.
    for i, level in enumerate(levels):
        alpha = 0.35 + 0.65 * (i + 1) / len(levels)
        for sign in (1, -1):
            bottom.axhline(sign * level, color="#7f7f7f", linestyle=":", linewidth=0.9, alpha=alpha)
    if levels:
        bottom.plot(
            [],
            [],
            color="#7f7f7f",
            linestyle=":",
            label="levels " + ", ".join(f"±{x:g}%" for x in levels),
        )
    for direction in ("up", "down"):
        chosen = [(to_us(s.ts), s.change_pct) for s in signals if s.direction == direction]
        if chosen:
            _markers(
                bottom,
                axis,
                chosen,
                direction,
                MOVE_STYLE[direction],
                f"crossed {direction} ({len(chosen)})",
            )
    if signals:
        # The largest move is the story of the chart: ringed, and told in the margin
        # under the legend, where no label can cover a day's line.
        big = max(signals, key=lambda s: (s.level_pct, abs(s.change_pct)))
        bottom.plot(
            [axis.x(to_us(big.ts))],
            [big.change_pct],
            linestyle="none",
            marker="o",
            markersize=16,
            markerfacecolor="none",
            markeredgecolor="black",
            markeredgewidth=1.0,
            label=f"largest crossing: {'+' if big.direction == 'up' else '-'}{big.level_pct:g}%",
            zorder=6,
        )
        big_day = ZoneClock(zone).day(to_us(big.ts))
        that_day = [c for c, d in zip(changes, days, strict=True) if d == big_day]
        peak = (max if big.direction == "up" else min)(that_day, default=big.change_pct)
        _margin_note(
            bottom,
            f"largest crossing: {big.change_pct:+.1f}%\nat {local_time(big.ts, zone)}\n"
            f"vs {big.previous_close:g}, the close of {big.previous_close_date};\n"
            f"that day's {'high' if big.direction == 'up' else 'low'}: {peak:+.1f}%",
        )
    _symlog_if_outlying(bottom, changes, levels)
    up = sum(s.direction == "up" for s in signals)
    top.set_title(
        f"{symbol}: the day's move vs the previous close, {len(signals)} level crossing"
        f"{'' if len(signals) == 1 else 's'} ({up} up, {len(signals) - up} down)",
        fontsize=11,
    )
    top.set_ylabel("price")
    bottom.set_ylabel("change vs previous close (%)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    _legend_outside(top, bottom)
    axis.decorate(bottom)
    return fig


def _symlog_if_outlying(ax: Axes, changes: Sequence[float], levels: Sequence[float]) -> None:
    """A new listing's first day (+233%) would flatten every other day to a line: past
    1.5 times the largest level the scale turns logarithmic, linear within it, with
    plain ticks (the levels, then 100%, 1000%) rather than powers of ten."""
    if not changes or not levels:
        return
    top, bottom = max(changes), min(changes)
    linthresh = max(levels) * 1.5
    if max(top, -bottom) <= 2 * max(levels):
        return
    # linscale: the linear part keeps most of the height, where the levels are.
    ax.set_yscale("symlog", linthresh=linthresh, linscale=2)
    far = [v for v in (100, 1000, 10000) if v > linthresh]
    ticks = [0.0, *levels, *(-x for x in levels)]
    ticks += [v for v in far if v <= top * 1.1] + [-v for v in far if -v >= bottom * 1.1]
    ax.set_yticks(sorted(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:+g}%" if y else "0"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.text(
        0.995,
        0.02,
        f"logarithmic beyond ±{linthresh:g}%",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
        color="grey",
    )


def limit_hit_figure(data: ChartData, symbol: str) -> Figure:
    signals = [s for s in data.signals.get(("limit_hit", symbol), []) if isinstance(s, LimitHit)]
    trace = data.day_traces.get(symbol, DayTrace())
    zone = data.zone(symbol)
    clock = ZoneClock(zone)
    instants, prices = data.ticks.get(symbol, ([], []))
    hit_days = sorted({clock.day(to_us(s.ts)) for s in signals})
    pct = signals[0].limit_pct if signals else None
    fig = Figure(figsize=(12, 8), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(2, 3))
    # Overview: every tick and every date's band, the dates with a hit shaded.
    axis = SessionAxis(instants, zone)
    _price_and_band(top, axis, instants, prices, trace, symbol, pct)
    days = [clock.day(us) for us in instants]
    keep = [i for i, day in enumerate(days) if day in hit_days]
    for day in hit_days:
        on_day = [instants[i] for i in keep if days[i] == day]
        if not on_day:
            continue  # signals without their ticks (a ChartData filled by hand)
        top.axvspan(axis.x(on_day[0]), axis.x(on_day[-1]), color="#ff7f0e", alpha=0.3, linewidth=0)
    if hit_days:
        top.plot([], [], color="#ff7f0e", alpha=0.45, linewidth=6, label="dates with a hit (below)")
    # Below: only the dates with a hit, where seals and openings minutes apart can be told.
    zoom_us = [instants[i] for i in keep]
    zoom_prices = [prices[i] for i in keep]
    zoom = SessionAxis(zoom_us, zone)
    zoom_trace = _trace_on(trace, set(hit_days))
    bands = _price_and_band(bottom, zoom, zoom_us, zoom_prices, zoom_trace, symbol, pct)
    for direction in ("up", "down"):
        for phase in ("sealed", "opened"):
            chosen = [s for s in signals if (s.direction, s.phase) == (direction, phase)]
            if not chosen:
                continue
            colour = HIT_COLOUR[direction]
            bottom.plot(
                [zoom.x(to_us(s.ts)) for s in chosen],
                [s.price for s in chosen],
                linestyle="none",
                marker=HIT_MARKER[direction],
                markersize=10,
                color=colour,
                # filled at a seal, hollow at an opening: the same place, the opposite event
                markerfacecolor=colour if phase == "sealed" else "white",
                markeredgecolor="black" if phase == "sealed" else colour,
                markeredgewidth=1.2,
                label=f"limit-{direction} {phase} ({len(chosen)})",
                gid=f"{MARKER_GID}:{phase}-{direction}",
                zorder=5,
            )
    for i, s in enumerate(signals):
        text = f"seal #{s.seals}" if s.phase == "sealed" else "opened"
        # Above the upper limit, below the lower one: clear of the price; staggered so a
        # seal and an opening minutes apart do not print over each other.
        dy = (12 + 14 * (i % 2)) * (1 if s.direction == "up" else -1)
        bottom.annotate(
            f"{text} {s.ts.astimezone(zone):%H:%M}",
            xy=(zoom.x(to_us(s.ts)), s.price),
            xytext=(0, dy),
            textcoords="offset points",
            ha="center",
            va="bottom" if dy > 0 else "top",
            fontsize=7,
        )
    _fit_to_hits(bottom, zoom_prices, signals, bands, zoom_trace)
    seals = sum(s.phase == "sealed" for s in signals)
    opened = len(signals) - seals
    limit = f"{pct:g}% " if pct is not None else ""
    top.set_title(
        f"{symbol}: daily {limit}price limits, {seals} seal{'' if seals == 1 else 's'} and "
        f"{opened} opening{'' if opened == 1 else 's'}",
        fontsize=11,
    )
    names = [date.fromordinal(d).strftime("%d %b %Y") for d in hit_days]
    shown = ", ".join(names) if len(names) <= 6 else f"{len(names)}, {names[0]} to {names[-1]}"
    bottom.set_title(f"the dates with a hit: {shown}", fontsize=9)
    for ax in (top, bottom):
        ax.set_ylabel("price")
        ax.grid(alpha=0.3)
    _legend_outside(top, bottom)
    axis.decorate(top)
    zoom.decorate(bottom, max_labels=max(len(hit_days), 1))
    if len(hit_days) <= 3:
        _hour_ticks(bottom, zoom, zoom_us)
    return fig


def _hour_ticks(ax: Axes, axis: SessionAxis, instants: Sequence[int]) -> None:
    """Label each full hour a session crosses: on a zoom of a day or two, when a seal
    came matters more than which date (already labelled) it was."""
    hour_us = 3_600_000_000
    xs: list[float] = []
    labels: list[str] = []
    for a, b in itertools.pairwise(instants):
        offset = from_us(b, axis.zone).utcoffset()
        off_us = 0 if offset is None else offset // timedelta(microseconds=1)
        boundary = (b + off_us) // hour_us * hour_us - off_us
        # Across a closed period only a session that opens on the hour (13:00) has one
        # on the axis; the hours inside the closed period are not drawn.
        if a < boundary <= b and (axis.session(a) == axis.session(b) or boundary == b):
            xs.append(axis.x(boundary))
            labels.append(from_us(boundary, axis.zone).strftime("%H:%M"))
    ax.set_xticks(xs, labels, minor=True, fontsize=7)


def _fit_to_hits(
    ax: Axes,
    prices: Sequence[float],
    signals: Sequence[LimitHit],
    bands: tuple[Line2D, Line2D],
    trace: DayTrace,
) -> None:
    """Fit the y-range to the price and the limits that were hit: the other limit (20%
    away) would squeeze the minutes around the seal into a sliver. Say so if it is out."""
    hit = [s.limit_price for s in signals]
    lo, hi = min([*prices, *hit]), max([*prices, *hit])
    pad = max(hi - lo, 0.02 * hi) * 0.2  # room for the labels above and below
    ax.set_ylim(lo - pad, hi + pad)
    for side, (line, direction) in enumerate(zip(bands, ("up", "down"), strict=True)):
        if not any(s.direction == direction for s in signals):
            ys = [state.band[side] for _, state in trace.states if state.band is not None]
            if ys and not all(lo - pad <= y <= hi + pad for y in ys):
                line.set_label(f"{line.get_label()} (off the chart)")


def _trace_on(trace: DayTrace, days: set[int]) -> DayTrace:
    """The part of `trace` on `days`."""
    out = DayTrace()
    for state, start, end in trace.runs():
        if state.day in days:
            out.states.append((len(out.us), state))
            out.us += trace.us[start:end]
            out.price += trace.price[start:end]
            out.volume += trace.volume[start:end]
    return out


def _price_and_band(
    ax: Axes,
    axis: SessionAxis,
    instants: Sequence[int],
    prices: Sequence[float],
    trace: DayTrace,
    symbol: str,
    pct: float | None,
) -> tuple[Line2D, Line2D]:
    """The price and each date's (upper, lower) limit as steps; the two limit lines."""
    lx, ly = axis.line(instants, prices)
    ax.plot(lx, ly, color="#1f77b4", linewidth=0.9, label=f"{symbol} price", zorder=3)
    share = f"{pct:g}%" if pct is not None else ""
    ux, uy = _steps(axis, trace, lambda state: None if state.band is None else state.band[0])
    lx, ly = _steps(axis, trace, lambda state: None if state.band is None else state.band[1])
    (upper,) = ax.plot(
        ux, uy, color=HIT_COLOUR["up"], linewidth=1.4, label=f"upper limit (+{share})"
    )
    (lower,) = ax.plot(
        lx, ly, color=HIT_COLOUR["down"], linewidth=1.4, label=f"lower limit (-{share})"
    )
    free = {state.day for state, _, _ in trace.runs() if state.band is None}
    if free:
        ax.plot(
            [],
            [],
            color="none",
            label=f"no limit on {len(free)} date{'' if len(free) == 1 else 's'} (new listing)",
        )
    return upper, lower


def volume_spike_figure(data: ChartData, symbol: str) -> Figure:
    signals = [
        s for s in data.signals.get(("volume_spike", symbol), []) if isinstance(s, VolumeSpike)
    ]
    trace = data.day_traces.get(symbol, DayTrace())
    spike = data.rules.volume_spike
    multiples = sorted(spike.multiples) if spike is not None else []
    n_days = spike.days if spike is not None else 0
    zone = data.zone(symbol)
    axis = SessionAxis(trace.us, zone)
    days = _trace_days(trace)
    fig = Figure(figsize=(12, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    lx, ly = _date_line(axis, trace.us, [float(v) for v in trace.volume], days)
    ax.plot(lx, ly, color="#1f77b4", linewidth=1.0, label=f"{symbol} the day's volume so far")
    sx, sy = _steps(axis, trace, lambda state: state.average_volume)
    ax.plot(sx, sy, color="black", linestyle="--", linewidth=1.0, label=f"{n_days}-day average")
    averages = [state.average_volume for _, state in trace.states if state.average_volume]
    ceiling = None
    if averages and multiples:
        # Up to the lowest multiple line, not the highest: a 5x line nobody reached would
        # squeeze every day's volume into the bottom fifth.
        lowest_line = multiples[0] * max(averages)
        ceiling = max(lowest_line, max(trace.volume, default=0)) * 1.15
        ax.set_ylim(0, ceiling)
    for i, m in enumerate(multiples):

        def line_at(state: DayState, m: float = m) -> float | None:
            return None if state.average_volume is None else m * state.average_volume

        sx, sy = _steps(axis, trace, line_at)
        above = ceiling is not None and min(y for y in sy if not math.isnan(y)) > ceiling
        ax.plot(
            sx,
            sy,
            color=SPIKE_COLOURS[i % len(SPIKE_COLOURS)],
            linestyle=":",
            linewidth=1.2,
            label=f"{m:g} x average" + (" (above the chart)" if above else ""),
        )
    for i, m in enumerate(multiples):
        chosen = [(to_us(s.ts), float(s.volume)) for s in signals if s.multiple == m]
        if chosen:
            _markers(
                ax,
                axis,
                chosen,
                f"x{m:g}",
                ("D", SPIKE_COLOURS[i % len(SPIKE_COLOURS)]),
                f"volume past {m:g}x ({len(chosen)})",
            )
    if signals:
        # In the margin, not by the marker: the label would sit on the multiple lines.
        shown = signals[:4]
        _margin_note(
            ax,
            "\n".join(
                f"x{s.multiple:g} at {local_time(s.ts, zone)}:\n"
                f"  {s.volume:,} vs {s.average_volume:,.0f} a day"
                for s in shown
            )
            + (f"\n... and {len(signals) - len(shown)} more" if len(signals) > len(shown) else ""),
        )
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    n = len(signals)
    ax.set_title(
        f"{symbol}: the day's volume against its {n_days}-day average, "
        f"{n} spike{'' if n == 1 else 's'}",
        fontsize=11,
    )
    ax.set_ylabel("volume (cumulative over the day)")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    axis.decorate(ax)
    return fig


def price_level_figure(data: ChartData, symbol: str) -> Figure:
    signals = [
        s for s in data.signals.get(("price_level", symbol), []) if isinstance(s, PriceLevel)
    ]
    zone = data.zone(symbol)
    instants, prices = data.ticks.get(symbol, ([], []))
    axis = SessionAxis(instants, zone)
    fig = Figure(figsize=(11, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    lx, ly = axis.line(instants, prices)
    ax.plot(lx, ly, color="#1f77b4", linewidth=0.9, label=f"{symbol} price ({len(prices)} ticks)")
    levels = data.levels_of(symbol)
    for i, level in enumerate(levels):
        _, colour, style = LEVEL_STYLE[level.direction]
        # Named in the legend (the first few: a symbol may carry hundreds of levels).
        label = f"level {level.direction} {level.price:g} ({level.level_id})"
        ax.axhline(
            level.price,
            color=colour,
            linestyle=style,
            linewidth=0.8,
            alpha=0.8,
            label=label if i < MAX_LEVEL_LABELS else None,
        )
    if len(levels) > MAX_LEVEL_LABELS:
        ax.plot([], [], color="grey", label=f"... {len(levels) - MAX_LEVEL_LABELS} more levels")
    for direction in ("above", "below"):
        chosen = [(to_us(s.ts), s.price) for s in signals if s.direction == direction]
        if chosen:
            marker, colour, _ = LEVEL_STYLE[direction]
            _markers(
                ax,
                axis,
                chosen,
                direction,
                (marker, colour),
                f"crossed {direction} ({len(chosen)})",
            )
    n, k = len(signals), len(levels)
    ax.set_title(
        f"{symbol}: {k} price level{'' if k == 1 else 's'}, {n} crossing{'' if n == 1 else 's'}",
        fontsize=11,
    )
    ax.set_ylabel("price")
    return _finish(fig, axis, ax)


FIGURES = {
    "record_high": record_high_figure,
    "index_divergence": divergence_figure,
    "ah_premium": ah_figure,
    "price_move": price_move_figure,
    "limit_hit": limit_hit_figure,
    "volume_spike": volume_spike_figure,
    "price_level": price_level_figure,
}


# -- choosing and writing -------------------------------------------------------------


def write_charts(
    data: ChartData,
    directory: Path,
    wanted: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key in choose(data, wanted, limit):
        fig = FIGURES[key[0]](data, key[1])
        path = directory / file_name(key)
        FigureCanvasAgg(fig)  # headless: the Agg canvas, never a GUI backend
        fig.savefig(path, format="png")
        written.append(path)
    return written
