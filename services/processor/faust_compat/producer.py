"""aiokafka's producer inside faust's, for aiokafka's batch API.

faust's `Producer.send` takes one record; aiokafka's `create_batch`/`send_batch` send
a whole changelog partition's records as one batch with one future. Reaching the aiokafka
producer faust started keeps those batches on the same connection, queue and order as
every other send.
"""

from __future__ import annotations

from typing import Any, cast

import faust


def aiokafka_producer(app: faust.App) -> Any:
    """The started aiokafka producer under `app.producer` (faust raises NotReady before
    the producer service has started)."""
    return cast(Any, app.producer)._ensure_producer()
