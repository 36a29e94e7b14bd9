"""The e2e tests reuse the integration fixtures: one namespace per test on the real stack."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401 - fixtures are registered by import
    namespace,
    read_topic,
    redis_client,
    settings,
    stack,
)
