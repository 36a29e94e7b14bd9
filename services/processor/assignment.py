"""Source partitions no worker holds, from the group description the broker gives.

The fault suite caught groups in which nobody held `marketsignal.ticks.by_pair`: the
leader's consumer metadata did not know the topic yet (Faust creates it after the
consumer fetched metadata), so the assignor left it out, and nothing changed until the
next metadata refresh, 5 minutes later: no divergence was evaluated meanwhile. The
processor now creates the topic before it starts; as a safety net the Faust leader
checks the group on a timer and, when a source partition stays unassigned, refreshes its
metadata and rejoins (which makes the broker rebalance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def unassigned(
    description: Mapping[str, Any], topics: Iterable[str], partitions: int
) -> dict[str, set[int]]:
    """topic -> partitions nobody holds; empty when the group is not Stable (mid-rebalance)."""
    if description.get("group_state") != "Stable":
        return {}
    held: dict[str, set[int]] = {topic: set() for topic in topics}
    for member in description.get("members", ()):
        assignment = member.get("member_assignment")
        if not isinstance(assignment, Mapping):
            return {}  # not decodable: no verdict
        for item in assignment.get("assigned_partitions", ()):
            if item["topic"] in held:
                held[item["topic"]].update(item["partitions"])
    everything = set(range(partitions))
    return {topic: everything - mine for topic, mine in held.items() if everything - mine}
