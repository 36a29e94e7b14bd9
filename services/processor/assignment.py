"""Source partitions no worker holds, from the group description the broker gives.

The fault suite caught a group in which nobody held `marketsignal.ticks.by_pair` after a
restarted leader computed the assignment (faust-streaming 0.15.3's assignor left the
topic out, although every member subscribed to it): no divergence was evaluated until
the next rebalance, and with static membership a restart no longer causes one. The Faust
leader therefore checks the group on a timer and rejoins (which makes the broker
rebalance) when a source partition stays unassigned.
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
