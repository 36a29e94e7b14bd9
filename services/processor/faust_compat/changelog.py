"""faust's names for the topics it creates, and the changelog of a re-keyed table.

`marketsignal process` creates the changelogs and the leader topic before the worker
starts, so both must be named exactly as faust names them.
"""

from __future__ import annotations

from typing import Any


def changelog_topic_name(app_id: str, table: str) -> str:
    """The changelog topic faust gives table `table` of app `app_id`."""
    return f"{app_id}-{table}-changelog"


def leader_topic_name(app_id: str) -> str:
    """faust's leader election topic: whoever holds its one partition runs the timers."""
    return f"{app_id}-__assignor-__leader"


def rebuild_changelog_topic(table: Any) -> None:
    """Build `table`'s changelog topic again from its current codecs.

    A Table builds its changelog topic in its constructor, with the key codec it derived
    from `key_type`; after the codec is changed the topic must be rebuilt, or writes go
    out with the old codec.
    """
    table.changelog_topic = table._new_changelog_topic()
