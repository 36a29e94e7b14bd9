"""Versions of the detectors' serialised state: what a restore accepts, and the refusal.

Each tracker's `to_state` writes `"v"`; `from_state` reads only the versions it knows. A
state written by newer code (a rollback) or corrupted is refused by name here, rather
than half-read into a tracker that would then judge ticks against the wrong history.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class StateVersionError(ValueError):
    """A serialised state this code cannot read."""


def check_version(state: dict[str, Any], kind: str, known: Collection[int]) -> int:
    """The state's `"v"`, if it is one of `known`; else StateVersionError."""
    version = state.get("v")
    if not isinstance(version, int) or version not in known:
        raise StateVersionError(
            f"{kind} state version {version!r} is not one this code reads "
            f"({', '.join(map(str, sorted(known)))})"
        )
    return version
