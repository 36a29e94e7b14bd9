"""The cluster suite's figures, printed at the end as the fault suite's are
(tests/faults/conftest.py): `report(line)` collects a line for the terminal summary."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_LINES: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    name = request.node.name

    def add(line: str) -> None:
        _LINES.append(f"{name}: {line}")
        print(f"{name}: {line}", flush=True)  # also live, with -s

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("cluster fault suite figures")
        for line in _LINES:
            terminalreporter.write_line(line)
