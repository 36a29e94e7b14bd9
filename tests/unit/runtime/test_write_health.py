"""Why a partition cannot take acks=all writes, from described metadata (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.runtime.settings import Settings
from services.runtime.write_health import unwritable

BROKERS = {1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}


def topic(*partitions: tuple[int, list[int]]) -> dict[str, Any]:
    return {
        "name": "ticks",
        "partitions": [
            {"partition_index": i, "leader_id": leader, "isr_nodes": isr}
            for i, (leader, isr) in enumerate(partitions)
        ],
    }


def up(*nodes: int) -> Any:
    return lambda _host, port: port in nodes


def test_all_replicas_answering_is_writable() -> None:
    assert unwritable([topic((1, [1, 2, 3]), (2, [2, 3, 1]))], BROKERS, 2, up(1, 2, 3)) == {}


def test_one_node_down_leaves_min_isr_met() -> None:
    # Fenced node 3 already out of the ISR, or still listed but dead: two answer either way.
    got = unwritable([topic((1, [1, 2, 3]), (2, [2, 1]))], BROKERS, 2, up(1, 2))
    assert got == {}


def test_no_leader_and_dead_leader_and_too_few_in_sync() -> None:
    got = unwritable([topic((-1, [1]), (3, [3, 1]), (1, [1, 2]))], BROKERS, 2, up(1))
    assert got == {
        "ticks": [
            "[0] no leader",
            "[1] leader node 3 does not answer",
            "[2] 1 in-sync replica(s) answer, min.insync.replicas=2: NOT_ENOUGH_REPLICAS",
        ]
    }


def test_min_insync_above_replication_is_refused() -> None:
    with pytest.raises(ValidationError, match="MIN_INSYNC_REPLICAS"):
        Settings(replication_factor=1, min_insync_replicas=2)
