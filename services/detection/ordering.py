"""Event-time ordering of a rule's legs: the reorder buffer of divergence and A/H premium.

A rule that combines several symbols (a divergence pair's two indices, an A/H listing's
A share, H share and exchange rate) must evaluate their ticks in one event-time order,
but separate feeds arrive in no fixed order relative to each other. Ticks therefore
wait here until every leg has reached their ts (a watermark), or until `max_wait_s`
of wall-clock time has passed, and are released in (ts, leg, arrival) order. Without
a clock (the backtest) only the watermark and a final `flush` release them. A tick
that arrives after the rule was evaluated past its (ts, leg) is released on arrival.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from typing import Any

# A held tick: (ts_us, leg, seq, price, arrived wall time or None). A plain tuple so the
# buffer sorts and compares in C; `seq` is unique, so the order is (ts, leg, arrival).
Held = tuple[int, int, int, float, float | None]
# `seen` of a leg with no tick yet: below every instant (ticks are from 1970 on), so the
# watermark min(seen) holds everything until every leg has ticked.
_UNSEEN = -1


class EventOrder:
    """The reorder buffer of one rule with `legs` legs (0 = first leg, e.g. a).

    The held ticks are kept sorted (not a heap): released ticks are a prefix, cut in one
    slice, and the state written after every batch is a copy, not a sort of thousands of
    tuples in a backlog. Each leg's ticks arrive mostly in ts order, so an insert lands
    near the end. Released ticks come out in non-decreasing (ts, leg) order (a tick is
    only held if it sorts at or after everything released so far), so the furthest key
    released is always the last one.
    """

    __slots__ = ("arrival_floor", "buffer", "last_key", "legs", "max_wait_s", "seen", "seq")

    def __init__(self, legs: int, max_wait_s: float) -> None:
        self.legs = legs
        self.max_wait_s = max_wait_s
        self.buffer: list[Held] = []
        self.seq = 0
        # the greatest ts seen per leg (held or released): the watermark is their minimum
        self.seen: list[int] = [_UNSEEN] * legs
        # (ts, leg) of the furthest tick released so far
        self.last_key: tuple[int, int] | None = None
        # At or below the arrival time of every held tick: `expire` scans the buffer only
        # once a deadline passes it. Without it each push with a clock scanned the whole
        # buffer, quadratic when one leg runs ahead by a large batch (tick bundles).
        self.arrival_floor = math.inf

    @property
    def pending(self) -> int:
        return len(self.buffer)

    def push(self, leg: int, ts_us: int, price: float, now: float | None = None) -> list[Held]:
        """Take one accepted tick of `leg`; return the ticks to evaluate now, in order."""
        seen = self.seen
        seen[leg] = max(seen[leg], ts_us)
        seq = self.seq = self.seq + 1
        item: Held = (ts_us, leg, seq, price, now)
        buffer = self.buffer
        last_key = self.last_key
        out: list[Held]
        if last_key is not None and (ts_us, leg) < last_key:
            out = [item]  # the rule was already evaluated past this tick: on arrival
        else:
            if not buffer or buffer[-1] < item:
                buffer.append(item)
            else:
                insort(buffer, item)
            if now is not None and now < self.arrival_floor:
                self.arrival_floor = now
            out = []
        watermark = min(seen)
        if buffer and buffer[0][0] <= watermark:
            # every held tick of ts <= watermark: (watermark + 1,) sorts after them all
            upto = bisect_right(buffer, (watermark + 1,))
            out.extend(buffer[:upto])
            del buffer[:upto]
            top = out[-1]
            self.last_key = (top[0], top[1])
        if now is not None and buffer:
            out.extend(self.expire(now))
        return out

    def expire(self, now: float) -> list[Held]:
        """Release ticks that waited `max_wait_s` (and every tick ordered before them)."""
        out: list[Held] = []
        buffer = self.buffer
        if not buffer:
            return out
        deadline = now - self.max_wait_s
        if deadline < self.arrival_floor:
            return out  # every held tick arrived after the deadline
        # The last due tick: it and every tick ordered before it go.
        last_due = -1
        for i, p in enumerate(buffer):
            if p[4] is not None and p[4] <= deadline:
                last_due = i
        if last_due >= 0:
            out = buffer[: last_due + 1]
            del buffer[: last_due + 1]
            top = out[-1]
            self.last_key = (top[0], top[1])
        self.arrival_floor = min((p[4] for p in buffer if p[4] is not None), default=math.inf)
        return out

    def flush(self) -> list[Held]:
        """Release everything still held (end of a finite input)."""
        out, self.buffer = self.buffer, []
        if out:
            top = out[-1]
            self.last_key = (top[0], top[1])
        return out

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            # A copy of the held tuples (immutable, written as arrays): a backlog can
            # hold thousands, and the state is written after every batch.
            "buffer": list(self.buffer),
            "seq": self.seq,
            "seen": [None if s == _UNSEEN else s for s in self.seen],
            "last_key": list(self.last_key) if self.last_key is not None else None,
        }

    @classmethod
    def from_state(cls, legs: int, max_wait_s: float, state: dict[str, Any]) -> EventOrder:
        order = cls(legs, max_wait_s)
        order.buffer = [
            (int(us), int(leg), int(seq), float(price), None if arr is None else float(arr))
            for us, leg, seq, price, arr in state["buffer"]
        ]
        order.buffer.sort()  # written sorted: a linear check
        order.arrival_floor = min(
            (p[4] for p in order.buffer if p[4] is not None), default=math.inf
        )
        order.seq = int(state["seq"])
        seen = [_UNSEEN if s is None else int(s) for s in state["seen"]]
        if len(seen) != legs:
            raise ValueError(f"state has {len(seen)} legs, the rule {legs}")
        order.seen = seen
        lk = state["last_key"]
        order.last_key = None if lk is None else (int(lk[0]), int(lk[1]))
        return order
