"""JSON Schema export of the wire contract, for consumers that are not Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.alert import Alert
from schemas.dead_letter import DeadLetter
from schemas.level import Level
from schemas.signals import Signal
from schemas.tick import Tick
from schemas.tick_bundle import tick_record_schema


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema for every message on a topic or Redis key."""
    return {
        "tick.schema.json": Tick.model_json_schema(),
        "tick_record.schema.json": tick_record_schema(),
        "signal.schema.json": TypeAdapter(Signal).json_schema(),
        "alert.schema.json": Alert.model_json_schema(),
        "dead_letter.schema.json": DeadLetter.model_json_schema(),
        # The `levels` topic's records (a null value is a tombstone).
        "level.schema.json": Level.model_json_schema(),
    }


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
