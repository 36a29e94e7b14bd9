"""How long a live source waits before it tries again: a WebSocket's reconnect, a
poller's next fetch after a failed one."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: a random point in the upper half of the step."""
    return min(cap, initial * 2.0**attempt) * rng.uniform(0.5, 1.0)
