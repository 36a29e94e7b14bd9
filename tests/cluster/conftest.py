"""The cluster suite's figures, printed at the end as the fault suite's are
(tests/faults/conftest.py): `report(line)` collects a line for the terminal summary."""

from __future__ import annotations

from tests.support.figures import figures

report, pytest_terminal_summary = figures("cluster fault suite figures", live=True)
