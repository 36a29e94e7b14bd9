"""`build_app` wires three agents at concurrency 1, two state tables and the timers (no
I/O: the app is built, never started)."""

from __future__ import annotations

from typing import Any

from services.processor.app import build_app
from services.processor.readiness import Readiness
from services.processor.topology import source_topics
from services.runtime.settings import Settings


def app_for(readiness: Readiness | None = None) -> tuple[Any, Settings]:
    settings = Settings()
    return build_app(settings, settings.rules(), web_port=0, readiness=readiness), settings


def test_each_agent_reads_its_source_one_event_at_a_time() -> None:
    app, settings = app_for()
    sources = {name: agent.channel.get_topic_name() for name, agent in app.agents.items()}
    ticks, by_pair, history = source_topics(settings)
    assert sources == {"records": ticks, "history": history, "divergence": by_pair}
    # faust-streaming issue 606: higher concurrency can commit past an unprocessed message.
    assert {agent.concurrency for agent in app.agents.values()} == {1}


def test_the_state_tables_key_raw_bytes() -> None:
    app, _ = app_for()
    assert list(app.tables) == ["symbol-state", "pair-state"]
    for table in app.tables.values():
        assert table.key_serializer == "raw"
        assert table.changelog_topic.key_serializer == "raw"


def test_the_timers_with_and_without_a_readiness_probe() -> None:
    timers = ["follow_levels", "retry_rewinds", "release_held_ticks", "freeze_after_recovery"]
    app, _ = app_for()
    assert [task.__name__ for task in app._app_tasks] == timers
    app, _ = app_for(Readiness())
    assert [task.__name__ for task in app._app_tasks] == [*timers, "refresh_readiness"]
