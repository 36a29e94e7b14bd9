"""The queue the alerter hands each new alert to, for the subscriptions' fan-out.

The hand-off is a Redis stream, not a call: the alerter appends each alert it delivers
for the first time inside its own delivery script (services/alerter/delivery.py), in the
same atomic step as the alert's dedupe claim, so no crash can leave an alert delivered
and claimed but never handed over. `FanoutWorker` (fanout_worker.py) is the stream's
reader. This module and service.py are all the alerter may import of this package
(tests/unit/test_import_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings


@dataclass(frozen=True)
class FanoutQueue:
    """A Redis stream of alerts to fan out: one entry per alert, its JSON under `FIELD`.

    A writer appends an alert once, after the alert is stored and claimed, and never a
    replayed one. The reader takes entries with a consumer group and deletes each once
    its alert is fanned out; an entry left pending by a crash is fanned out again, which
    the fan-out recognises as done.
    """

    key: str
    FIELD: ClassVar[str] = "alert"

    @classmethod
    def of(cls, settings: Settings) -> FanoutQueue:
        return cls(RedisKeys(settings.namespace).fanout_queue)
