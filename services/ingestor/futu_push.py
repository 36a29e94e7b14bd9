"""`ingest --futu HOST:PORT --codes HK.00700,SH.600519`: OpenD's ticker push through
futu-api (the `futu` extra).

futu-api does the connection: `OpenQuoteContext(host, port)` connects to OpenD, and on a
drop reconnects by itself (every 6 s: futu/common/open_context_base.py, `_wait_reconnect`)
and subscribes again to what it had (futu/quote/open_quote_context.py,
`on_api_socket_reconnected`). Pushes arrive on futu-api's own thread, in a
`TickerHandlerBase` subclass (https://openapi.futunn.com/futu-api-doc/en/quote/
update-ticker.html); it hands each push's rows to a bounded queue, which this loop empties
into the screener and sink. A full queue blocks futu-api's callback thread: back-pressure
instead of memory. The rows' mapping and sequence checks are services/ingestor/
futu_tickers.py's.

This part has not met a real OpenD: there is none where it was written. It is tested
against a stand-in that speaks futu-api's framing with futu-api's own protobuf classes
(tests/support/fake_opend.py): connect, subscribe, pushes, a cut connection, futu-api's
reconnect and resubscription.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import orjson

from services.ingestor.adapters.base import parse_symbols
from services.ingestor.extras import require
from services.ingestor.futu_tickers import FutuTickers
from services.ingestor.ingest import IngestSummary, Sink
from services.ingestor.items import handle_item
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Screener
from services.ingestor.source_metrics import SourceMetrics
from services.ingestor.symbols import SymbolMap, UnmappableSymbolError

log = logging.getLogger("marketsignal.ingestor.futu")

Rows = list[dict[str, Any]]
# How often the loop looks at the connection's state while no push comes.
_STATUS_EVERY_S = 0.5


class FutuError(Exception):
    """OpenD refused what was asked (the subscription); the message says why."""


@dataclass(frozen=True)
class FutuOptions:
    host: str
    port: int
    codes: tuple[str, ...]
    queue_max: int = 1_000  # pushes (each a few rows) waiting for the loop
    max_in_flight: int = 10_000


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (OpenD's default port is 11111); ValueError saying what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--futu {text!r}: expected HOST:PORT, e.g. 127.0.0.1:11111")
    return host, int(port)


def parse_futu_codes(text: str, symbols: SymbolMap) -> tuple[str, ...]:
    """`--codes HK.00700,SH.600519` in Futu's spelling; ValueError if one has no canonical
    symbol (checked at start)."""
    codes = parse_symbols(text, "--codes", "HK.00700,SH.600519")
    for code in codes:
        if "." not in code:
            raise ValueError(f"--codes: {code!r}: --futu takes Futu's codes, e.g. HK.00700")
        try:
            symbols.canonical(code)
        except UnmappableSymbolError as exc:
            raise ValueError(f"--codes: {exc}") from None
    return codes


def ticker_handler(futu: ModuleType, deliver: Callable[[Rows], None]) -> Any:
    """futu-api's TickerHandlerBase, its parsed DataFrame's rows handed to `deliver`."""

    def on_recv_rsp(self: Any, rsp_pb: Any) -> tuple[Any, Any]:
        ret, data = futu.TickerHandlerBase.on_recv_rsp(self, rsp_pb)
        if ret != futu.RET_OK:
            log.warning("OpenD push not read: %s", data)
            return ret, data
        deliver(data.to_dict("records"))
        return ret, data

    return type("MarketsignalTickers", (futu.TickerHandlerBase,), {"on_recv_rsp": on_recv_rsp})()


class FutuSource:
    """Subscribes to the codes' tickers and publishes them until `stop()`."""

    def __init__(
        self,
        options: FutuOptions,
        mapper: FutuTickers,
        screener: Screener,
        sink: Sink,
        in_flight: Callable[[], int],
        metrics: SourceMetrics | None = None,
    ) -> None:
        self.options = options
        self.mapper = mapper
        self.screener = screener
        self.sink = sink
        self.in_flight = in_flight
        self.metrics = metrics
        self.summary = IngestSummary()
        self.pacer = Pacer()
        self.pushes: queue.Queue[Rows] = queue.Queue(maxsize=options.queue_max)
        self.received = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> IngestSummary:
        futu = require("futu", "futu", "--futu")
        opts = self.options
        context = futu.OpenQuoteContext(host=opts.host, port=opts.port)
        try:
            context.set_handler(ticker_handler(futu, self.pushes.put))
            ret, data = context.subscribe(list(opts.codes), [futu.SubType.TICKER])
            if ret != futu.RET_OK:
                raise FutuError(
                    f"OpenD at {opts.host}:{opts.port} refused the subscription: {data}"
                )
            self.loop(lambda: context.status == futu.ContextStatus.READY)
        finally:
            context.close()
        return self.summary

    def loop(self, connected: Callable[[], bool]) -> None:
        """Empty the queue into the sink until `stop()`; `connected()` tells the metrics."""
        was_up: bool | None = None
        while not self._stop.is_set():
            up = connected()
            if up != was_up and self.metrics is not None:
                if up:
                    self.metrics.connected()
                else:
                    self.metrics.disconnected()
                    if was_up:
                        self.metrics.reconnecting()  # futu-api reconnects by itself
            was_up = up
            try:
                rows = self.pushes.get(timeout=_STATUS_EVERY_S)
            except queue.Empty:
                continue
            self.push(rows)
            while self.in_flight() > self.options.max_in_flight and not self._stop.is_set():
                self._stop.wait(0.005)

    def push(self, rows: Rows) -> None:
        """One push's rows: each a tick, a dead letter, or nothing (a repeat)."""
        self.received += 1
        if self.metrics is not None:
            self.metrics.message()
        totals = self.mapper.sequences.totals
        gaps, repeats = totals.gaps, totals.repeats
        for row in rows:
            try:
                item = self.mapper(row)
            except Exception as exc:  # a mapping bug must cost this row, not the feed
                log.warning("ticker row not mapped (%r): %r", exc, row)
                continue
            if item is None:
                continue
            raw = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
            handle_item(
                item, raw, self.received, self.screener, self.pacer, self.sink, self.summary
            )
        if self.metrics is not None:
            self.metrics.gaps.inc(totals.gaps - gaps)
            self.metrics.repeats.inc(totals.repeats - repeats)
