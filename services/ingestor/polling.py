"""`ingest --akshare`: a source that is polled, not pushed, into the screener and sink.

Every `every_s` the poller fetches the codes' rows (`Fetch`, services/ingestor/
akshare_quotes.py), maps each to a tick or to nothing (`Mapper`: the snapshot rule) and
hands the ticks to the same screener, dead-letter path and publisher as every other
source; `line` in a dead letter is the poll's number. A fetch that fails (the vendor's
HTTP call: a timeout, a refused connection, a changed page) is logged and tried again
after a backoff (exponential, jittered: services/ingestor/backoff.py), the next poll
after a success on the usual beat. A fetch slower than `every_s` is followed by the next
at once: polls never overlap. Back-pressure as `--ws`: no poll while more than
`max_in_flight` records await Kafka's acknowledgement.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.ingestor.adapters.base import Item, Rejected
from services.ingestor.akshare_quotes import Fetch
from services.ingestor.backoff import backoff_delay
from services.ingestor.ingest import IngestSummary, Sink
from services.ingestor.items import handle_item
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Screener
from services.ingestor.source_metrics import SourceMetrics

log = logging.getLogger("marketsignal.ingestor.poll")

# A polled row and the poll's time -> the tick's item, or None (nothing changed).
Mapper = Callable[[Mapping[str, Any], datetime], Item | None]


@dataclass(frozen=True)
class PollOptions:
    """How often to poll, and the backoff and back-pressure bounds (seconds, records)."""

    every_s: float = 3.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_in_flight: int = 10_000


class SnapshotPoller:
    """Polls `codes` until `stop()`."""

    def __init__(
        self,
        fetch: Fetch,
        codes: Sequence[str],
        mapper: Mapper,
        options: PollOptions,
        screener: Screener,
        sink: Sink,
        in_flight: Callable[[], int],
        metrics: SourceMetrics | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.fetch = fetch
        self.codes = tuple(codes)
        self.mapper = mapper
        self.options = options
        self.screener = screener
        self.sink = sink
        self.in_flight = in_flight
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.summary = IngestSummary()
        self.pacer = Pacer()
        self.polls = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the poll in hand, then return from `run` (callable from a signal handler)."""
        self._stop.set()

    def run(self) -> IngestSummary:
        opts = self.options
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                rows = self.fetch(self.codes)
            except Exception as exc:  # the vendor's call, whatever broke in it: try again
                delay = backoff_delay(
                    failures, opts.backoff_initial_s, opts.backoff_max_s, self.rng
                )
                failures += 1
                if self.metrics is not None:
                    self.metrics.disconnected()
                    self.metrics.reconnecting()
                log.warning("poll failed (%r); again in %.2fs (attempt %d)", exc, delay, failures)
                self._stop.wait(delay)
                continue
            failures = 0
            self.polls += 1
            if self.metrics is not None:
                self.metrics.connected()
                self.metrics.message()
            polled_at = self.clock()
            for row in rows:
                self.handle_row(row, polled_at)
            self._drain()
            self._stop.wait(max(0.0, opts.every_s - (time.monotonic() - started)))
        return self.summary

    def handle_row(self, row: Mapping[str, Any], polled_at: datetime) -> None:
        """One row: a tick if its state changed, a dead letter if it is unusable."""
        try:
            item = self.mapper(row, polled_at)
        except Exception as exc:  # a mapping bug must cost this row, not the feed
            item = Rejected(row, None, f"mapping failed: {exc!r}")
        if item is None:
            return
        raw = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        handle_item(item, raw, self.polls, self.screener, self.pacer, self.sink, self.summary)

    def _drain(self) -> None:
        """Back-pressure: no next poll while Kafka has too much unacknowledged."""
        while self.in_flight() > self.options.max_in_flight and not self._stop.is_set():
            self._stop.wait(0.005)
