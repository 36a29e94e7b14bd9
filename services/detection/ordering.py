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

import heapq
from typing import Any, cast

# A held tick: (ts_us, leg, seq, price, arrived wall time or None). A plain tuple so the
# heap compares in C; `seq` is unique, so the order is (ts, leg, arrival).
Held = tuple[int, int, int, float, float | None]


class EventOrder:
    """The reorder buffer of one rule with `legs` legs (0 = first leg, e.g. a)."""

    __slots__ = ("buffer", "last_key", "legs", "max_wait_s", "seen", "seq")

    def __init__(self, legs: int, max_wait_s: float) -> None:
        self.legs = legs
        self.max_wait_s = max_wait_s
        self.buffer: list[Held] = []
        self.seq = 0
        # the greatest ts seen per leg (held or released): the watermark is their minimum
        self.seen: list[int | None] = [None] * legs
        # (ts, leg) of the furthest tick released so far
        self.last_key: tuple[int, int] | None = None

    @property
    def pending(self) -> int:
        return len(self.buffer)

    def _release(self, item: Held, out: list[Held]) -> None:
        key = (item[0], item[1])
        if self.last_key is None or key > self.last_key:
            self.last_key = key
        out.append(item)

    def push(self, leg: int, ts_us: int, price: float, now: float | None = None) -> list[Held]:
        """Take one accepted tick of `leg`; return the ticks to evaluate now, in order."""
        seen = self.seen
        latest = seen[leg]
        if latest is None or ts_us > latest:
            seen[leg] = ts_us
        self.seq += 1
        item: Held = (ts_us, leg, self.seq, price, now)
        out: list[Held] = []
        buffer = self.buffer
        if self.last_key is not None and (ts_us, leg) < self.last_key:
            # The rule was already evaluated past this tick: evaluate it on arrival.
            self._release(item, out)
        else:
            heapq.heappush(buffer, item)
        if None not in seen:
            watermark = min(cast(list[int], seen))
            while buffer and buffer[0][0] <= watermark:
                self._release(heapq.heappop(buffer), out)
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
        due = [p[:3] for p in buffer if p[4] is not None and p[4] <= deadline]
        if due:
            upto = max(due)
            while buffer and buffer[0][:3] <= upto:
                self._release(heapq.heappop(buffer), out)
        return out

    def flush(self) -> list[Held]:
        """Release everything still held (end of a finite input)."""
        out: list[Held] = []
        while self.buffer:
            self._release(heapq.heappop(self.buffer), out)
        return out

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "buffer": [list(p) for p in sorted(self.buffer)],
            "seq": self.seq,
            "seen": list(self.seen),
            "last_key": list(self.last_key) if self.last_key is not None else None,
        }

    @classmethod
    def from_state(cls, legs: int, max_wait_s: float, state: dict[str, Any]) -> EventOrder:
        order = cls(legs, max_wait_s)
        order.buffer = [
            (int(us), int(leg), int(seq), float(price), None if arr is None else float(arr))
            for us, leg, seq, price, arr in state["buffer"]
        ]
        heapq.heapify(order.buffer)
        order.seq = int(state["seq"])
        seen = [None if s is None else int(s) for s in state["seen"]]
        if len(seen) != legs:
            raise ValueError(f"state has {len(seen)} legs, the rule {legs}")
        order.seen = seen
        lk = state["last_key"]
        order.last_key = None if lk is None else (int(lk[0]), int(lk[1]))
        return order
