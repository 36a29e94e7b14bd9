"""The subscriptions HTTP API (aiohttp), served by the alerter process.

JSON in and out, validated by the models in schemas/subscription.py. Errors are JSON
`{"error": "...", "fields": [{"field": "filters.min_change_pct", "message": "..."}]}`:
400 for a body that is not JSON or not an object, 422 for a value the schema refuses,
401 without a valid bearer token, 404 for an unknown subscription. `/openapi.json` (no
token needed) describes all of it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from aiohttp import web
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from schemas.alert import Alert
from schemas.subscription import CreatedSubscription, Subscription, SubscriptionSpec
from services.alerter.subscriptions import SubscriptionRegistry
from services.settings import Settings

log = logging.getLogger("marketsignal.api")

REGISTRY: web.AppKey[SubscriptionRegistry] = web.AppKey("registry", SubscriptionRegistry)
TOKENS: web.AppKey[tuple[str, ...]] = web.AppKey("tokens", tuple)
MAX_BODY = 256 * 1024
RECENT_DEFAULT, RECENT_MAX = 50, 1000
PUBLIC = frozenset({"/openapi.json"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, fields: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if fields is not None:
        body["fields"] = fields
    return web.json_response(body, status=status)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def validation_error(exc: ValidationError) -> web.Response:
    fields = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    named = ", ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error(422, f"invalid subscription: {named}", fields)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[TOKENS]
    if tokens and request.path not in PUBLIC:
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        ok = scheme.lower() == "bearer" and any(
            hmac.compare_digest(token.encode(), t.encode()) for t in tokens
        )
        if not ok:
            response = error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="marketsignal"'
            return response
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error(exc.status, exc.reason)
        raise
    except redis.RedisError as exc:
        log.error("API: Redis: %s", exc)
        return error(503, f"Redis unavailable: {exc}")


async def _spec(request: web.Request) -> SubscriptionSpec | web.Response:
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, f"body is not JSON: {exc}", [{"field": "(body)", "message": str(exc)}])
    if not isinstance(data, dict):
        return error(
            400, "body must be a JSON object", [{"field": "(body)", "message": "not an object"}]
        )
    try:
        return SubscriptionSpec.model_validate(data)
    except ValidationError as exc:
        return validation_error(exc)


def _json(model: Subscription | CreatedSubscription, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def _not_found(sub_id: str) -> web.Response:
    return error(404, f"no subscription {sub_id!r}")


async def create(request: web.Request) -> web.StreamResponse:
    spec = await _spec(request)
    if isinstance(spec, web.Response):
        return spec
    sub, secret = await asyncio.to_thread(request.app[REGISTRY].create, spec)
    return _json(CreatedSubscription(subscription=sub, webhook_secret=secret), 201)


async def list_all(request: web.Request) -> web.StreamResponse:
    subs = await asyncio.to_thread(request.app[REGISTRY].list_all)
    text = '{"subscriptions":[' + ",".join(s.model_dump_json() for s in subs) + "]}"
    return web.Response(text=text, content_type="application/json")


async def show(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    sub = await asyncio.to_thread(request.app[REGISTRY].get, sub_id)
    return _not_found(sub_id) if sub is None else _json(sub)


async def update(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    spec = await _spec(request)
    if isinstance(spec, web.Response):
        return spec
    sub = await asyncio.to_thread(request.app[REGISTRY].update, sub_id, spec)
    return _not_found(sub_id) if sub is None else _json(sub)


async def delete(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    done = await asyncio.to_thread(request.app[REGISTRY].delete, sub_id)
    return web.Response(status=204) if done else _not_found(sub_id)


async def recent(request: web.Request) -> web.StreamResponse:
    sub_id = request.match_info["sub_id"]
    text = request.query.get("count", str(RECENT_DEFAULT))
    if not text.isdigit() or not 1 <= int(text) <= RECENT_MAX:
        message = f"count must be an integer from 1 to {RECENT_MAX}"
        return error(400, message, [{"field": "count", "message": message}])
    registry = request.app[REGISTRY]
    sub = await asyncio.to_thread(registry.get, sub_id)
    if sub is None:
        return _not_found(sub_id)
    raw = await asyncio.to_thread(registry.recent, sub_id, int(text))
    body = '{"alerts":[' + ",".join(r.decode() for r in raw) + "]}"
    return web.Response(text=body, content_type="application/json")


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document(bool(request.app[TOKENS])))


def build_app(registry: SubscriptionRegistry, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[TOKENS] = settings.api_tokens
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/subscriptions", create)
    app.router.add_get("/subscriptions", list_all)
    app.router.add_get("/subscriptions/{sub_id}", show)
    app.router.add_put("/subscriptions/{sub_id}", update)
    app.router.add_delete("/subscriptions/{sub_id}", delete)
    app.router.add_get("/subscriptions/{sub_id}/alerts", recent)
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
            400: "Not JSON, not an object, or a bad query parameter",
            401: "Missing or wrong bearer token",
            404: "No such subscription",
            422: "A field the schema refuses (each one named)",
            503: "Redis unavailable",
        }
        chosen = [*codes, 503] + ([401] if with_auth else [])
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
                    **errors(400, 422),
                },
            },
            "get": {
                "summary": "List subscriptions",
                "operationId": "listSubscriptions",
                "responses": {
                    "200": {
                        "description": "Every subscription",
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["subscriptions"],
                                "properties": {
                                    "subscriptions": {
                                        "type": "array",
                                        "items": _ref("Subscription"),
                                    }
                                },
                            }
                        ),
                    },
                    **errors(),
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
                    **errors(400, 404, 422),
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
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Alerts",
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["alerts"],
                                "properties": {"alerts": {"type": "array", "items": _ref("Alert")}},
                            }
                        ),
                    },
                    **errors(400, 404),
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
