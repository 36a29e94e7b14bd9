"""Waiting until a condition holds, never for a fixed time.

`wait_for` is the one way a test waits: it polls a condition under a deadline and, if the
deadline passes, fails naming what it waited for, the condition's last answer and the
tail of each watched service's log. A watched service that exits fails the wait at once,
with its log, instead of letting the deadline run out. `wait_for_async` is the same inside
an event loop.

Polling starts fast and backs off: a condition that is nearly true costs a few
milliseconds, one that takes a minute is not asked hundreds of times a second on a
loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")

FIRST_POLL_S = 0.005
MAX_POLL_S = 0.1


class Watched(Protocol):
    """A process a wait gives up on as soon as it dies (tests/support/services.Service)."""

    name: str

    def alive(self) -> bool: ...

    def log_tail(self, lines: int = 40) -> str: ...


class _Poll:
    """The deadline, the back-off and the failure message shared by both flavours."""

    def __init__(
        self, what: str, timeout_s: float, services: Iterable[Watched], max_poll_s: float
    ) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.services = list(services)
        self.max_poll_s = max_poll_s
        self.deadline = time.monotonic() + timeout_s
        self.interval = min(FIRST_POLL_S, max_poll_s)

    def check(self, last: object) -> float:
        """Raise if it is too late or a service died; else how long to sleep."""
        for svc in self.services:
            if not svc.alive():
                raise AssertionError(
                    f"{svc.name} exited while waiting for {self.what}:\n{svc.log_tail()}"
                )
        if time.monotonic() >= self.deadline:
            tails = "".join(f"\n--- {s.name}\n{s.log_tail(15)}" for s in self.services)
            raise AssertionError(
                f"timed out after {self.timeout_s:g} s waiting for {self.what} "
                f"(last answer: {last!r}){tails}"
            )
        interval = self.interval
        self.interval = min(interval * 2, self.max_poll_s)
        return interval


def wait_for(
    what: str,
    condition: Callable[[], T | None],
    timeout_s: float,
    services: Iterable[Watched] = (),
    *,
    max_poll_s: float = MAX_POLL_S,
) -> T:
    """The first true answer of `condition()` (it may return the value waited for).

    `what` completes "waiting for ..." in the failure message. `max_poll_s` caps the
    back-off: raise it for conditions that cost a subprocess or a broker round trip.
    """
    poll = _Poll(what, timeout_s, services, max_poll_s)
    while not (answer := condition()):
        time.sleep(poll.check(answer))
    return answer


async def wait_for_async(
    what: str,
    condition: Callable[[], T | None],
    timeout_s: float,
    services: Iterable[Watched] = (),
    *,
    max_poll_s: float = MAX_POLL_S,
) -> T:
    """`wait_for` inside an event loop: the loop keeps running between the polls."""
    poll = _Poll(what, timeout_s, services, max_poll_s)
    # The conditions are counters a fake or a source updates with no event to await.
    while not (answer := condition()):  # noqa: ASYNC110
        await asyncio.sleep(poll.check(answer))
    return answer


def wait_until(condition: Callable[[], object], timeout_s: float) -> None:
    """`wait_for` named by the condition's own source line (for one-line lambdas)."""
    wait_for(_source_of(condition), condition, timeout_s)


def _source_of(condition: Callable[[], object]) -> str:
    try:
        line = inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)
    return f"`{line}`"
