"""A suite's figures printed at its end: `report(line)` collects a line (faults run,
recovery times, counts) that the terminal summary prints even when pytest captures
output; the figures are the suite's result.

A conftest takes both parts: `report, pytest_terminal_summary = figures("fault suite
figures")`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Report = Callable[[str], None]


def figures(title: str, *, live: bool = False) -> tuple[Any, Callable[..., None]]:
    """The `report` fixture and the terminal-summary hook of one suite; `live` also
    prints each line as it comes (seen with -s)."""
    lines: list[str] = []

    @pytest.fixture
    def report(request: pytest.FixtureRequest) -> Report:
        name = request.node.name

        def add(line: str) -> None:
            lines.append(f"{name}: {line}")
            if live:
                print(f"{name}: {line}", flush=True)

        return add

    def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)

    return report, pytest_terminal_summary
