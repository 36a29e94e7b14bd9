"""The subscriptions API's OpenAPI 3.1 document, generated from pydantic models.

Bodies, answers and query parameters are models; their JSON Schema (2020-12, which
OpenAPI 3.1 uses as is) is the document's schema, so a field added to a model is
documented without a second edit. What is not a model is the route table below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.alert import Alert
from schemas.common import SUBSCRIPTION_ID_PATTERN
from schemas.level import Level, LevelSpec
from schemas.signals import LEVEL_ID_PATTERN
from schemas.subscription import (
    CreatedSubscription,
    Subscription,
    SubscriptionSpec,
)
from services.subscriptions.registry import (
    ENTRY_ID_PATTERN,
    PAGE_MAX,
    RECENT_MAX,
)


class FieldError(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    """Every 4xx and 503 answer; `fields` names each field at fault."""

    error: str
    fields: list[FieldError] = Field(default_factory=list)


class SubscriptionPage(BaseModel):
    subscriptions: list[Subscription]
    # Pass as `after` for the next page; null on the last.
    next: str | None


class AlertPage(BaseModel):
    alerts: list[Alert]
    # Pass as `before` for older alerts; null when there are none.
    next: str | None


class LevelPage(BaseModel):
    levels: list[Level]
    # Pass as `after` for the next page; null on the last.
    next: str | None


class LevelListQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 0
    after: Annotated[str, Field(pattern=LEVEL_ID_PATTERN)] = ""


class RedisUser(BaseModel):
    user: str
    password: str
    stream: str
    channel: str


class ListQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 0
    after: Annotated[str, Field(pattern=SUBSCRIPTION_ID_PATTERN)] = ""


class RecentQuery(BaseModel):
    count: Annotated[int, Field(ge=1, le=RECENT_MAX)] = 0
    before: Annotated[str, Field(pattern=ENTRY_ID_PATTERN)] = ""


_ERRORS = {
    400: "Not JSON, not an object, nested too deep, or a bad query parameter",
    401: "Missing or wrong bearer token",
    403: "Host header not this host (tokenless mode)",
    404: "No such subscription (or another owner's), or no such level of it",
    409: "A limit on levels reached (per subscription or per deployment)",
    415: "Body not application/json",
    422: "A field the schema refuses, or a refused webhook destination (each named)",
    503: "Redis (or, for levels, Kafka) unavailable",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    summary: str
    status: int
    description: str
    answer: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()


ROUTES = (
    Route(
        "post", "/subscriptions", "createSubscription",
        "Create a subscription (its webhook secret is returned only here)",
        201, "Created", CreatedSubscription, body=SubscriptionSpec, errors=(400, 415, 422),
    ),
    Route(
        "get", "/subscriptions", "listSubscriptions",
        "List the caller's subscriptions (an admin: all), a page at a time",
        200, "A page in id order; `next` is the cursor of the next",
        SubscriptionPage, query=ListQuery, errors=(400,),
    ),
    Route(
        "get", "/subscriptions/{sub_id}", "showSubscription", "Show a subscription",
        200, "The subscription", Subscription, errors=(404,),
    ),
    Route(
        "put", "/subscriptions/{sub_id}", "updateSubscription",
        "Replace a subscription's name, filters, frequency, expiry, delivery",
        200, "Updated", Subscription, body=SubscriptionSpec, errors=(400, 404, 415, 422),
    ),
    Route(
        "delete", "/subscriptions/{sub_id}", "deleteSubscription",
        "Delete a subscription, its stream and its webhook outbox",
        204, "Deleted", errors=(404,),
    ),
    Route(
        "get", "/subscriptions/{sub_id}/alerts", "recentAlerts",
        "Recent alerts of the subscription's stream, oldest first",
        200, "Alerts; `next`: pass as `before` for older ones",
        AlertPage, query=RecentQuery, errors=(400, 404),
    ),
    Route(
        "post", "/subscriptions/{sub_id}/redis-user", "grantRedisUser",
        "A Redis user that can read only this subscription's stream and channel "
        "(a new password each call)",
        201, "The user and its password (shown once)", RedisUser, errors=(404,),
    ),
    Route(
        "post", "/subscriptions/{sub_id}/levels", "createLevel",
        "Arm a price level of the subscription: `above` or `below` X on a symbol",
        201, "Created and armed", Level, body=LevelSpec, errors=(400, 404, 409, 415, 422),
    ),
    Route(
        "get", "/subscriptions/{sub_id}/levels", "listLevels",
        "List the subscription's price levels, a page at a time",
        200, "A page in level id order; `next` is the cursor of the next",
        LevelPage, query=LevelListQuery, errors=(400, 404),
    ),
    Route(
        "put", "/subscriptions/{sub_id}/levels/{level_id}", "replaceLevel",
        "Change a price level (symbol, side, price, note), keeping its id",
        200, "Changed and re-armed", Level, body=LevelSpec, errors=(400, 404, 415, 422),
    ),
    Route(
        "delete", "/subscriptions/{sub_id}/levels/{level_id}", "deleteLevel",
        "Disarm and delete one price level of the subscription",
        204, "Deleted", errors=(404,),
    ),
)  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _parameters(query: type[BaseModel]) -> list[dict[str, Any]]:
    """Optional query parameters from a model's fields (their defaults are the handler's)."""
    properties = query.model_json_schema()["properties"]
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {k: v for k, v in schema.items() if k not in ("title", "default")},
        }
        for name, schema in properties.items()
    ]


def _operation(route: Route, with_auth: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": route.description}
    if route.answer is not None:
        ok["content"] = _ref(route.answer)
    codes = [*route.errors, 503, 401 if with_auth else 403]
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.operation_id,
        "responses": {
            str(route.status): ok,
            **{str(c): {"description": _ERRORS[c], "content": _ref(Error)} for c in codes},
        },
    }
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": _ref(route.body)}
    if route.query is not None:
        operation["parameters"] = _parameters(route.query)
    return operation


def openapi_document(with_auth: bool = True) -> dict[str, Any]:
    """OpenAPI 3.1; `with_auth` adds the bearer scheme (tokenless mode has none)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (SubscriptionSpec, "validation"),
        (LevelSpec, "validation"),
        (Error, "serialization"),
    ]
    models += [(r.answer, "serialization") for r in ROUTES if r.answer is not None]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for route in ROUTES:
        item = paths.setdefault(route.path, {})
        names = [n for n in ("sub_id", "level_id") if "{" + n + "}" in route.path]
        if names:
            item["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in names
            ]
        item[route.method] = _operation(route, with_auth)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "marketsignal subscriptions",
            "version": "1",
            "description": "Alert subscriptions: who gets which alert, how often, and where.",
        },
        "paths": paths,
        "components": {"schemas": dict(top["$defs"])},
    }
    if with_auth:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc
