"""Running the real services as subprocesses, as a deployment would."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services.runtime.settings import Settings
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(settings: Settings, rules: Path) -> dict[str, str]:
    return factories.service_env(
        settings,
        rules,
        state_dir=ROOT / ".local" / "state" / "e2e",
        # Any free port: tests never clash with `make up` or with each other.
        ingestor_metrics_port=0,
        processor_metrics_port=0,
        alerter_metrics_port=0,
    )


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`marketsignal ARGS` to completion, from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class Service:
    """One `marketsignal <command>` process with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float, services: list[Service]
) -> None:
    """Poll `check` until true; fail early, with logs, if a service died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        for svc in services:
            if not svc.alive():
                raise AssertionError(
                    f"{svc.name} exited while waiting for {what}:\n{svc.log_tail()}"
                )
        time.sleep(0.25)
    tails = "\n".join(f"--- {s.name}\n{s.log_tail(15)}" for s in services)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{tails}")
