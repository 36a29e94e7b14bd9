"""The subscriptions HTTP API (aiohttp), served by the alerter process.

JSON in and out, validated strictly by the models in schemas/subscription.py (no string
to number or bool coercion). Errors are JSON `{"error": "...", "fields": [{"field":
"filters.min_change_pct", "message": "..."}]}`: 400 for a body that is not JSON, not an
object, nested deeper than MAX_DEPTH, or a bad query parameter; 415 for a body that is
not `application/json`; 422 for a value the schema refuses or a webhook destination
that is refused; 401 without a valid bearer token; 403 for a foreign Host header in
tokenless mode; 404 for an unknown subscription, or another owner's. `/openapi.json`
(no token needed) describes all of it.

Owners (docs/security.md): each token in `api_tokens` sees and changes only the
subscriptions it created; `api_admin_tokens` see and change all. Without any token the
API listens on 127.0.0.1 only, every caller is the operator, and the Host header must
name this host, so a web page (DNS rebinding, a form post) cannot drive it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from aiohttp import web
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from schemas.alert import Alert
from schemas.common import field_problems
from schemas.subscription import (
    SUBSCRIPTION_ID_PATTERN,
    CreatedSubscription,
    Subscription,
    SubscriptionSpec,
    is_subscription_id,
)
from services.runtime.settings import Settings
from services.subscriptions.destinations import DestinationError, check_url
from services.subscriptions.registry import PAGE_DEFAULT, PAGE_MAX, SubscriptionRegistry

log = logging.getLogger("marketsignal.api")


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


REGISTRY: web.AppKey[SubscriptionRegistry] = web.AppKey("registry", SubscriptionRegistry)
ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)
MAX_BODY = 256 * 1024
# Deep enough for any subscription (4 levels), shallow enough that no parser recurses far.
MAX_DEPTH = 32
RECENT_DEFAULT, RECENT_MAX = 50, 1000
PUBLIC = frozenset({"/openapi.json"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
_DIGITS = re.compile(r"^[0-9]{1,4}$")
_ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def owner_of(token: str) -> str:
    """The owner name of a token: a fingerprint, never the token itself."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, fields: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if fields is not None:
        body["fields"] = fields
    return web.json_response(body, status=status)


def validation_error(exc: ValidationError) -> web.Response:
    fields = [{"field": p.field or "(body)", "message": p.message} for p in field_problems(exc)]
    named = ", ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error(422, f"invalid subscription: {named}", fields)


def _matches(token: str, candidates: tuple[str, ...]) -> bool:
    # Every candidate compared, in constant time each: no early exit to time.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def _caller(request: web.Request, access: Access) -> Caller | web.Response:
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


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS]
    caller = _caller(request, access)
    if isinstance(caller, web.Response):
        if request.path not in PUBLIC or caller.status == 403:
            return caller
        caller = Caller("local", admin=False)
    request[CALLER] = caller
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            # aiohttp's own refusals (413 too large, 405 method): name what was refused.
            field = "(body)" if exc.status == 413 else "(request)"
            return error(exc.status, exc.reason, [{"field": field, "message": exc.reason}])
        raise
    except redis.RedisError as exc:
        log.error("API: Redis: %s", exc)
        return error(503, f"Redis unavailable ({type(exc).__name__})")


def caller_of(request: web.Request) -> Caller:
    return request[CALLER]


