"""The bundler's clock-free `append` must bundle exactly as `add` alone does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingestor.bundling import Bundle, Bundler


def shape(bundles: list[Bundle]) -> list[tuple[int, list[str], list[bytes], int]]:
    return [(b.partition, b.symbols, b.values, b.size) for b in bundles]


@settings(max_examples=300, deadline=None)
@given(
    max_ticks=st.integers(min_value=1, max_value=6),
    max_bytes=st.integers(min_value=2, max_value=60),
    ticks=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=25)),
        max_size=80,
    ),
)
def test_append_then_add_closes_the_same_bundles_as_add(
    max_ticks: int, max_bytes: int, ticks: list[tuple[int, int]]
) -> None:
    only_add = Bundler(1.0, max_ticks, max_bytes)
    with_append = Bundler(1.0, max_ticks, max_bytes)
    closed_a: list[Bundle] = []
    closed_b: list[Bundle] = []
    for i, (partition, length) in enumerate(ticks):
        symbol, value = f"S{i % 4}", bytes([65 + i % 26]) * length
        closed_a += only_add.add(partition, symbol, value, 0.0, 0)
        if not with_append.append(partition, symbol, value):
            closed_b += with_append.add(partition, symbol, value, 0.0, 0)
    assert shape(closed_a) == shape(closed_b)
    assert shape(only_add.drain()) == shape(with_append.drain())
