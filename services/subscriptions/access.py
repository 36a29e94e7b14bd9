"""Who is calling the subscriptions API: bearer tokens, owners, and tokenless mode.

Owners (docs/security.md): each token in `api_tokens` sees and changes only the
subscriptions it created; `api_admin_tokens` see and change all. Without any token
every caller is the operator, and the Host header must name this host.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.runtime.settings import Settings

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


@dataclass(frozen=True)
class Caller:
    """Who is calling: the owner name its subscriptions carry, and whether it sees all."""

    owner: str
    admin: bool

    @property
    def scope(self) -> str | None:
        """The owner to restrict registry calls to; None: every subscription."""
        return None if self.admin else self.owner


@dataclass(frozen=True)
class Access:
    owners: tuple[str, ...]
    admins: tuple[str, ...]
    settings: Settings

    @property
    def tokenless(self) -> bool:
        return not (self.owners or self.admins)


def owner_of(token: str) -> str:
    """The owner name of a token: a fingerprint, never the token itself."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def error(status: int, message: str, fields: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if fields is not None:
        body["fields"] = fields
    return web.json_response(body, status=status)


def _matches(token: str, candidates: tuple[str, ...]) -> bool:
    # Every candidate compared, in constant time each: no early exit to time.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def identify(request: web.Request, access: Access) -> Caller | web.Response:
    if access.tokenless:
        host = request.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.lower() not in LOCAL_HOSTS:
            message = "Host must be 127.0.0.1, localhost or [::1] when the API has no token"
            return error(403, message, [{"field": "Host", "message": message}])
        return Caller("local", admin=True)
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() == "bearer" and token:
        if _matches(token, access.admins):
            return Caller(owner_of(token), admin=True)
        if _matches(token, access.owners):
            return Caller(owner_of(token), admin=False)
    message = "missing or wrong bearer token (Authorization: Bearer TOKEN)"
    response = error(401, message, [{"field": "Authorization", "message": message}])
    response.headers["WWW-Authenticate"] = 'Bearer realm="marketsignal"'
    return response
