"""A stand-in for akshare's calls, for `ingest --akshare` on the real broker:
`MARKETSIGNAL_AKSHARE_FETCH=tests.support.snapshot_feed:from_file` and the batches in the
JSON file named by `$SNAPSHOT_FEED_FILE`.

Each poll answers the next batch: a list of rows (the `Fetch` contract,
services/ingestor/akshare_quotes.py), filtered to the codes asked for, or
`{"fail": "why"}`, raised as a failed HTTP call would be. After the last batch, the last
rows again: the quotes stand still.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.ingestor.akshare_quotes import Fetch

FILE_VARIABLE = "SNAPSHOT_FEED_FILE"


def from_file() -> Fetch:
    batches: list[Any] = json.loads(Path(os.environ[FILE_VARIABLE]).read_text(encoding="utf-8"))
    polls = iter(batches)
    last: list[dict[str, Any]] = []

    def fetch(codes: Sequence[str]) -> list[dict[str, Any]]:
        nonlocal last
        batch = next(polls, None)
        if isinstance(batch, dict):
            raise ConnectionError(batch["fail"])
        if batch is not None:
            last = batch
        return [dict(row) for row in last if row.get("code") in codes]

    return fetch
