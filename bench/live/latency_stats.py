"""Latency arithmetic of the live bench: percentiles of measured delays, and quantiles of
the alerter's histogram between two scrapes."""

from __future__ import annotations

import re


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "p50_ms": at(0.5),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": ordered[-1] * 1000,
    }


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    out = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)$', text, re.M):
        out.append((float(m.group(1)), float(m.group(2))))
    return out


def histogram_quantiles(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> dict[str, float | int]:
    """Quantiles of the observations between two scrapes, as Prometheus' histogram_quantile
    estimates them (linear within a bucket)."""
    prior = dict(before)
    buckets = [(le, n - prior.get(le, 0.0)) for le, n in after]
    total = buckets[-1][1] if buckets else 0
    if not total:
        return {"n": 0}
    out: dict[str, float | int] = {"n": int(total)}
    for q in (0.5, 0.9, 0.99):
        rank = q * total
        lower, below = 0.0, 0.0
        for le, n in buckets:
            if n >= rank:
                if le == float("inf"):
                    out[f"p{round(q * 100)}_ms"] = lower * 1000
                else:
                    frac = (rank - below) / (n - below) if n > below else 1.0
                    out[f"p{round(q * 100)}_ms"] = (lower + (le - lower) * frac) * 1000
                break
            lower, below = le, n
    return out
