"""docs/bench.png from bench/results.json (matplotlib): `python bench/bench_chart.py`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent

LABELS = {
    "aiokafka_json": "aiokafka + json\n(limit)",
    "aiokafka_orjson": "aiokafka + orjson\n(limit)",
    "faust_bare": "bare faust agent\n(ceiling)",
    "quix_peer": "Quix Streams\npeer",
    "processor": "marketsignal\nprocess",
    "processor_bundles": "process\ntick bundles",
    "processor_2_workers": "process\n2 workers",
    "processor_bundles_record_highs": "bundles\nrecord highs only",
    "processor_bundles_day_moves": "bundles\n+ day moves",
    "processor_bundles_every_signal": "bundles\nevery signal",
    "backtest_record_highs": "backtest\nrecord highs only",
    "backtest_every_signal": "backtest\nevery signal",
    "backtest": "backtest\n(no broker)",
    "kafka_python_producer": "kafka-python\nproducer",
    "ingest": "marketsignal\ningest",
    "kafka_python_producer_bundles": "kafka-python\nsame bundles",
    "ingest_bundles": "ingest\ntick bundles",
    "kafka_python_producer_ingest_settings": "kafka-python\ningest's settings",
    "kafka_python_producer_ingest_settings_bundles": "kafka-python, bundles\ningest's settings",
}
CONSUMERS = [
    "aiokafka_json",
    "aiokafka_orjson",
    "faust_bare",
    "quix_peer",
    "processor",
    "processor_2_workers",
    "processor_bundles",
    "processor_bundles_record_highs",
    "processor_bundles_day_moves",
    "processor_bundles_every_signal",
    "backtest",
    "backtest_record_highs",
    "backtest_every_signal",
]
PRODUCERS = [
    "kafka_python_producer",
    "kafka_python_producer_ingest_settings",
    "ingest",
    "kafka_python_producer_bundles",
    "kafka_python_producer_ingest_settings_bundles",
    "ingest_bundles",
]


def _bars(ax: Any, names: list[str], tp: dict[str, Any], title: str, highlight: set[str]) -> None:
    shown = [n for n in names if n in tp]
    rates = [tp[n]["rate"] for n in shown]
    colors = ["tab:orange" if n in highlight else "tab:blue" for n in shown]
    bars = ax.bar([LABELS[n] for n in shown], rates, color=colors)
    ax.set_yscale("log")
    ax.set_ylabel("ticks/s (log)")
    ax.set_title(title)
    for bar, rate in zip(bars, rates, strict=True):
        ax.annotate(
            f"{rate:,.0f}",
            (bar.get_x() + bar.get_width() / 2, rate),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    # Eight bars with two-line labels: slanted, or neighbours overlap.
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")


COST_PROCESSES = ("broker", "processor", "ingestor", "alerter")


def _cost(cpu_ax: Any, lat_ax: Any, figures: dict[str, Any] | None) -> None:
    """Issue 26: each process's CPU at idle and at each paced rate (stacked), and the
    latency at those rates, on `make up`'s services."""
    cpu_ax.set_title("CPU at a live pace, make up's services (share of one core)")
    lat_ax.set_title("Tick-to-alert at a live pace, make up's services")
    if not figures:
        return
    rows = [("idle", figures["idle"])] + [
        (f"{lv['rate']:,}/s", lv["cpu"]) for lv in figures["levels"]
    ]
    peer = figures.get("peer")
    if peer is not None:
        rows.append(
            (f"Quix peer {peer['rate']:,}/s", peer["cpu"] | {"processor": peer["cpu"]["peer"]})
        )
    x = range(len(rows))
    bottom = [0.0] * len(rows)
    for name in COST_PROCESSES:
        heights = [cpu.get(name, 0.0) for _label, cpu in rows]
        cpu_ax.bar(list(x), heights, bottom=bottom, label=name)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for i, total in enumerate(bottom):
        cpu_ax.text(i, total, f"{total:.2f}", ha="center", va="bottom", fontsize=8)
    cpu_ax.axhline(0.8, color="red", linewidth=0.7, label="target at 5k: 0.8")
    cpu_ax.set_xticks(list(x), [label for label, _cpu in rows], fontsize=8)
    cpu_ax.legend(fontsize=7)
    rates = [lv["rate"] for lv in figures["levels"]]
    for where, style in (("histogram", "--"), ("subscriber", "-")):
        for q, color in (("p50_ms", "tab:green"), ("p99_ms", "tab:red")):
            ys = [lv[where].get(q, float("nan")) for lv in figures["levels"]]
            lat_ax.plot(rates, ys, style, marker="o", color=color, label=f"{q[:3]} ({where})")
    if peer is not None:
        for q, color in (("p50_ms", "tab:green"), ("p99_ms", "tab:red")):
            y = peer["signal_latency"].get(q)
            if y is not None:
                lat_ax.plot([peer["rate"]], [y], "s", color=color, label=f"Quix peer {q[:3]}")
    lat_ax.axhline(50, color="black", linewidth=0.5)
    lat_ax.set_xscale("log")
    lat_ax.set_xlabel("ticks/s paced")
    lat_ax.set_ylabel("ms")
    lat_ax.legend(fontsize=7)


