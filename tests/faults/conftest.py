"""The fault suite prints its figures at the end (the stack fixtures: tests/support).

`report(line)` collects a line (kills run, recovery times, counts) that the terminal
summary prints even when pytest captures output: the figures are the suite's result.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_LINES: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    name = request.node.name

    def add(line: str) -> None:
        _LINES.append(f"{name}: {line}")

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("fault suite figures")
        for line in _LINES:
            terminalreporter.write_line(line)
