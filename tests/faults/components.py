"""The fault suite's vocabulary: what a fault and an outcome are, the backtest they are
held to, and restarting a stack component through deploy/local/stack.sh.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from schemas.alert import alert_id_for
from schemas.signals import SIGNAL_ADAPTER
from services.backtest.run import run_backtest
from services.detection.rules import Rules
from tests.support.services import ROOT

STACK = ROOT / "deploy" / "local" / "stack.sh"


def backtest(ticks: Path, rules: Path) -> list[tuple[str, str, str]]:
    """(alert_id, subject, JSON) of every signal the backtest finds, in its order."""
    out = io.BytesIO()
    run_backtest(ticks, Rules.load(rules), out, io.StringIO(), progress=False)
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in out.getvalue().splitlines()]
    return [(alert_id_for(s), s.subject, s.model_dump_json()) for s in signals]


def may_restart(component: str) -> bool:
    """Whether a test may restart `component`.

    Only when the make target that runs the suite started it (FAULT_RESTARTS lists
    those: `make test` and `make test-faults` set it), and this clone's stack.sh runs
    it: a stack that was already up may be serving others.
    """
    allowed = os.environ.get("FAULT_RESTARTS", "").split()
    return component in allowed and stack_owns(component)


def stack_owns(component: str) -> bool:
    """True when this clone's stack.sh started `component`."""
    proc = subprocess.run(
        ["bash", str(STACK), "status"],
        env={**_environ(), "STACK_COMPONENTS": component},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and " pid " in proc.stdout and " up " in proc.stdout


def restart_component(component: str) -> tuple[float, float]:
    """Stop `component` with stack.sh, start it again; (stopped at, ready at) epoch seconds.

    `down` returns once the process is gone, `up` once the component answers a real
    request: no sleeps.
    """
    env = {**_environ(), "STACK_COMPONENTS": component}
    subprocess.run(["bash", str(STACK), "down"], env=env, check=True, capture_output=True)
    stopped = time.time()
    subprocess.run(["bash", str(STACK), "up"], env=env, check=True, capture_output=True)
    return stopped, time.time()


def _environ() -> dict[str, str]:
    return dict(os.environ)


@dataclass
class Fault:
    """One fault: what, when (epoch s), and which `signals` partitions it interrupted."""

    what: str
    at: float
    partitions: set[int] | None = None  # None: all of them
    # `signals` end offsets when the fault struck: signals first produced at or past
    # these came from the work done after it.
    ends: dict[int, int] = field(default_factory=dict)


@dataclass
class Outcome:
    expected: int
    delivered: int
    missing: int
    extra: int
    duplicates: int
    order_kept: bool
    subscription_missing: int
    subscription_extra: int
    subscription_duplicates: int
    # for the failure message: the signals missing and extra, and what happened
    details: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.delivered == self.expected
            and self.missing == self.extra == self.duplicates == 0
            and self.order_kept
            and self.subscription_missing
            == self.subscription_extra
            == self.subscription_duplicates
            == 0
        )