def draw(results: dict[str, Any], path: Path) -> None:
    tp = results["throughput"]
    fig, axes = plt.subplots(2, 3, figsize=(19, 9))
    _bars(
        axes[0][0],
        CONSUMERS,
        tp,
        f"Consuming the same {results['ticks']:,} ticks",
        {
            "processor",
            "processor_2_workers",
            "processor_bundles",
            "processor_bundles_record_highs",
            "processor_bundles_day_moves",
            "processor_bundles_every_signal",
        },
    )
    _bars(
        axes[0][1],
        PRODUCERS,
        tp,
        "Producing the same bytes (acks=all, idempotent)",
        {"ingest", "ingest_bundles"},
    )

    ax = axes[1][0]
    every = results.get("latency", {}).get("levels", [])
    # The curve: the paced levels with the ingestor's default bundles; the level without
    # them is a marker of its own.
    levels = [lv for lv in every if lv.get("bundles", True)]
    for lv in every:
        if not lv.get("bundles", True):
            p99 = lv["subscriber"]["record_high"].get("p99_ms")
            if p99 is not None:
                ax.plot(
                    [lv["rate"]], [p99], "s", color="purple", label="record_high p99, no bundles"
                )
    if levels:
        rates = [lv["rate"] for lv in levels]
        for kind, style in (("record_high", "-"), ("index_divergence", ":")):
            for q, color in (("p50_ms", "tab:green"), ("p99_ms", "tab:red")):
                ys = [lv["subscriber"][kind].get(q) for lv in levels]
                if any(y is not None for y in ys):
                    ax.plot(
                        rates,
                        [y if y is not None else float("nan") for y in ys],
                        style,
                        marker="o",
                        color=color,
                        label=f"{kind} {q[:3]} (subscriber)",
                    )
        ys = [lv["histogram"].get("p99_ms") for lv in levels]
        ax.plot(
            rates,
            [y if y is not None else float("nan") for y in ys],
            "--",
            marker="x",
            color="gray",
            label="p99 (alerter histogram)",
        )
        ax.axhline(100, color="black", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ticks/s paced")
        ax.set_ylabel("tick-to-alert ms (log)")
        ax.legend(fontsize=7)
    ax.set_title("Tick-to-alert latency")

    ax = axes[1][1]
    rows = results.get("alerter", [])
    if rows:
        labels = [f"{r['subscriptions']:,} subs" for r in rows]
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r["alerts_per_s"] for r in rows], width=0.4, label="alerts/s")
        ax.bar(
            [i + 0.2 for i in x],
            [r["deliveries_per_s"] for r in rows],
            width=0.4,
            label="subscription deliveries/s",
        )
        ax.set_xticks(list(x), labels)
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_title("Alerter (Redis)")
    _cost(axes[0][2], axes[1][2], results.get("cost"))
    ratios = results.get("ratios", {})
    versions = results.get("versions", {})
    fig.suptitle(
        f"marketsignal live path, {results['machine']['cpus']} cores shared, one run "
        f"({results['started']}); processor/ceiling {ratios.get('processor_to_ceiling', 0):.2f}, "
        f"processor/peer {ratios.get('processor_to_peer', 0):.2f}, "
        f"processor/limit {ratios.get('processor_to_limit_orjson', 0):.2f}; with tick bundles: "
        f"processor/peer {ratios.get('processor_bundles_to_peer', 0):.2f}, "
        f"{results['throughput'].get('processor_bundles', {}).get('rate', 0):,.0f} ticks/s\n"
        + ", ".join(f"{k} {v}" for k, v in versions.items()),
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    draw(json.loads(source.read_text()), ROOT / "docs" / "bench.png")
