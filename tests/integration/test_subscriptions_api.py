"""The subscriptions HTTP API on real HTTP and Redis: auth, CRUD, field errors, fuzzing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
import redis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from schemas.subscription import CreatedSubscription, Subscription
from services.runtime.settings import Settings
from services.subscriptions.background import Background
from tests.integration.api_client import Api, serving
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out

pytestmark = pytest.mark.integration
TOKEN = "test-token-1-0123456789"
OTHER = "other-token-0123456789"


@pytest.fixture
def api(settings: Callable[..., Settings]) -> Iterator[Api]:
    with serving(settings(api_tokens=(TOKEN, OTHER)), TOKEN) as api:
        yield api


def test_refused_without_or_with_a_wrong_token(api: Api) -> None:
    for token in (None, "wrong", ""):
        status, body = api.call("GET", "/subscriptions", token=token)
        assert status == 401, token
        assert "bearer token" in body["error"]
    status, _ = api.call("POST", "/subscriptions", {"name": "x"}, token="wrong")
    assert status == 401
    assert api.call("GET", "/subscriptions")[0] == 200
    assert api.call("GET", "/subscriptions", token=OTHER)[0] == 200
    assert api.call("GET", "/openapi.json", token=None)[0] == 200


def test_without_tokens_the_api_listens_on_localhost_only(
    settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    s = settings(api_host="0.0.0.0")
    background = Background(s, webhooks=False, port=0)
    with caplog.at_level("WARNING"):
        background.start()
    try:
        assert "127.0.0.1 only" in caplog.text
        api = Api(f"http://127.0.0.1:{background.port}", s, TOKEN)
        assert api.call("GET", "/subscriptions", token=None)[0] == 200
    finally:
        background.stop()


def test_create_list_show_update_delete_and_recent_alerts(
    api: Api, redis_client: redis.Redis
) -> None:
    status, body = api.call(
        "POST",
        "/subscriptions",
        {"name": "zhipu", "filters": {"symbols": ["2513.HK"], "kinds": ["record_high"]}},
    )
    assert status == 201
    created = CreatedSubscription.model_validate(body)
    sub = created.subscription
    assert len(created.webhook_secret) == 64
    assert api.call("GET", "/subscriptions")[1]["subscriptions"] == [
        json.loads(sub.model_dump_json())
    ]
    status, shown = api.call("GET", f"/subscriptions/{sub.id}")
    assert status == 200
    assert "webhook_secret" not in json.dumps(shown)
    status, updated = api.call(
        "PUT",
        f"/subscriptions/{sub.id}",
        {"name": "zhipu 2%", "filters": {"symbols": ["2513.HK"], "min_change_pct": 2}},
    )
    assert status == 200
    assert Subscription.model_validate(updated).filters.min_change_pct == 2
    assert updated["created_at"] == shown["created_at"]

    ts = datetime(2026, 2, 13, 7, 58, tzinfo=UTC)
    signals = [
        factories.record_high("2513.HK", ts, p, previous_high=400.0, previous_high_ts=ts)
        for p in (404.0, 420.0, 496.0)
    ]
    deliver_and_fan_out(redis_client, api.settings, factories.alerts(signals))
    status, recent = api.call("GET", f"/subscriptions/{sub.id}/alerts?count=5")
    assert status == 200
    assert [a["signal"]["price"] for a in recent["alerts"]] == [420.0, 496.0]  # >= 2%
    status, recent = api.call("GET", f"/subscriptions/{sub.id}/alerts?count=1")
    assert [a["signal"]["price"] for a in recent["alerts"]] == [496.0]

    assert api.call("DELETE", f"/subscriptions/{sub.id}")[0] == 204
    assert api.call("GET", f"/subscriptions/{sub.id}")[0] == 404
    assert api.call("DELETE", f"/subscriptions/{sub.id}")[0] == 404
    assert api.call("PUT", f"/subscriptions/{sub.id}", {"name": "x"})[0] == 404
    assert api.call("GET", f"/subscriptions/{sub.id}/alerts")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "filters": {"symbols": ["no spaces"]}}, "filters.symbols.0"),
        ({"name": "x", "filters": {"symbols": "2513.HK"}}, "filters.symbols"),
        ({"name": "x", "filters": {"kinds": ["record_low"]}}, "filters.kinds.0"),
        ({"name": "x", "filters": {"windows": ["1y"]}}, "filters.windows.0"),
        ({"name": "x", "filters": {"min_change_pct": "lots"}}, "filters.min_change_pct"),
        ({"name": "x", "filters": {"min_spread_pp": -1}}, "filters.min_spread_pp"),
        ({"name": "x", "filters": {"pairs": ["000688.SH"]}}, "filters.pairs.0"),
        ({"name": "x", "filters": {"phases": ["opening"]}}, "filters.phases.0"),
        ({"name": "x", "frequency": "hourly"}, "frequency"),
        ({"name": "x", "frequency": "cooldown"}, "cooldown_s"),
        ({"name": "x", "frequency": "cooldown", "cooldown_s": 0}, "cooldown_s"),
        ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x", "delivery": {"stream": False, "pubsub": False}}, "delivery"),
        ({"name": "x", "delivery": {"webhook": {"url": "not a url"}}}, "delivery.webhook.url"),
        ({"name": "x", "delivery": {"webhook": {}}}, "delivery.webhook.url"),
        ({"name": "x", "id": "0123456789abcdef"}, "id"),
        ([], "(body)"),
        ("text", "(body)"),
    ],
)
def test_every_malformed_body_gets_a_4xx_naming_the_field(api: Api, body: Any, field: str) -> None:
    for method, path in (("POST", "/subscriptions"),):
        status, answer = api.call(method, path, body)
        assert 400 <= status < 500, answer
        assert field in [f["field"] for f in answer["fields"]], answer
        if field != "(body)":
            assert field in answer["error"]


def test_body_that_is_not_json_is_a_400(api: Api) -> None:
    status, answer = api.call("POST", "/subscriptions", raw=b"{name: x")
    assert status == 400
    assert "not JSON" in answer["error"]
    status, answer = api.call("GET", "/subscriptions/0123456789abcdef/alerts?count=0")
    assert status == 400
    assert answer["fields"][0]["field"] == "count"


def test_fuzzing_the_openapi_document_finds_no_server_error(api: Api) -> None:
    """Schemathesis cases for every operation of the served /openapi.json, valid and not.

    Driven from here with hypothesis rather than schemathesis' pytest plugin, whose
    fixture loader does not work with pytest 9 (`Function` has no `_nodeid`).
    """
    schema = schemathesis.openapi.from_url(api.base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses: Counter[int] = Counter()
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(
                base_url=api.base,
                headers=auth,
                checks=[not_a_server_error, response_schema_conformance],
            )
            statuses[response.status_code] += 1

        fuzz()
    # Both kinds of input were tried: accepted (201) and refused (4xx) bodies.
    assert statuses[201] > 0, statuses
    assert sum(n for code, n in statuses.items() if 400 <= code < 500) > 0, statuses
    print(dict(statuses))
