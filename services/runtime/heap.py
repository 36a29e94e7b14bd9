"""Short pauses from Python's cyclic garbage collector on the live path.

A full (generation 2) collection walks every container object the process holds. A
worker's are mostly there from start-up: modules, classes, faust's and the Kafka
clients' object graphs, recovered state. On the 2-core bench machine one full pass over
a processor's ~110k objects stopped it for 47-78 ms, every ten seconds or so at 5k
ticks/s: each pause a late alert, enough on its own to decide a p99. Frozen, those
objects are skipped by every later pass (5 ms then). Frozen objects are still freed by
reference counting; only a reference cycle among them would outlive its use.
"""

from __future__ import annotations

import gc


def freeze_heap() -> int:
    """Collect once, then keep everything alive now out of later collections.

    Call when start-up is done (connected, state recovered); returns how many objects
    were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def collect_less(threshold: int) -> None:
    """Collect the young generation every `threshold` container allocations, not every
    700 (Python's default; 0 keeps it). A processor batch writes a fresh state per
    symbol it touched, and with them the default ran a collection every few hundred
    ticks, whose older generations in turn walked every tracker the worker holds (on the
    stages alone, one record per batch with every signal: 4 full passes of up to 45 ms
    in 200,000 ticks; at 50,000, none). Short-lived states die by reference counting."""
    if threshold:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)
