"""The built-in adapters' login and subscription (docs/feeds.md, "Logging in"): the
messages they build, how they read the answers, and the WebSocket source's handshake
against a scripted connection (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from services.cli import main
from services.ingestor.adapters import alpaca, handshake, polygon
from services.ingestor.adapters.base import (
    Handshake,
    LoginFailedError,
    LoginRefusedError,
    Outcome,
    Reply,
    parse_symbols,
)
from services.ingestor.websocket import WsOptions, WsSource
from services.runtime.settings import Settings

KEY = "pk-test-0123456789"
SECRET = "sk-test-9876543210"
CREDENTIAL_VARIABLES = (
    "MARKETSIGNAL_POLYGON_API_KEY",
    "MARKETSIGNAL_POLYGON_API_KEY_FILE",
    "MARKETSIGNAL_ALPACA_KEY_ID",
    "MARKETSIGNAL_ALPACA_KEY_ID_FILE",
    "MARKETSIGNAL_ALPACA_SECRET_KEY",
    "MARKETSIGNAL_ALPACA_SECRET_KEY_FILE",
)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell running the tests holds, these tests set their own."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- the messages -------------------------------------------------------------------------


def test_polygon_messages() -> None:
    assert json.loads(polygon.auth_message(KEY)) == {"action": "auth", "params": KEY}
    assert json.loads(polygon.subscribe_message(["AAPL", "MSFT"])) == {
        "action": "subscribe",
        "params": "T.AAPL,T.MSFT",
    }
    assert json.loads(polygon.subscribe_message(["*"]))["params"] == "T.*"


def test_alpaca_messages() -> None:
    assert json.loads(alpaca.auth_message(KEY, SECRET)) == {
        "action": "auth",
        "key": KEY,
        "secret": SECRET,
    }
    assert json.loads(alpaca.subscribe_message(["AAPL", "MSFT"])) == {
        "action": "subscribe",
        "trades": ["AAPL", "MSFT"],
    }


def test_symbols_are_split_trimmed_and_kept_once_in_order() -> None:
    assert parse_symbols(" AAPL, MSFT,,AAPL ,BRK.B") == ("AAPL", "MSFT", "BRK.B")
    assert parse_symbols("*") == ("*",)
    with pytest.raises(ValueError, match="no symbol given"):
        parse_symbols(" , ")
    with pytest.raises(ValueError, match="'BRK B' holds a space"):
        parse_symbols("AAPL,BRK B")


# -- reading the answers ------------------------------------------------------------------


def status(state: str, message: str) -> dict[str, Any]:
    return {"ev": "status", "status": state, "message": message}


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ([status("connected", "Connected Successfully")], Outcome.WAIT),
        ([status("auth_success", "authenticated")], Outcome.DONE),
        ([status("success", "authenticated")], Outcome.DONE),  # polygon.io/sockets, v1
        ([status("success", "subscribed to: T.AAPL")], Outcome.WAIT),
        ([status("auth_failed", "authentication failed")], Outcome.REFUSED),
        (status("auth_failed", "authentication failed"), Outcome.REFUSED),  # a bare object
        ([{"ev": "T", "sym": "AAPL"}, status("auth_success", "ok")], Outcome.DONE),
        ([status("max_connections", "Maximum number of connections exceeded")], Outcome.WAIT),
        ([{"T": "success", "msg": "authenticated"}], Outcome.WAIT),  # Alpaca's, not Polygon's
        ("auth_success", Outcome.WAIT),
        ([1, None, {"ev": 5}], Outcome.WAIT),
    ],
)
def test_polygon_login_replies(message: Any, outcome: Outcome) -> None:
    assert polygon.login_reply(message).outcome is outcome


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ([{"T": "success", "msg": "connected"}], Outcome.WAIT),
        ([{"T": "success", "msg": "authenticated"}], Outcome.DONE),
        ([{"T": "error", "code": 402, "msg": "auth failed"}], Outcome.REFUSED),
        ([{"T": "error", "code": 409, "msg": "insufficient subscription"}], Outcome.REFUSED),
        ([{"T": "error", "code": 406, "msg": "connection limit exceeded"}], Outcome.RETRY),
        ([{"T": "error", "code": 404, "msg": "auth timeout"}], Outcome.RETRY),
        ([{"T": "error", "code": 500, "msg": "internal error"}], Outcome.RETRY),
        ([{"T": "subscription", "trades": ["AAPL"]}], Outcome.WAIT),
        ([status("auth_success", "authenticated")], Outcome.WAIT),  # Polygon's, not Alpaca's
        ({"T": 1}, Outcome.WAIT),
    ],
)
def test_alpaca_login_replies(message: Any, outcome: Outcome) -> None:
    assert alpaca.login_reply(message).outcome is outcome


def test_a_refusal_says_why() -> None:
    refused = alpaca.login_reply([{"T": "error", "code": 402, "msg": "auth failed"}])
    assert refused == Reply(Outcome.REFUSED, "error 402: auth failed")
    assert polygon.login_reply([status("auth_failed", "bad key")]).detail == "auth_failed: bad key"


# -- credentials from the settings ----------------------------------------------------------


def test_the_handshake_takes_the_credentials_from_the_settings() -> None:
    settings = Settings(
        polygon_api_key=SecretStr(KEY),
        alpaca_key_id=SecretStr(KEY),
        alpaca_secret_key=SecretStr(SECRET),
    )
    made = handshake("polygon", settings, ("AAPL",))
    assert made.auth == polygon.auth_message(KEY)
    assert made.subscribe == (polygon.subscribe_message(["AAPL"]),)
    assert made.classify is polygon.login_reply
    made = handshake("alpaca", settings, ("AAPL", "MSFT"))
    assert made.auth == alpaca.auth_message(KEY, SECRET)
    assert made.subscribe == (alpaca.subscribe_message(["AAPL", "MSFT"]),)
    # repr() is what a log line or a traceback would show: never the credentials.
    assert KEY not in repr(made)
    assert SECRET not in repr(made)
    assert KEY not in repr(WsOptions(url="ws://feed", handshake=made))


def test_no_login_sends_no_credentials_but_still_subscribes() -> None:
    made = handshake("polygon", Settings(), ("AAPL",), log_in=False)
    assert made.auth is None
    assert made.subscribe == (polygon.subscribe_message(["AAPL"]),)


@pytest.mark.parametrize(
    ("name", "settings", "missing"),
    [
        ("polygon", {}, "MARKETSIGNAL_POLYGON_API_KEY is not set"),
        ("alpaca", {"alpaca_secret_key": SECRET}, "MARKETSIGNAL_ALPACA_KEY_ID is not set"),
        ("alpaca", {"alpaca_key_id": KEY}, "MARKETSIGNAL_ALPACA_SECRET_KEY is not set"),
    ],
)
def test_a_missing_credential_is_named(name: str, settings: dict[str, str], missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        handshake(name, Settings(**settings), ("AAPL",))  # type: ignore[arg-type]


def test_credentials_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "polygon.key").write_text(KEY + "\n")
    (tmp_path / "alpaca.secret").write_text(SECRET)
    monkeypatch.setenv("MARKETSIGNAL_POLYGON_API_KEY_FILE", str(tmp_path / "polygon.key"))
    monkeypatch.setenv("MARKETSIGNAL_ALPACA_KEY_ID", KEY)
    monkeypatch.setenv("MARKETSIGNAL_ALPACA_SECRET_KEY_FILE", str(tmp_path / "alpaca.secret"))
    settings = Settings()
    assert settings.polygon_api_key is not None
    assert settings.polygon_api_key.get_secret_value() == KEY  # the newline dropped
    assert settings.alpaca_secret_key is not None
    assert settings.alpaca_secret_key.get_secret_value() == SECRET
    # The variable wins over its file.
    monkeypatch.setenv("MARKETSIGNAL_POLYGON_API_KEY", "from-the-variable")
    assert Settings().polygon_api_key == SecretStr("from-the-variable")


@pytest.mark.parametrize("content", [None, "  \n"], ids=["missing", "empty"])
def test_an_unusable_credential_file_is_named_never_quoted(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "polygon.key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError, match="MARKETSIGNAL_POLYGON_API_KEY_FILE") as caught:
        Settings(polygon_api_key_file=path)
    assert str(path) in str(caught.value)


# -- the handshake on a connection ---------------------------------------------------------


class Scripted:
    """A connection that answers with `replies` (then nothing) and records what is sent."""

    def __init__(self, replies: list[Any]) -> None:
        # bytes are sent as they are (not JSON, say); anything else JSON-encoded
        self.replies: Iterator[str | bytes] = iter(
            r if isinstance(r, bytes) else json.dumps(r) for r in replies
        )
        self.sent: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def recv(self) -> str | bytes:
        reply = next(self.replies, None)
        if reply is None:
            await asyncio.Event().wait()  # silent for ever: the login timeout decides
        assert reply is not None
        return reply


def start(
    made: Handshake | None,
    replies: list[Any],
    subscribe: str | None = None,
    ws: Scripted | None = None,
) -> Scripted:
    """Run the source's start of a connection against `replies`; the connection after."""
    ws = ws or Scripted(replies)
    options = WsOptions(url="ws://feed", subscribe=subscribe, handshake=made, login_timeout_s=0.2)
    source = WsSource(options, screener=None, sink=None, in_flight=lambda: 0)  # type: ignore[arg-type]
    asyncio.run(source._start(ws))  # type: ignore[arg-type]
    return ws


