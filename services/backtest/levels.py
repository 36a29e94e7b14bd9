"""`backtest --levels LEVELS.jsonl`: the levels a backtest arms before its first tick.

One JSON object a line, `{"level_id", "symbol", "above"}` or `"below"` (a `note` is
allowed; blank lines are skipped), read by the same model as the API's levels. A backtest's
levels belong to no subscription: their firings carry `subscription_id` null, whatever a
line says. A bad line or a level id given twice stops the run, naming the line: a level
silently dropped would make the backtest disagree with the stream without a word.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from schemas.common import field_problems
from schemas.level import Level
from services.detection.price_level import ArmedLevel, LevelBook


class LevelsFileError(ValueError):
    """A levels file that cannot be armed; the message names the line."""


def read_levels(path: Path) -> LevelBook:
    book = LevelBook()
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                level = Level.model_validate_json(line, strict=True)
            except ValidationError as exc:
                named = "; ".join(
                    f"{p.field or '(line)'}: {p.message}" for p in field_problems(exc)
                )
                raise LevelsFileError(f"{path}:{number}: {named}") from None
            if level.level_id in book:
                raise LevelsFileError(f"{path}:{number}: level_id {level.level_id!r} given twice")
            book.arm(ArmedLevel.of(level)._replace(subscription_id=None))
    return book


def write_levels(path: Path, levels: list[Level]) -> None:
    """`levels` as a levels file `read_levels` takes: the fields a backtest uses."""
    path.write_text(
        "".join(
            lv.model_dump_json(include={"level_id", "symbol", "above", "below"}) + "\n"
            for lv in levels
        ),
        encoding="utf-8",
    )
