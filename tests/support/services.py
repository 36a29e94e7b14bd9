"""Running the real services as subprocesses, as a deployment would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from services.runtime.settings import Settings
from tests.support import factories

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


def run_script(script: Path, *args: str) -> str:
    """`bash SCRIPT ARGS` with this process's environment (ports, STACK_STATE): its output.
    Fails the test with the script's output when it fails."""
    proc = subprocess.run(
        ["bash", str(script), *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{script.name} {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout
