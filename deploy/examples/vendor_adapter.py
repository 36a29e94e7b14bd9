"""An example feed adapter for `marketsignal ingest --ws URL --adapter MODULE:FUNCTION`.

A made-up vendor sends messages like

    {"ev": "T", "sym": "0700.HK", "t": 1770948000123, "p": 612.5, "s": 300}
    {"ev": "status", "message": "subscribed"}
    {"ev": "batch", "data": [{"ev": "T", ...}, ...]}

`to_ticks` turns each decoded JSON message into zero or more tick mappings (`symbol`,
`ts`, `price`, optional `volume`, `kind`). Whatever it returns is validated like a file
line (bad ticks go to the dead-letter topic with the field at fault); an exception
dead-letters the whole message. Run it with the module on the Python path, e.g.

    PYTHONPATH=deploy/examples marketsignal ingest --ws wss://feed.example/v1 \\
        --subscribe subscribe.json --adapter vendor_adapter:to_ticks
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def to_ticks(message: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(message, dict):
        return
    event = message.get("ev")
    if event == "batch":
        for item in message.get("data", []):
            yield from to_ticks(item)
    elif event == "T":
        yield {
            "symbol": message.get("sym"),
            "ts": message.get("t"),  # epoch milliseconds
            "price": message.get("p"),
            "volume": message.get("s", 0),
        }
    # anything else (status, heartbeats) carries no tick
