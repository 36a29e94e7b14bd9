"""A local WebSocket feed (the `websockets` library) for `marketsignal ingest --ws` and
`--yahoo`: it drops the first connection mid-stream without a close frame, goes away for
a moment, comes back, and re-sends from a little before the drop. `yahoo_message` builds
what Yahoo's streamer sends, with yfinance's own protobuf class."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from tests.support.services import free_port
from tests.support.wait import wait_for_async


class FeedServer:
    """Sends `messages`; the first connection drops after `drop_after`, and the next ones
    re-send from `resend_from` on, then stay open."""

    def __init__(
        self,
        messages: list[str],
        drop_after: int,
        resend_from: int,
        delivered: Callable[[], bool],
    ) -> None:
        """`delivered()`: whether the client has read the first `drop_after` messages."""
        self.messages = messages
        self.drop_after = drop_after
        self.resend_from = resend_from
        self.delivered = delivered
        self.port = free_port()
        self.subscribes: list[str] = []
        self.connections = 0
        self.dropped = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        self.subscribes.append(str(await ws.recv()))
        if first:
            for message in self.messages[: self.drop_after]:
                await ws.send(message)
            # An abort resets the connection: what the client has not read yet is lost.
            await wait_for_async("the client to read the first messages", self.delivered, 60)
            # Gone for a moment: stop listening, then drop the connection (no close
            # frame), so the client's first reconnect attempts are refused.
            assert self.server is not None
            self.server.close(close_connections=False)
            assert ws.transport is not None
            ws.transport.abort()
            self.dropped.set()
            return
        for message in self.messages[self.resend_from :]:
            await ws.send(message)
        await ws.wait_closed()

    def start(self) -> None:
        async def up() -> Server:
            return await serve(self.handler, "127.0.0.1", self.port)

        self.server = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def yahoo_message(**fields: Any) -> str:
    """A Yahoo streamer message: JSON around a base64 PricingData with `fields` (yfinance's
    generated class, the one its client decodes with), an equity in regular hours unless
    told otherwise."""
    from yfinance.pricing_pb2 import PricingData  # here: the yahoo extra

    data = PricingData(**{"quote_type": 8, "market_hours": 1, **fields})
    encoded = base64.b64encode(data.SerializeToString()).decode()
    return json.dumps({"type": "pricing", "message": encoded})
