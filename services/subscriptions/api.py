"""The subscriptions HTTP API (aiohttp), served by the alerter process.

JSON in and out, validated strictly by the models in schemas/subscription.py (no string
to number or bool coercion). Errors are JSON `{"error": "...", "fields": [{"field":
"filters.min_change_pct", "message": "..."}]}`: 400 for a body that is not JSON, not an
object, nested deeper than MAX_DEPTH, or a bad query parameter; 415 for a body that is
not `application/json`; 422 for a value the schema refuses or a webhook destination
that is refused; 401 without a valid bearer token; 403 for a foreign Host header in
tokenless mode; 404 for an unknown subscription, or another owner's (or an unknown
level); 409 for a level past a limit; 503 when Redis or Kafka is unavailable.
`/openapi.json` (no token needed) describes all of it.

Owners (docs/security.md): each token in `api_tokens` sees and changes only the
subscriptions it created; `api_admin_tokens` see and change all. Without any token the
API listens on 127.0.0.1 only, every caller is the operator, and the Host header must
name this host, so a web page (DNS rebinding, a form post) cannot drive it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import redis
from aiohttp import web
from kafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from schemas.common import field_problems
from schemas.level import LevelSpec
from schemas.signals import LEVEL_ID_PATTERN
from schemas.subscription import (
    CreatedSubscription,
    SubscriptionSpec,
    is_subscription_id,
)
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings
from services.subscriptions.access import Access, Caller, error, identify
from services.subscriptions.destinations import DestinationError, check_url
from services.subscriptions.levels import LevelStore, Refused
from services.subscriptions.openapi import openapi_document
from services.subscriptions.registry import (
    ENTRY_ID_PATTERN,
    PAGE_DEFAULT,
    PAGE_MAX,
    RECENT_DEFAULT,
    RECENT_MAX,
    SubscriptionRegistry,
)

log = logging.getLogger("marketsignal.api")


REGISTRY: web.AppKey[SubscriptionRegistry] = web.AppKey("registry", SubscriptionRegistry)
LEVELS: web.AppKey[LevelStore] = web.AppKey("levels", LevelStore)
ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)
MAX_BODY = 256 * 1024
# Deep enough for any subscription (4 levels), shallow enough that no parser recurses far.
MAX_DEPTH = 32
PUBLIC = frozenset({"/openapi.json"})
_DIGITS = re.compile(r"^[0-9]{1,4}$")
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
_LEVEL_ID = re.compile(LEVEL_ID_PATTERN)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def validation_error(exc: ValidationError, what: str = "subscription") -> web.Response:
    fields = [{"field": p.field or "(body)", "message": p.message} for p in field_problems(exc)]
    named = ", ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error(422, f"invalid {what}: {named}", fields)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS]
    caller = identify(request, access)
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
    except (KafkaError, BrokerUnavailableError) as exc:
        # A level is armed through Kafka: without the broker's acks it is not created.
        log.error("API: Kafka: %s", exc)
        return error(503, f"Kafka unavailable ({type(exc).__name__})")


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


async def _body(request: web.Request, model: type[_M], what: str) -> _M | web.Response:
    """The body as `model`, validated strictly; or the 400, 415 or 422 that refuses it."""
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
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        return validation_error(exc, what)


async def _spec(request: web.Request) -> SubscriptionSpec | web.Response:
    spec = await _body(request, SubscriptionSpec, "subscription")
    if isinstance(spec, web.Response):
        return spec
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


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def _page(name: str, items: list[str], following: str | None) -> web.Response:
    """`{name: [...], "next": ...}` from JSON the models (or Redis) already wrote."""
    text = f'{{"{name}":[{",".join(items)}],"next":{json.dumps(following)}}}'
    return web.Response(text=text, content_type="application/json")


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
    return _page("subscriptions", [s.model_dump_json() for s in subs], following)


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
    scope = caller_of(request).scope
    registry = request.app[REGISTRY]
    if await asyncio.to_thread(registry.get, sub_id, scope) is None:
        return _not_found(sub_id)
    # Its levels are disarmed first: a failure here leaves the subscription, and the
    # delete can be repeated; the other way round could leave levels armed for no one.
    await asyncio.to_thread(request.app[LEVELS].disarm_subscription, sub_id)
    done = await asyncio.to_thread(registry.delete, sub_id, scope)
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
    return _page("alerts", [r.decode() for r in raw], following)


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


def _limit_refusal(refused: Refused, sub_id: str, settings: Settings) -> web.Response:
    if refused is Refused.SUBSCRIPTION_FULL:
        message = (
            f"subscription {sub_id} has {settings.levels_per_subscription} levels, the most "
            "a subscription may have (MARKETSIGNAL_LEVELS_PER_SUBSCRIPTION): delete one first"
        )
    else:
        message = (
            f"this deployment has {settings.levels_max} levels, the most it may have "
            "(MARKETSIGNAL_LEVELS_MAX)"
        )
    return error(409, message, [{"field": "(body)", "message": message}])


async def create_level(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    scope = caller_of(request).scope
    # An unknown or foreign id is a 404 before the body is looked at.
    if await asyncio.to_thread(request.app[REGISTRY].get, sub_id, scope) is None:
        return _not_found(sub_id)
    spec = await _body(request, LevelSpec, "level")
    if isinstance(spec, web.Response):
        return spec
    created = await asyncio.to_thread(request.app[LEVELS].create, sub_id, spec, scope)
    if created is Refused.NO_SUBSCRIPTION:
        return _not_found(sub_id)  # deleted meanwhile
    if isinstance(created, Refused):
        return _limit_refusal(created, sub_id, request.app[ACCESS].settings)
    return _json(created, 201)


async def list_levels(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    limit = _int_query(request, "limit", PAGE_DEFAULT, PAGE_MAX)
    if isinstance(limit, web.Response):
        return limit
    after = request.query.get("after", "")
    if after and not _LEVEL_ID.match(after):
        message = "after must be a level id (the `next` of the previous page)"
        return error(400, message, [{"field": "after", "message": message}])
    if await asyncio.to_thread(request.app[REGISTRY].get, sub_id, caller_of(request).scope) is None:
        return _not_found(sub_id)
    levels, following = await asyncio.to_thread(request.app[LEVELS].page, sub_id, after, limit)
    return _page("levels", [level.model_dump_json() for level in levels], following)


def _no_level(sub_id: str, level_id: str) -> web.Response:
    shown = level_id if _LEVEL_ID.match(level_id) else "(not an id)"
    message = f"subscription {sub_id} has no level {shown}"
    return error(404, message, [{"field": "level_id", "message": "not found"}])


async def replace_level(request: web.Request) -> web.StreamResponse:
    sub_id, level_id = request.match_info["sub_id"], request.match_info["level_id"]
    if await asyncio.to_thread(request.app[REGISTRY].get, sub_id, caller_of(request).scope) is None:
        return _not_found(sub_id)
    levels = request.app[LEVELS]
    if (
        not _LEVEL_ID.match(level_id)
        or await asyncio.to_thread(levels.get, sub_id, level_id) is None
    ):
        return _no_level(sub_id, level_id)
    spec = await _body(request, LevelSpec, "level")
    if isinstance(spec, web.Response):
        return spec
    level = await asyncio.to_thread(levels.replace, sub_id, level_id, spec)
    return _no_level(sub_id, level_id) if level is None else _json(level)


async def delete_level(request: web.Request) -> web.StreamResponse:
    sub_id, level_id = request.match_info["sub_id"], request.match_info["level_id"]
    if await asyncio.to_thread(request.app[REGISTRY].get, sub_id, caller_of(request).scope) is None:
        return _not_found(sub_id)
    valid = _LEVEL_ID.match(level_id) is not None
    if valid and await asyncio.to_thread(request.app[LEVELS].delete, sub_id, level_id):
        return web.Response(status=204)
    return _no_level(sub_id, level_id)


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(not request.app[ACCESS].tokenless))


def build_app(
    registry: SubscriptionRegistry, settings: Settings, levels: LevelStore | None = None
) -> web.Application:
    """`levels`: where levels live (default: a store on the registry's Redis client,
    closed with the app)."""
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    if levels is None:
        levels = LevelStore(registry.client, settings)

        async def close_levels(_app: web.Application) -> None:
            await asyncio.to_thread(levels.close)

        app.on_cleanup.append(close_levels)
    app[LEVELS] = levels
    app[ACCESS] = Access(settings.api_tokens, settings.api_admin_tokens, settings)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/subscriptions", create)
    app.router.add_get("/subscriptions", list_page)
    app.router.add_get("/subscriptions/{sub_id}", show)
    app.router.add_put("/subscriptions/{sub_id}", update)
    app.router.add_delete("/subscriptions/{sub_id}", delete)
    app.router.add_get("/subscriptions/{sub_id}/alerts", recent)
    app.router.add_post("/subscriptions/{sub_id}/redis-user", redis_user)
    app.router.add_post("/subscriptions/{sub_id}/levels", create_level)
    app.router.add_get("/subscriptions/{sub_id}/levels", list_levels)
    app.router.add_put("/subscriptions/{sub_id}/levels/{level_id}", replace_level)
    app.router.add_delete("/subscriptions/{sub_id}/levels/{level_id}", delete_level)
    return app
