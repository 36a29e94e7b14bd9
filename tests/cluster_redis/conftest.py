"""The Redis failover tests print their figures at the end, as the fault suite does
(tests/faults/conftest.py): gap, Sentinel's decision time, counts, WAIT's cost."""

from __future__ import annotations

from tests.support.figures import figures

report, pytest_terminal_summary = figures("redis failover figures")