def json_too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if arrays and objects nest deeper than `limit` (strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRINGS.sub(b"", raw):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _body_error(status: int, message: str, field: str = "(body)") -> web.Response:
    return error(status, message, [{"field": field, "message": message}])


async def _spec(request: web.Request) -> SubscriptionSpec | web.Response:
    if request.content_type != "application/json":
        return _body_error(415, "Content-Type must be application/json", "Content-Type")
    raw = await request.read()
    if json_too_deep(raw):
        return _body_error(400, f"body nests arrays or objects deeper than {MAX_DEPTH}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return _body_error(400, f"body is not JSON: {str(exc)[:200]}")
    if not isinstance(data, dict):
        return _body_error(400, "body must be a JSON object")
    try:
        spec = SubscriptionSpec.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        return validation_error(exc)
    if spec.expires_at is not None and spec.expires_at <= datetime.now(UTC):
        return _body_error(422, "expires_at: must be in the future", "expires_at")
    if spec.delivery.webhook is not None:
        try:
            await check_url(
                spec.delivery.webhook.url, request.app[ACCESS].settings.webhook_allow_networks
            )
        except DestinationError as exc:
            return _body_error(422, f"delivery.webhook.url: {exc}", "delivery.webhook.url")
    return spec


def _json(model: Subscription | CreatedSubscription, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def _not_found(sub_id: str) -> web.Response:
    shown = sub_id if is_subscription_id(sub_id) else "(not an id)"
    return error(404, f"no subscription {shown}", [{"field": "sub_id", "message": "not found"}])


def _int_query(request: web.Request, name: str, default: int, top: int) -> int | web.Response:
    text = request.query.get(name, str(default))
    if not _DIGITS.match(text) or not 1 <= int(text) <= top:
        message = f"{name} must be an integer from 1 to {top}"
        return error(400, message, [{"field": name, "message": message}])
    return int(text)


async def create(request: web.Request) -> web.StreamResponse:
    spec = await _spec(request)
    if isinstance(spec, web.Response):
        return spec
    owner = caller_of(request).owner
    sub, secret = await asyncio.to_thread(request.app[REGISTRY].create, spec, owner)
    return _json(CreatedSubscription(subscription=sub, webhook_secret=secret), 201)


async def list_page(request: web.Request) -> web.StreamResponse:
    limit = _int_query(request, "limit", PAGE_DEFAULT, PAGE_MAX)
    if isinstance(limit, web.Response):
        return limit
    after = request.query.get("after", "")
    if after and not is_subscription_id(after):
        message = "after must be a subscription id (the `next` of the previous page)"
        return error(400, message, [{"field": "after", "message": message}])
    registry = request.app[REGISTRY]
    subs, following = await asyncio.to_thread(registry.page, caller_of(request).scope, after, limit)
    text = (
        '{"subscriptions":['
        + ",".join(s.model_dump_json() for s in subs)
        + '],"next":'
        + json.dumps(following)
        + "}"
    )
    return web.Response(text=text, content_type="application/json")


async def show(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    sub = await asyncio.to_thread(request.app[REGISTRY].get, sub_id, caller_of(request).scope)
    return _not_found(sub_id) if sub is None else _json(sub)


async def update(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    scope = caller_of(request).scope
    registry = request.app[REGISTRY]
    # An unknown or foreign id is a 404 before the body is looked at.
    if await asyncio.to_thread(registry.get, sub_id, scope) is None:
        return _not_found(sub_id)
    spec = await _spec(request)
    if isinstance(spec, web.Response):
        return spec
    sub = await asyncio.to_thread(registry.update, sub_id, spec, scope)
    return _not_found(sub_id) if sub is None else _json(sub)


async def delete(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    done = await asyncio.to_thread(request.app[REGISTRY].delete, sub_id, caller_of(request).scope)
    return web.Response(status=204) if done else _not_found(sub_id)


async def recent(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    count = _int_query(request, "count", RECENT_DEFAULT, RECENT_MAX)
    if isinstance(count, web.Response):
        return count
    before = request.query.get("before", "")
    if before and not _ENTRY_ID.match(before):
        message = "before must be a stream entry id (the `next` of the previous page)"
        return error(400, message, [{"field": "before", "message": message}])
    registry = request.app[REGISTRY]
    sub = await asyncio.to_thread(registry.get, sub_id, caller_of(request).scope)
    if sub is None:
        return _not_found(sub_id)
    raw, following = await asyncio.to_thread(registry.recent_page, sub_id, count, before)
    body = (
        '{"alerts":['
        + ",".join(r.decode() for r in raw)
        + '],"next":'
        + json.dumps(following)
        + "}"
    )
    return web.Response(text=body, content_type="application/json")


async def redis_user(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    registry = request.app[REGISTRY]
    granted = await asyncio.to_thread(registry.grant_redis_user, sub_id, caller_of(request).scope)
    if granted is None:
        return _not_found(sub_id)
    user, password = granted
    stream = registry.keys.stream(sub_id)
    return web.json_response(
        {"user": user, "password": password, "stream": stream, "channel": stream}, status=201
    )


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(not request.app[ACCESS].tokenless))


def build_app(registry: SubscriptionRegistry, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[ACCESS] = Access(settings.api_tokens, settings.api_admin_tokens, settings)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/subscriptions", create)
    app.router.add_get("/subscriptions", list_page)
    app.router.add_get("/subscriptions/{sub_id}", show)
    app.router.add_put("/subscriptions/{sub_id}", update)
    app.router.add_delete("/subscriptions/{sub_id}", delete)
    app.router.add_get("/subscriptions/{sub_id}/alerts", recent)
    app.router.add_post("/subscriptions/{sub_id}/redis-user", redis_user)
    return app


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def openapi_document(with_auth: bool = True) -> dict[str, Any]:
    """OpenAPI 3.1 (its schemas are JSON Schema 2020-12, what pydantic writes)."""
    _, top = models_json_schema(
        [
            (SubscriptionSpec, "validation"),
            (Subscription, "serialization"),
            (CreatedSubscription, "serialization"),
            (Alert, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(top["$defs"])
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }

    def errors(*codes: int) -> dict[str, Any]:
        names = {
            400: "Not JSON, not an object, nested too deep, or a bad query parameter",
            401: "Missing or wrong bearer token",
            403: "Host header not this host (tokenless mode)",
            404: "No such subscription (or another owner's)",
            415: "Body not application/json",
            422: "A field the schema refuses, or a refused webhook destination (each named)",
            503: "Redis unavailable",
        }
        chosen = [*codes, 503] + ([401] if with_auth else [403])
        return {
            str(c): {"description": names[c], "content": _content(_ref("Error"))} for c in chosen
        }

    sub_id = {
        "name": "sub_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    body = {"required": True, "content": _content(_ref("SubscriptionSpec"))}
    paths: dict[str, Any] = {
        "/subscriptions": {
            "post": {
                "summary": "Create a subscription (its webhook secret is returned only here)",
                "operationId": "createSubscription",
                "requestBody": body,
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": _content(_ref("CreatedSubscription")),
                    },
                    **errors(400, 415, 422),
                },
            },
            "get": {
                "summary": "List the caller's subscriptions (an admin: all), a page at a time",
                "operationId": "listSubscriptions",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": SUBSCRIPTION_ID_PATTERN},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page in id order; `next` is the cursor of the next",
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["subscriptions", "next"],
                                "properties": {
                                    "subscriptions": {
                                        "type": "array",
                                        "items": _ref("Subscription"),
                                    },
                                    "next": {"type": ["string", "null"]},
                                },
                            }
                        ),
                    },
                    **errors(400),
                },
            },
        },
        "/subscriptions/{sub_id}": {
            "parameters": [sub_id],
            "get": {
                "summary": "Show a subscription",
                "operationId": "showSubscription",
                "responses": {
                    "200": {
                        "description": "The subscription",
                        "content": _content(_ref("Subscription")),
                    },
                    **errors(404),
                },
            },
            "put": {
                "summary": "Replace a subscription's name, filters, frequency, expiry, delivery",
                "operationId": "updateSubscription",
                "requestBody": body,
                "responses": {
                    "200": {"description": "Updated", "content": _content(_ref("Subscription"))},
                    **errors(400, 404, 415, 422),
                },
            },
            "delete": {
                "summary": "Delete a subscription, its stream and its webhook outbox",
                "operationId": "deleteSubscription",
                "responses": {"204": {"description": "Deleted"}, **errors(404)},
            },
        },
        "/subscriptions/{sub_id}/alerts": {
            "parameters": [sub_id],
            "get": {
                "summary": "Recent alerts of the subscription's stream, oldest first",
                "operationId": "recentAlerts",
                "parameters": [
                    {
                        "name": "count",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": RECENT_MAX},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": _ENTRY_ID.pattern},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Alerts; `next`: pass as `before` for older ones",
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["alerts", "next"],
                                "properties": {
                                    "alerts": {"type": "array", "items": _ref("Alert")},
                                    "next": {"type": ["string", "null"]},
                                },
                            }
                        ),
                    },
                    **errors(400, 404),
                },
            },
        },
        "/subscriptions/{sub_id}/redis-user": {
            "parameters": [sub_id],
            "post": {
                "summary": "A Redis user that can read only this subscription's stream "
                "and channel (a new password each call)",
                "operationId": "grantRedisUser",
                "responses": {
                    "201": {
                        "description": "The user and its password (shown once)",
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["user", "password", "stream", "channel"],
                                "properties": {
                                    k: {"type": "string"}
                                    for k in ("user", "password", "stream", "channel")
                                },
                            }
                        ),
                    },
                    **errors(404),
                },
            },
        },
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "marketsignal subscriptions",
            "version": "1",
            "description": "Alert subscriptions: who gets which alert, how often, and where.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if with_auth:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc
