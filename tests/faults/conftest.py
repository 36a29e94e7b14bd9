"""The fault suite prints its figures at the end (the stack fixtures: tests/support).

`report(line)` collects a line (kills run, recovery times, counts) that the terminal
summary prints even when pytest captures output: the figures are the suite's result.
"""

from __future__ import annotations

from tests.support.figures import figures

report, pytest_terminal_summary = figures("fault suite figures")
