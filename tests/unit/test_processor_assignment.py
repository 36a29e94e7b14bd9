"""Source partitions held by no worker, read from a group description."""

from __future__ import annotations

from typing import Any

from services.processor.assignment import unassigned


def member(*parts: tuple[str, list[int]]) -> dict[str, Any]:
    return {
        "member_assignment": {
            "assigned_partitions": [{"topic": t, "partitions": p} for t, p in parts]
        }
    }


def test_a_topic_left_out_of_the_assignment_is_reported() -> None:
    desc = {
        "group_state": "Stable",
        "members": [
            member(("ticks", [0, 1, 2]), ("changelog", [0, 1, 2])),
            member(("ticks", [3, 4, 5])),
        ],
    }
    assert unassigned(desc, ["ticks", "by_pair"], 6) == {"by_pair": {0, 1, 2, 3, 4, 5}}


def test_a_complete_assignment_and_a_rebalancing_group_report_nothing() -> None:
    full = {
        "group_state": "Stable",
        "members": [
            member(("ticks", [0, 1, 2]), ("by_pair", [0, 1, 2])),
            member(("ticks", [3, 4, 5]), ("by_pair", [3, 4, 5])),
        ],
    }
    assert unassigned(full, ["ticks", "by_pair"], 6) == {}
    assert unassigned({"group_state": "PreparingRebalance", "members": []}, ["ticks"], 6) == {}
    undecodable = {"group_state": "Stable", "members": [{"member_assignment": ""}]}
    assert unassigned(undecodable, ["ticks"], 6) == {}
