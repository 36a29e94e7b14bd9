"""The Redis failover tests print their figures at the end, as the fault suite does
(tests/faults/conftest.py): gap, Sentinel's decision time, counts, WAIT's cost."""

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
        terminalreporter.section("redis failover figures")
        for line in _LINES:
            terminalreporter.write_line(line)
