"""The pure parts of docs/security.md: token settings, destinations, signatures, depth, names."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.subscription import SubscriptionSpec
from services.runtime.settings import Settings, redact_url, settings_problem
from services.subscriptions.access import owner_of
from services.subscriptions.api import json_too_deep
from services.subscriptions.destinations import DestinationError, parse_url, refusal
from services.subscriptions.secrets import WebhookSecrets
from services.subscriptions.signing import sign, verify

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([""], "MARKETSIGNAL_API_TOKENS[0] is refused"),
        (["x" * 15], "at least 16 characters"),
        (["ok-token-0123456789", " padded-token-0123456 "], "MARKETSIGNAL_API_TOKENS[1]"),
    ],
)
def test_empty_or_short_tokens_are_refused(tokens: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_tokens=json.dumps(tokens))
    problem = settings_problem(caught.value)
    assert message in problem
    for token in tokens:
        if token.strip():
            assert token.strip() not in problem


def test_a_token_setting_that_is_not_json_is_named_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_admin_tokens="secret-value-not-json")
    problem = settings_problem(caught.value)
    assert "MARKETSIGNAL_API_ADMIN_TOKENS must be a JSON list of strings" in problem
    assert "secret-value" not in problem


def test_good_tokens_and_networks_are_read() -> None:
    s = Settings(
        api_tokens='["owner-token-0123456789"]',
        api_admin_tokens='["admin-token-0123456789"]',
        webhook_allow_networks='["10.1.0.0/16", "::1"]',
        redis_password_file=None,
    )
    assert s.api_auth
    assert s.webhook_allow_networks == (
        ipaddress.IPv4Network("10.1.0.0/16"),
        ipaddress.IPv6Network("::1/128"),
    )


def test_redis_urls_are_shown_without_their_password() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("redis://user:s3cret@[::1]:6379/0") == "redis://user:***@[::1]:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    s = Settings(redis_url="redis://:s3cret@h:1/0", redis_password_file=None)
    assert "s3cret" not in s.redis_location


def test_owner_names_are_fingerprints_not_tokens() -> None:
    token = "owner-token-0123456789"
    assert re.fullmatch(r"token:[0-9a-f]{12}", owner_of(token))
    assert owner_of(token) != owner_of(token + "x")
    assert token not in owner_of(token)


REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.0.1",
    "169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("address", REFUSED)
def test_inside_addresses_are_refused_in_every_spelling(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


def test_public_addresses_pass_and_the_allow_list_admits_named_networks() -> None:
    assert refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None
    allow = (ipaddress.IPv4Network("10.1.0.0/16"),)
    assert refusal(ipaddress.ip_address("10.1.2.3"), allow) is None
    assert refusal(ipaddress.ip_address("10.2.0.1"), allow) is not None


def test_schemes_are_case_insensitive_and_only_http_or_https() -> None:
    assert parse_url("HTTP://example.com/x") == ("http", "example.com", 80)
    assert parse_url("hTTpS://example.com:8443/") == ("https", "example.com", 8443)
    for bad in ("ftp://example.com/", "file:///etc/passwd", "http:///nohost", "http://h:99999/"):
        with pytest.raises(DestinationError):
            parse_url(bad)


def test_a_signature_covers_the_timestamp_and_goes_stale() -> None:
    secret, body, now = "k" * 64, b'{"alert_id":"a"}', 1_770_000_000
    header = sign(secret, now, body)
    assert re.fullmatch(r"t=1770000000,v1=[0-9a-f]{64}", header)
    assert verify(secret, body, header, now=now)
    assert verify(secret, body, header, now=now + 299)
    assert not verify(secret, body, header, now=now + 301)  # replayed later
    assert not verify(secret, body + b" ", header, now=now)  # body changed
    assert not verify(secret[:-1] + "j", body, header, now=now)  # another secret
    moved = header.replace("t=1770000000", "t=1770000300")
    assert not verify(secret, body, moved, now=now + 300)  # timestamp changed
    assert not verify(secret, body, "sha256=" + header, now=now)


def test_webhook_secrets_are_derived_per_subscription() -> None:
    one, two = WebhookSecrets(b"a" * 32), WebhookSecrets(b"b" * 32)
    assert one.secret("0123456789abcdef") != one.secret("0123456789abcdee")
    assert one.secret("0123456789abcdef") != two.secret("0123456789abcdef")
    assert re.fullmatch(r"[0-9a-f]{64}", one.secret("0123456789abcdef"))
    assert "a" * 32 not in repr(one)


def _nest(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k[{": value}
    return value


@given(st.integers(0, 80), st.text(alphabet='[]{}"\\ab', max_size=20))
def test_depth_is_counted_outside_strings(depth: int, noise: str) -> None:
    raw = json.dumps({"noise": noise, "v": _nest(depth)}).encode()
    assert json_too_deep(raw, 32) is (depth + 1 > 32)


def test_depth_limit_stops_huge_nesting_quickly() -> None:
    assert json_too_deep(b"[" * 100_000 + b"]" * 100_000)
    assert json_too_deep(b'{"a":' * 20_000 + b"1" + b"}" * 20_000)
    assert not json_too_deep(b'{"name":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\u200d", "\u2028", "\ufeff", "\ue000"])
def test_names_refuse_control_and_formatting_characters(char: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SubscriptionSpec(name=f"a{char}b")
    assert caught.value.errors()[0]["loc"] == ("name",)


def test_names_keep_ordinary_text_of_any_script() -> None:
    assert SubscriptionSpec(name="智谱 2513.HK — 52周新高 ✓").name.startswith("智谱")


def test_expires_at_has_a_minimum() -> None:
    with pytest.raises(ValidationError):
        SubscriptionSpec.model_validate_json('{"name":"x","expires_at":1}', strict=True)
    with pytest.raises(ValidationError):
        SubscriptionSpec(name="x", expires_at=datetime(1999, 1, 1, tzinfo=UTC))
    assert SubscriptionSpec(name="x", expires_at=datetime(2030, 1, 1, tzinfo=UTC)).expires_at


def test_prometheus_runs_without_its_lifecycle_api() -> None:
    """POST /-/quit on a lifecycle-enabled Prometheus stops it: neither stack enables it."""
    stack = (ROOT / "deploy/local/stack.sh").read_text()
    commands = [line for line in stack.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "--web.enable-lifecycle" in line]
    compose: Any = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "--web.enable-lifecycle" not in compose["services"]["prometheus"]["command"]


def test_the_local_redis_gets_a_password_from_a_file_not_the_command_line() -> None:
    stack = (ROOT / "deploy/local/stack.sh").read_text()
    start = stack[stack.index('redis-server "$REDIS_AUTH_CONF"') :].split("\n", 1)[0]
    assert "requirepass" not in start
    assert "printf 'requirepass %s\\n'" in stack
    assert 'REDIS_PASSWORD_FILE="$SECRETS/redis.password"' in stack
    assert Settings.model_fields["redis_password_file"].default == Path(
        ".local/secrets/redis.password"
    )