WELCOME = [status("connected", "Connected Successfully")]
AUTHENTICATED = [status("auth_success", "authenticated")]


def test_auth_then_the_answer_then_the_subscriptions() -> None:
    made = polygon.handshake(KEY, ["AAPL", "MSFT"])
    ws = start(made, [WELCOME, AUTHENTICATED], subscribe='{"action":"subscribe","params":"Q.*"}')
    assert ws.sent == [
        polygon.auth_message(KEY),
        polygon.subscribe_message(["AAPL", "MSFT"]),
        '{"action":"subscribe","params":"Q.*"}',  # --subscribe FILE, after
    ]


def test_nothing_is_subscribed_before_the_answer() -> None:
    made = polygon.handshake(KEY, ["AAPL"])
    ws = Scripted([WELCOME, b"not JSON", [{"ev": "T", "sym": "AAPL"}]])
    with pytest.raises(TimeoutError, match=r"Polygon did not answer the login within 0\.2s"):
        start(made, [], ws=ws)
    assert ws.sent == [polygon.auth_message(KEY)]


def test_a_refused_login_names_the_vendor_the_reason_and_the_variable() -> None:
    made = alpaca.handshake((KEY, SECRET), ["AAPL"], "THE_KEY_VARIABLES")
    with pytest.raises(LoginRefusedError) as caught:
        start(made, [[{"T": "success", "msg": "connected"}], [_error(402, "auth failed")]])
    text = str(caught.value)
    assert text == "Alpaca refused the login (error 402: auth failed): check THE_KEY_VARIABLES"
    assert KEY not in text
    assert SECRET not in text


