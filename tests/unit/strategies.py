"""Hypothesis strategies the naive-reference suites share."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


@st.composite
def listed_or_free_price(
    draw: st.DrawFn,
    listed: Sequence[float],
    low: float,
    high: float,
    digits: int,
    free_one_in: int,
) -> float:
    """A listed price most of the time (ties and exact threshold steps happen often), else
    one in [low, high] rounded to `digits`, once in `free_one_in` draws."""
    if draw(st.integers(0, free_one_in - 1)):
        return draw(st.sampled_from(listed))
    return round(draw(st.floats(min_value=low, max_value=high)), digits)
