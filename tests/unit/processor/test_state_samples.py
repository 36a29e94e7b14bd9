"""Table values written by earlier code still load, and the run goes on as it would have.

Each stored sample (`tests/data/processor_state/<name>/`, made by
`tests/unit/state_samples.py`) holds the symbol, pair and A/H tables one version of the
processor wrote, and what that version did next from them: every batch's signals, dead
letters, forwards and bar outcomes, and the tables at the end. A worker restarted on
those tables today must do exactly the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.detection.rules import Rules
from tests.unit.state_samples import run_steps, second_part

SAMPLES = sorted((Path(__file__).parents[2] / "data" / "processor_state").iterdir())


def read(sample: Path, name: str) -> Any:
    return json.loads((sample / name).read_text())


# Top-level keys a later version added to a value (the table version, the symbol's last
# price): left out of what is written where the stored value has none.
ADDED_KEYS = ("v", "last")


def as_stored(written: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`written` without the keys added since, where the stored format had none."""
    return {
        key: {k: v for k, v in value.items() if k not in ADDED_KEYS or k in stored.get(key, {})}
        for key, value in written.items()
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_a_restart_on_stored_tables_continues_as_their_writer_did(sample: Path) -> None:
    rules = Rules.load(sample / "rules.toml")
    pairs = {**read(sample, "pair-state.json"), **read(sample, "ah-state.json")}
    pipeline = second_part(rules, read(sample, "symbol-state.json"), pairs)
    steps = read(sample, "steps.json")
    expected = read(sample, "expected-outputs.json")
    outputs = json.loads(json.dumps(run_steps(pipeline, steps)))
    for i, (got, want) in enumerate(zip(outputs, expected, strict=True)):
        assert got == want, f"batch #{i} ({steps[i]['kind']})"
    symbols = json.loads(json.dumps(pipeline.symbols))
    want_symbols = read(sample, "expected-symbol-state.json")
    assert as_stored(symbols, want_symbols) == want_symbols
    want_pairs = {
        **read(sample, "expected-pair-state.json"),
        **read(sample, "expected-ah-state.json"),
    }
    assert as_stored(json.loads(json.dumps(pipeline.pairs)), want_pairs) == want_pairs


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_stored_tables_read_back_to_the_same_states(sample: Path) -> None:
    """Every stored value makes the tracker and position it was written from: read back
    and written again, it is what was stored (with today's table version)."""
    rules = Rules.load(sample / "rules.toml")
    symbols = read(sample, "symbol-state.json")
    pairs = {**read(sample, "pair-state.json"), **read(sample, "ah-state.json")}
    rewritten_symbols, rewritten_pairs = second_part(rules, symbols, pairs).rewritten()
    assert {v["v"] for v in [*rewritten_symbols.values(), *rewritten_pairs.values()]} == {2}
    assert as_stored(rewritten_symbols, symbols) == symbols
    assert as_stored(rewritten_pairs, pairs) == pairs
