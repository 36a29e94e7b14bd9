"""The subscriptions API's controls of docs/security.md, probed as an attacker would.

Real HTTP, real Redis: owners and admins, start-up refusal of bad tokens, API hygiene
(content type, Host, depth, strict types, names, paging, expiry). What leaves the
alerter is in test_security_webhooks.py (webhook destinations) and
test_security_delivery.py (Redis users, secrets in logs).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.api_client import ADMIN, ALICE, BOB, Api, create_subscription
from tests.support.services import run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_owners_see_and_change_only_their_own_and_admins_all(api: Api) -> None:
    alice = create_subscription(api, ALICE, "alice's")
    bob = create_subscription(api, BOB, "bob's")
    admins = create_subscription(api, ADMIN, "admin's")

    def listed(token: str) -> set[str]:
        status, body = api.call("GET", "/subscriptions", token=token)
        assert status == 200
        return {s["id"] for s in body["subscriptions"]}

    assert listed(ALICE) == {alice}
    assert listed(BOB) == {bob}
    assert listed(ADMIN) == {alice, bob, admins}
    # Bob probes Alice's subscription every way: it does not exist for him.
    for method, path, body in (
        ("GET", f"/subscriptions/{alice}", None),
        ("PUT", f"/subscriptions/{alice}", {"name": "mine now"}),
        ("DELETE", f"/subscriptions/{alice}", None),
        ("GET", f"/subscriptions/{alice}/alerts", None),
        ("POST", f"/subscriptions/{alice}/redis-user", None),
        ("POST", f"/subscriptions/{alice}/levels", {"symbol": "2513.HK", "above": 500}),
        ("GET", f"/subscriptions/{alice}/levels", None),
        ("PUT", f"/subscriptions/{alice}/levels/0123456789abcdef", {"symbol": "X", "above": 1}),
        ("DELETE", f"/subscriptions/{alice}/levels/0123456789abcdef", None),
    ):
        status, answer = api.call(method, path, body, token=BOB)
        assert status == 404, (method, path, answer)
    status, shown = api.call("GET", f"/subscriptions/{alice}", token=ALICE)
    assert status == 200
    assert shown["name"] == "alice's"
    assert shown["owner"].startswith("token:")
    assert ALICE not in json.dumps(shown)
    # The admin manages anyone's; the owner stays the creator.
    status, updated = api.call("PUT", f"/subscriptions/{alice}", {"name": "renamed"}, token=ADMIN)
    assert status == 200
    assert updated["owner"] == shown["owner"]
    assert api.call("DELETE", f"/subscriptions/{bob}", token=ADMIN)[0] == 204
    assert listed(BOB) == set()
    # A wrong or empty token is no owner at all.
    for token in ("", "alice-token", ALICE + "x"):
        assert api.call("GET", "/subscriptions", token=token)[0] == 401


def test_paging_through_subscriptions(api: Api) -> None:
    made = sorted(create_subscription(api, ALICE, f"s{i}") for i in range(7))
    create_subscription(api, BOB, "not alice's")
    seen: list[str] = []
    cursor = ""
    pages = 0
    for _ in range(10):  # bounded: a cursor that never ends fails on `pages`, not a hang
        path = "/subscriptions?limit=3" + (f"&after={cursor}" if cursor else "")
        status, body = api.call("GET", path)
        assert status == 200
        seen += [s["id"] for s in body["subscriptions"]]
        pages += 1
        if body["next"] is None:
            break
        cursor = body["next"]
    assert seen == made
    assert pages == 3
    for bad in ("limit=0", "limit=1001", "limit=%C2%B2", "limit=" + "9" * 5000, "after=x'--"):
        status, body = api.call("GET", f"/subscriptions?{bad}")
        assert status == 400, bad
        assert body["fields"][0]["field"] == bad.split("=")[0]


def test_token_settings_are_checked_at_start_up() -> None:
    cases = {
        '[""]': "MARKETSIGNAL_API_TOKENS[0] is refused",
        '["short"]': "at least 16 characters",
        "not-json-secret-value": "must be a JSON list of strings",
        '{"a": 1}': "must be a JSON list of strings",
    }
    for value, message in cases.items():
        env = {**os.environ, "MARKETSIGNAL_API_TOKENS": value}
        run = run_cli("alert", "--once", env=env, timeout_s=60)
        assert run.returncode == 2, (value, run.stderr)
        assert message in run.stderr, (value, run.stderr)
        assert "Traceback" not in run.stderr
        assert value not in run.stderr or value in ('[""]',), "the value was echoed"


def test_tokenless_mode_checks_content_type_and_host(local_api: Api) -> None:
    body = json.dumps({"name": "x"}).encode()
    status, answer = local_api.call(
        "POST", "/subscriptions", raw=body, token=None, headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert answer["fields"][0]["field"] == "Content-Type"
    for host in ("evil.example", "127.0.0.1.evil.example", "attacker:9110"):
        status, answer = local_api.call("GET", "/subscriptions", token=None, headers={"Host": host})
        assert status == 403, host
        assert answer["fields"][0]["field"] == "Host"
    for host in ("127.0.0.1:9110", "localhost", "[::1]:9110"):
        assert local_api.call("GET", "/subscriptions", token=None, headers={"Host": host})[0] == 200


HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("arrays 100,000 deep", b"[" * 100_000 + b"]" * 100_000, 400, "(body)"),
    ("objects 20,000 deep", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, 400, "(body)"),
    (
        "deep inside a field",
        b'{"name":"x","filters":' + b"[" * 50 + b"]" * 50 + b"}",
        400,
        "(body)",
    ),
    (
        "cooldown as a string",
        b'{"name":"x","frequency":"cooldown","cooldown_s":"10"}',
        422,
        "cooldown_s",
    ),
    (
        "cooldown as a bool",
        b'{"name":"x","frequency":"cooldown","cooldown_s":true}',
        422,
        "cooldown_s",
    ),
    (
        "min change as a string",
        b'{"name":"x","filters":{"min_change_pct":"1"}}',
        422,
        "filters.min_change_pct",
    ),
    ("stream as 1", b'{"name":"x","delivery":{"stream":1}}', 422, "delivery.stream"),
    ("expires_at 1 (1970)", b'{"name":"x","expires_at":1}', 422, "expires_at"),
    ("expires_at 1999", b'{"name":"x","expires_at":"1999-01-01T00:00:00Z"}', 422, "expires_at"),
    ("expires_at past", b'{"name":"x","expires_at":"2021-01-01T00:00:00Z"}', 422, "expires_at"),
    ("NUL in the name", b'{"name":"a\\u0000b"}', 422, "name"),
    ("right-to-left override", b'{"name":"invoice\\u202egpj.exe"}', 422, "name"),
    ("zero-width joiner", b'{"name":"a\\u200db"}', 422, "name"),
    ("line separator", b'{"name":"a\\u2028b"}', 422, "name"),
    (
        "huge number",
        b'{"name":"x","filters":{"min_change_pct":1e999}}',
        422,
        "filters.min_change_pct",
    ),
    (
        "5,000-digit integer",
        b'{"name":"x","frequency":"cooldown","cooldown_s":' + b"9" * 5000 + b"}",
        400,
        "(body)",
    ),
    ("lone surrogate", b'{"name":"\\ud800"}', 422, "(body)"),
    ("not UTF-8", b'{"name":"\xff"}', 400, "(body)"),
]


@pytest.mark.parametrize(("label", "raw", "status", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_a_4xx_naming_the_field(
    api: Api, label: str, raw: bytes, status: int, field: str
) -> None:
    for method, path in (("POST", "/subscriptions"),):
        got, answer = api.call(method, path, raw=raw)
        assert got == status, (label, answer)
        assert field in [f["field"] for f in answer["fields"]], (label, answer)


def test_a_body_over_the_size_limit_is_a_413(api: Api) -> None:
    raw = b'{"name":"' + b"x" * (300 * 1024) + b'"}'
    status, body = api.call("POST", "/subscriptions", raw=raw)
    assert status == 413
    assert body["fields"][0]["field"] == "(body)"


def test_hostile_query_parameters_get_a_400(api: Api) -> None:
    sub = create_subscription(api, ALICE, "q")
    for query in ("count=%C2%B2", "count=" + "9" * 5000, "count=-1", "count=1e3", "before=1-x"):
        status, body = api.call("GET", f"/subscriptions/{sub}/alerts?{query}")
        assert status == 400, query
        assert body["fields"][0]["field"] == query.split("=")[0]
    for path in ("/subscriptions/..%2f..", "/subscriptions/" + "a" * 5000, "/subscriptions/%00"):
        assert api.call("GET", path)[0] == 404


def test_expires_at_in_the_past_is_refused_and_in_the_future_kept(api: Api) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, body = api.call("POST", "/subscriptions", {"name": "x", "expires_at": future})
    assert status == 201, body