def test_a_login_refused_for_now_is_retried() -> None:
    made = alpaca.handshake((KEY, SECRET), ["AAPL"])
    with pytest.raises(LoginFailedError, match="406: connection limit exceeded"):
        start(made, [[_error(406, "connection limit exceeded")]])


def test_without_credentials_only_the_subscriptions_are_sent() -> None:
    ws = start(polygon.handshake(None, ["AAPL"]), [])
    assert ws.sent == [polygon.subscribe_message(["AAPL"])]
    assert start(None, [], subscribe="hello").sent == ["hello"]


def _error(code: int, text: str) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": text}


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--symbols", "AAPL"], "--symbols applies to a built-in adapter"),
        (["--adapter", "m:f", "--no-login"], "--no-login applies to a built-in adapter"),
        (["--adapter", "polygon", "--symbols", "AAPL"], "MARKETSIGNAL_POLYGON_API_KEY is not set"),
        (["--adapter", "alpaca", "--symbols", "AAPL"], "MARKETSIGNAL_ALPACA_KEY_ID is not set"),
        (["--adapter", "polygon", "--symbols", " , "], "--symbols: no symbol given"),
    ],
)
def test_login_options_are_checked_before_kafka(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    assert main(["ingest", "--ws", "ws://127.0.0.1:9/feed", *argv]) == 2
    assert problem in capsys.readouterr().err


def test_logging_in_to_subscribe_to_nothing_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETSIGNAL_POLYGON_API_KEY", KEY)
    assert main(["ingest", "--ws", "ws://127.0.0.1:9/feed", "--adapter", "polygon"]) == 2
    err = capsys.readouterr().err
    assert "subscribes to --symbols (e.g. --symbols AAPL,MSFT) or sends --subscribe FILE" in err
    assert KEY not in err
