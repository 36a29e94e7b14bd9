"""faust's Worker with a deadline on stopping, and its logs' repeats counted, not printed."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import faust

from services.runtime.log_flood import install as count_repeats


class BoundedStopWorker(faust.Worker):
    """faust's Worker, exiting hard `grace_s` after the first SIGTERM or SIGINT.

    A graceful stop waits in `Consumer.wait_empty` for every message that started
    processing to be acked; an agent that can no longer ack (its buffered events were
    dropped when it stopped) would keep it there until the supervisor's SIGKILL. The
    hard exit is safe because no event is acked, so no offset committed, before its
    outputs and state are on the broker.
    """

    grace_s: float = 8.0
    _deadline: threading.Timer | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # faust's handlers exist now: aiokafka's retries in an outage counted on them
        # (services/runtime/log_flood.py).
        count_repeats(logger)

    def _schedule_shutdown(self, signum: signal.Signals) -> None:  # mode's signal hook
        if self._deadline is None:
            self._deadline = threading.Timer(self.grace_s, self._exit_hard)
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signum)

    def _exit_hard(self) -> None:
        print(
            f"marketsignal process: not stopped {self.grace_s:g}s after the signal, exiting",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)
