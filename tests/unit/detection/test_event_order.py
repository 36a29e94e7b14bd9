"""The reorder buffer's wall-clock release, against a plain scan of every held tick."""

from __future__ import annotations

from heapq import heappop

from hypothesis import given, settings
from hypothesis import strategies as st

from services.detection.ordering import EventOrder, Held

MAX_WAIT = 2.0

steps = st.lists(
    st.tuples(
        st.sampled_from(["push", "expire", "save"]),
        st.integers(min_value=0, max_value=1),  # leg
        st.integers(min_value=0, max_value=50),  # ts
        st.floats(min_value=0.0, max_value=1.5),  # wall-clock step
    ),
    max_size=120,
)


class Naive(EventOrder):
    """`expire` as it was: every held tick's arrival checked on every call."""

    __slots__ = ()

    def expire(self, now: float) -> list[Held]:
        buffer, out = self.buffer, []
        due = [p[:3] for p in buffer if p[4] is not None and p[4] <= now - self.max_wait_s]
        if due:
            upto = max(due)
            while buffer and buffer[0][:3] <= upto:
                out.append(heappop(buffer))
            self.last_key = (out[-1][0], out[-1][1])
        return out


@settings(max_examples=400, deadline=None)
@given(steps)
def test_expire_releases_what_a_full_scan_releases(plan: list[tuple[str, int, int, float]]) -> None:
    fast: EventOrder = EventOrder(2, MAX_WAIT)
    slow: EventOrder = Naive(2, MAX_WAIT)
    now = 0.0
    for action, leg, ts, step in plan:
        now += step
        if action == "push":
            got, want = fast.push(leg, ts, 1.0, now), slow.push(leg, ts, 1.0, now)
        elif action == "expire":
            got, want = fast.expire(now), slow.expire(now)
        else:  # a restart: both restored from the state
            fast = EventOrder.from_state(2, MAX_WAIT, fast.to_state())
            slow = Naive.from_state(2, MAX_WAIT, slow.to_state())
            got = want = []
        assert got == want
        assert sorted(fast.buffer) == sorted(slow.buffer)
