"""Subscribers' price levels through the API on real HTTP, Redis and Kafka.

Create, list, delete; what the compacted `levels` topic receives (a record per create,
a tombstone per delete, and one per level of a deleted or expired subscription); strict
validation; the limits; owners who see only their own subscriptions' levels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from schemas.level import Level
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from tests.integration.api_client import ADMIN, ALICE, BOB, Api, create_subscription, serving
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def api(settings: Callable[..., Settings]) -> Iterator[Api]:
    s = settings(api_tokens=(ALICE, BOB), api_admin_tokens=(ADMIN,))
    with serving(s, ALICE) as api:
        yield api


def records(read_topic: Callable[..., list[Any]], api: Api, expect: int) -> list[tuple[str, Any]]:
    """(level id, decoded value or None for a tombstone) of every record on the topic."""
    got = read_topic(api.settings.levels_topic, expect=expect)
    return [(r.key.decode(), None if r.value is None else json.loads(r.value)) for r in got]


def test_create_list_delete_and_what_the_topic_receives(
    api: Api, read_topic: Callable[..., list[Any]], redis_client: redis.Redis
) -> None:
    sub = create_subscription(api, ALICE, "zhipu")
    status, body = api.call(
        "POST", f"/subscriptions/{sub}/levels", {"symbol": "2513.HK", "above": 500}
    )
    assert status == 201, body
    up = Level.model_validate(body)
    assert (up.symbol, up.direction, up.price, up.subscription_id) == ("2513.HK", "above", 500, sub)
    assert up.note is None
    status, body = api.call(
        "POST",
        f"/subscriptions/{sub}/levels",
        {"symbol": "0700.HK", "below": 300.5, "note": "buy"},
    )
    assert status == 201, body
    down = Level.model_validate(body)

    status, page = api.call("GET", f"/subscriptions/{sub}/levels")
    assert status == 200
    assert page["next"] is None
    ids = sorted([up.level_id, down.level_id])
    assert [level["level_id"] for level in page["levels"]] == ids
    # Paged like subscriptions: by id, `next` the cursor.
    status, first = api.call("GET", f"/subscriptions/{sub}/levels?limit=1")
    assert [lv["level_id"] for lv in first["levels"]] == ids[:1]
    assert first["next"] == ids[0]
    status, second = api.call("GET", f"/subscriptions/{sub}/levels?limit=1&after={ids[0]}")
    assert [lv["level_id"] for lv in second["levels"]] == ids[1:]
    assert second["next"] is None

    # A change keeps the id and re-arms the level in place.
    status, body = api.call(
        "PUT", f"/subscriptions/{sub}/levels/{up.level_id}", {"symbol": "2513.HK", "below": 450}
    )
    assert status == 200, body
    changed = Level.model_validate(body)
    assert (changed.level_id, changed.direction, changed.price) == (up.level_id, "below", 450)
    assert changed.created_at == up.created_at
    assert api.call("GET", f"/subscriptions/{sub}/levels/{up.level_id}")[0] == 405
    assert api.call("DELETE", f"/subscriptions/{sub}/levels/{up.level_id}")[0] == 204
    assert api.call("DELETE", f"/subscriptions/{sub}/levels/{up.level_id}")[0] == 404
    listed = api.call("GET", f"/subscriptions/{sub}/levels")[1]["levels"]
    assert [lv["level_id"] for lv in listed] == [down.level_id]

    # Per key in order (one key, one partition); across keys the partitions interleave.
    assert sorted(records(read_topic, api, 4), key=lambda r: r[0]) == sorted(
        [
            (up.level_id, json.loads(up.model_dump_json())),
            (up.level_id, json.loads(changed.model_dump_json())),
            (up.level_id, None),
            (down.level_id, json.loads(down.model_dump_json())),
        ],
        key=lambda r: r[0],
    )
    admin = KafkaAdminClient(bootstrap_servers=api.settings.kafka_bootstrap)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, api.settings.levels_topic)
        described: Any = admin.describe_configs([resource])
        assert described["topic"][api.settings.levels_topic]["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()

    # Deleting the subscription disarms what it had left.
    assert api.call("DELETE", f"/subscriptions/{sub}")[0] == 204
    assert [r for r in records(read_topic, api, 5) if r[0] == down.level_id][-1] == (
        down.level_id,
        None,
    )
    assert api.call("GET", f"/subscriptions/{sub}/levels")[0] == 404
    keys = RedisKeys(api.settings.namespace)
    assert redis_client.hlen(keys.levels) == 0
    assert not redis_client.exists(keys.sub_levels(sub), keys.level_subs)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbol": "2513.HK"}, "(body)"),
        ({"symbol": "2513.HK", "above": 500, "below": 400}, "(body)"),
        ({"symbol": "2513.HK", "above": 0}, "above"),
        ({"symbol": "2513.HK", "above": 1e9 * 1.5}, "above"),
        ({"symbol": "2513.HK", "below": "500"}, "below"),
        ({"symbol": "2513.HK", "below": True}, "below"),
        ({"symbol": "2513 HK", "above": 500}, "symbol"),
        ({"above": 500}, "symbol"),
        ({"symbol": "2513.HK", "above": 500, "level_id": "mine"}, "level_id"),
        ({"symbol": "2513.HK", "above": 500, "note": 7}, "note"),
    ],
)
def test_bad_levels_are_refused_naming_the_field(api: Api, body: Any, field: str) -> None:
    sub = create_subscription(api, ALICE, "x")
    status, answer = api.call("POST", f"/subscriptions/{sub}/levels", body)
    assert status == 422, answer
    assert answer["error"].startswith("invalid level: ")
    assert field in [f["field"] for f in answer["fields"]]


def test_not_json_infinity_and_the_wrong_content_type(api: Api) -> None:
    sub = create_subscription(api, ALICE, "x")
    path = f"/subscriptions/{sub}/levels"
    assert api.call("POST", path, raw=b'{"symbol": "X", "above": Infinity}')[0] == 422
    assert api.call("POST", path, raw=b"[1]")[0] == 400
    assert api.call("POST", path, raw=b"{")[0] == 400
    status, _ = api.call(
        "POST", path, raw=b'{"symbol": "X", "above": 1}', headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert api.call("GET", path + "?limit=0")[0] == 400
    assert api.call("GET", path + "?after=no%20such")[0] == 400
    assert api.call("DELETE", path + "/no%20such")[0] == 404


def test_limits_per_subscription_and_per_deployment(settings: Callable[..., Settings]) -> None:
    s = settings(levels_per_subscription=2, levels_max=3)
    with serving(s) as api:
        one = create_subscription(api, "", "one")
        two = create_subscription(api, "", "two")
        level = {"symbol": "2513.HK", "above": 500}
        assert api.call("POST", f"/subscriptions/{one}/levels", level)[0] == 201
        assert api.call("POST", f"/subscriptions/{one}/levels", level)[0] == 201
        status, body = api.call("POST", f"/subscriptions/{one}/levels", level)
        assert status == 409
        assert "MARKETSIGNAL_LEVELS_PER_SUBSCRIPTION" in body["error"]
        assert api.call("POST", f"/subscriptions/{two}/levels", level)[0] == 201
        status, body = api.call("POST", f"/subscriptions/{two}/levels", level)
        assert status == 409
        assert "MARKETSIGNAL_LEVELS_MAX" in body["error"]
        # A delete makes room again.
        first = api.call("GET", f"/subscriptions/{one}/levels")[1]["levels"][0]["level_id"]
        assert api.call("DELETE", f"/subscriptions/{one}/levels/{first}")[0] == 204
        assert api.call("POST", f"/subscriptions/{two}/levels", level)[0] == 201


def test_owners_see_and_touch_only_their_own_levels_and_admins_all(api: Api) -> None:
    alice = create_subscription(api, ALICE, "alice's")
    bob = create_subscription(api, BOB, "bob's")
    level = {"symbol": "2513.HK", "above": 500}
    status, mine = api.call("POST", f"/subscriptions/{alice}/levels", level, token=ALICE)
    assert status == 201
    path = f"/subscriptions/{alice}/levels"
    assert api.call("GET", path, token=BOB)[0] == 404
    assert api.call("POST", path, level, token=BOB)[0] == 404
    assert api.call("DELETE", f"{path}/{mine['level_id']}", token=BOB)[0] == 404
    assert api.call("PUT", f"{path}/{mine['level_id']}", level, token=BOB)[0] == 404
    # Bob's own subscription does not reach Alice's level either.
    assert (
        api.call("DELETE", f"/subscriptions/{bob}/levels/{mine['level_id']}", token=BOB)[0] == 404
    )
    status, listed = api.call("GET", path, token=ADMIN)
    assert status == 200
    assert [lv["level_id"] for lv in listed["levels"]] == [mine["level_id"]]
    assert api.call("POST", path, {"symbol": "0700.HK", "below": 300}, token=ADMIN)[0] == 201
    assert api.call("DELETE", f"{path}/{mine['level_id']}", token=ADMIN)[0] == 204
    assert len(api.call("GET", path, token=ALICE)[1]["levels"]) == 1


def test_an_expired_subscription_s_levels_are_disarmed(
    settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(levels_sweep_s=0.2)
    with serving(s) as api:
        expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        status, body = api.call("POST", "/subscriptions", {"name": "brief", "expires_at": expires})
        assert status == 201, body
        sub = body["subscription"]["id"]
        status, level = api.call(
            "POST", f"/subscriptions/{sub}/levels", {"symbol": "2513.HK", "below": 300}
        )
        assert status == 201, level
        tombstone = (level["level_id"], None)
        wait_for(
            "the expired subscription's level to be tombstoned",
            lambda: tombstone in records(read_topic, api, 1),
            20,
        )
        assert api.call("GET", f"/subscriptions/{sub}/levels")[1]["levels"] == []
