"""The built-in feed adapters, by name (`marketsignal ingest --ws URL --adapter NAME`).

Each maps one vendor's JSON messages to ticks, its symbols through a `SymbolMap`;
docs/feeds.md shows a message of each and the tick it becomes. The contract every
adapter follows, built-in or a user's `module:function`, is in `base`.
"""

from __future__ import annotations

from collections.abc import Callable

from services.ingestor.adapters.alpaca import AlpacaTrades
from services.ingestor.adapters.base import Adapter
from services.ingestor.adapters.polygon import PolygonTrades
from services.ingestor.symbols import SymbolMap

# name -> (factory, one line for --help)
BUILT_IN: dict[str, tuple[Callable[[SymbolMap], Adapter], str]] = {
    "polygon": (PolygonTrades, "Polygon.io/Massive stock trades"),
    "alpaca": (AlpacaTrades, "Alpaca stock trades"),
}


def built_in(name: str, symbols: SymbolMap | None = None) -> Adapter:
    """The built-in adapter `name`; ValueError naming the built-in ones if there is none."""
    entry = BUILT_IN.get(name)
    if entry is None:
        names = ", ".join(BUILT_IN)
        raise ValueError(
            f"adapter {name!r} is not a built-in one ({names}) "
            "nor looks like package.module:function"
        )
    return entry[0](symbols or SymbolMap())
