"""A client for the subscriptions API served by a real `Background` (its own thread)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from services.runtime.settings import Settings
from services.subscriptions.background import Background


@dataclass
class Api:
    base: str
    settings: Settings
    # The bearer token a call sends unless it names another (None: no Authorization).
    token: str | None = None
    timeout_s: float = 30.0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | EllipsisType | None = ...,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body or None); `token=...` sends the client's own token."""
        bearer = self.token if token is ... else token
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if bearer is not None:
            request.add_header("Authorization", f"Bearer {bearer}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            text = exc.read()
            return exc.code, json.loads(text) if text else None


ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"


def create_subscription(api: Api, token: str, name: str) -> str:
    """A subscription named `name`, created with `token`: its id."""
    status, body = api.call("POST", "/subscriptions", {"name": name}, token=token)
    assert status == 201, body
    return str(body["subscription"]["id"])


@contextmanager
def serving(settings: Settings, token: str | None = None) -> Iterator[Api]:
    """The API of `settings` on a free port (no webhook worker), stopped afterwards."""
    background = Background(settings, webhooks=False, port=0).start()
    try:
        yield Api(f"http://127.0.0.1:{background.port}", settings, token)
    finally:
        background.stop()
