"""The built-in feed adapters, by name (`marketsignal ingest --ws URL --adapter NAME`).

Each maps one vendor's JSON messages to ticks, its symbols through a `SymbolMap`;
docs/feeds.md shows a message of each and the tick it becomes. The contract every
adapter follows, built-in or a user's `module:function`, is in `base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import SecretStr

from services.ingestor.adapters import alpaca, polygon
from services.ingestor.adapters.alpaca import AlpacaTrades
from services.ingestor.adapters.base import Adapter, Handshake
from services.ingestor.adapters.polygon import PolygonTrades
from services.ingestor.symbols import SymbolMap
from services.runtime.settings import Settings

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


def handshake(
    name: str, settings: Settings, symbols: Sequence[str], *, log_in: bool = True
) -> Handshake:
    """The built-in adapter `name`'s login (credentials from `settings`; none if not
    `log_in`) and subscription to the trades of `symbols`; ValueError naming the
    variables to set if a credential is missing."""
    if name == "polygon":
        names = "MARKETSIGNAL_POLYGON_API_KEY"
        key = _secret(settings.polygon_api_key, names) if log_in else None
        return polygon.handshake(key, symbols, names)
    if name == "alpaca":
        names = "MARKETSIGNAL_ALPACA_KEY_ID and MARKETSIGNAL_ALPACA_SECRET_KEY"
        keys = None
        if log_in:
            keys = (
                _secret(settings.alpaca_key_id, "MARKETSIGNAL_ALPACA_KEY_ID"),
                _secret(settings.alpaca_secret_key, "MARKETSIGNAL_ALPACA_SECRET_KEY"),
            )
        return alpaca.handshake(keys, symbols, names)
    raise ValueError(f"adapter {name!r} is not a built-in one ({', '.join(BUILT_IN)})")


def _secret(value: SecretStr | None, variable: str) -> str:
    if value is None or not value.get_secret_value():
        raise ValueError(
            f"{variable} is not set: the feed wants it to log in (or the same with _FILE, "
            "a file holding it; --no-login for a relay that logs in itself)"
        )
    return value.get_secret_value()
