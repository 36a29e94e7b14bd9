"""Factory fixtures for every suite (tests/factories.py): signals, alerts, environments."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas.alert import Alert
from schemas.signals import AhPremium, IndexDivergence, RecordHigh
from tests import factories


@pytest.fixture
def record_high_factory() -> Callable[..., RecordHigh]:
    return factories.record_high


@pytest.fixture
def divergence_factory() -> Callable[..., IndexDivergence]:
    return factories.divergence


@pytest.fixture
def ah_premium_factory() -> Callable[..., AhPremium]:
    return factories.ah_premium


@pytest.fixture
def alert_factory() -> Callable[..., Alert]:
    return factories.alert


@pytest.fixture
def service_env_factory() -> Callable[..., dict[str, str]]:
    return factories.service_env
