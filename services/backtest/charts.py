"""Charts of a backtest: one PNG per subject that fired (matplotlib, headless Agg).

- record_high: the symbol's price, each record high marked by window, the last one
  labelled; daily history bars (date, high, close), when given, drawn faintly before.
- index_divergence: both indices' window returns at every evaluated tick, the spread
  below them with the open level (`threshold_pp`) and the close level
  (`threshold_pp * hysteresis`) as a shaded band, and the time the divergence was open.
- ah_premium: the premium at every evaluated tick with the same threshold and
  hysteresis band and open spans.

The time axis (session_axis.py) is the subject's exchange-local time (a pair: its first
symbol's zone) with closed sessions collapsed: wherever consecutive points are more than
`GAP_S` apart (night, lunch, weekend, a holiday) the axis jumps by a fixed gap and the
lines break, so a chart of two months shows the trading, not the nights. Figures are built with
`matplotlib.figure.Figure` (no pyplot state); saving a PNG uses the Agg canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, tzinfo
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from schemas.signals import AhPremium, IndexDivergence, RecordHigh
from services.backtest.chart_data import DEFAULT_LIMIT, ChartData, choose, file_name
from services.backtest.session_axis import SessionAxis
from services.detection.timeline import to_us

MARKER_GID = "signals"
WINDOW_STYLE = {"all_time": ("^", "#d62728"), "52w": ("o", "#ff7f0e")}
PHASE_STYLE = {"open": ("^", "#d62728"), "close": ("v", "#2ca02c")}


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


# -- the three kinds of chart ---------------------------------------------------------


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


FIGURES = {
    "record_high": record_high_figure,
    "index_divergence": divergence_figure,
    "ah_premium": ah_figure,
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
