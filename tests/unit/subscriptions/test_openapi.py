"""The generated OpenAPI document covers exactly the routes the API serves."""

from __future__ import annotations

import redis
from jsonschema import Draft202012Validator

from services.runtime.settings import Settings
from services.subscriptions.api import build_app
from services.subscriptions.openapi import openapi_document
from services.subscriptions.registry import SubscriptionRegistry


def _served() -> set[tuple[str, str]]:
    # A client that never connects: build_app only stores it.
    client = redis.Redis(host="127.0.0.1", port=1)
    app = build_app(SubscriptionRegistry(client, Settings()), Settings())
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def test_every_served_route_is_documented_and_nothing_else() -> None:
    doc = openapi_document()
    documented = {
        (m, path) for path, item in doc["paths"].items() for m in item if m != "parameters"
    }
    assert documented | {("get", "/openapi.json")} == _served()


def test_component_schemas_are_valid_json_schema() -> None:
    for schema in openapi_document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises SchemaError, naming the fault


def test_auth_scheme_only_with_tokens() -> None:
    with_auth, tokenless = openapi_document(True), openapi_document(False)
    assert with_auth["security"] == [{"bearer": []}]
    assert "security" not in tokenless
    answers = tokenless["paths"]["/subscriptions"]["post"]["responses"]
    assert "403" in answers
    assert "401" not in answers
