"""The reorder buffer against a plain reference: held ticks in a list, every release a
full scan and a sort, as the contract says it, with no buffer order kept between calls."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.detection.ordering import EventOrder, Held

MAX_WAIT = 2.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["push", "push", "push", "expire", "save", "flush"]),
        st.integers(min_value=0, max_value=2),  # leg
        st.integers(min_value=0, max_value=50),  # ts
        st.floats(min_value=0.0, max_value=1.5),  # wall-clock step
    ),
    max_size=150,
)


class Reference:
    """Release by (ts, leg, arrival) once every leg has reached the ts, or once a tick
    waited `max_wait` (with everything ordered before it); a tick ordered before what
    was released goes at once."""

    def __init__(self, legs: int) -> None:
        self.held: list[Held] = []
        self.seen = [-1] * legs
        self.seq = 0
        self.last_key: tuple[int, int] | None = None

    def _release(self, chosen: list[Held]) -> list[Held]:
        out = sorted(chosen)
        self.held = [p for p in self.held if p not in out]
        if out:
            self.last_key = (out[-1][0], out[-1][1])
        return out

    def push(self, leg: int, ts: int, price: float, now: float) -> list[Held]:
        self.seen[leg] = max(self.seen[leg], ts)
        self.seq += 1
        item: Held = (ts, leg, self.seq, price, now)
        out: list[Held] = []
        if self.last_key is not None and (ts, leg) < self.last_key:
            out.append(item)
        else:
            self.held.append(item)
        watermark = min(self.seen)
        out += self._release([p for p in self.held if p[0] <= watermark])
        return out + self.expire(now)

    def expire(self, now: float) -> list[Held]:
        due = [p[:3] for p in self.held if p[4] is not None and p[4] <= now - MAX_WAIT]
        if not due:
            return []
        upto = max(due)
        return self._release([p for p in self.held if p[:3] <= upto])

    def flush(self) -> list[Held]:
        return self._release(list(self.held))


@settings(max_examples=500, deadline=None)
@given(steps)
def test_the_buffer_releases_what_the_reference_releases(
    plan: list[tuple[str, int, int, float]],
) -> None:
    order = EventOrder(3, MAX_WAIT)
    ref = Reference(3)
    now = 0.0
    for action, leg, ts, step in plan:
        now += step
        if action == "push":
            got, want = order.push(leg, ts, 1.0, now), ref.push(leg, ts, 1.0, now)
        elif action == "expire":
            got, want = order.expire(now), ref.expire(now)
        elif action == "flush":
            got, want = order.flush(), ref.flush()
        else:  # a restart: the state as the table's JSON holds it
            state = json.loads(json.dumps(order.to_state()))
            assert state["buffer"] == [list(p) for p in sorted(order.buffer)]
            order = EventOrder.from_state(3, MAX_WAIT, state)
            got = want = []
        assert got == want
        assert order.buffer == sorted(ref.held)
        assert order.pending == len(ref.held)
