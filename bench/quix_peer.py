"""The live bench's peer (`bench/live/`): record-high detection as a Quix Streams app.

Runs in its own virtualenv (.local/bench/venv-quix: quixstreams pins its own pydantic and
confluent-kafka), with the repository on PYTHONPATH for the pure detectors, so both sides
run the very same per-tick detection code and the comparison is about the engines.

Written the way a practised Quix user would: a StreamingDataFrame, `apply(stateful=True)`
with the symbol's tracker state in Quix's RocksDB state store (written on every tick: the
store batches it into the changelog at each commit), the JSON values decoded by Quix's
own orjson deserializer, signals produced with `to_topic`. Its trackers are cached in
memory between ticks of a key (the state store stays the truth for recovery), as our
processor does. Stops after `--count` ticks and writes the timing like the others.

    PYTHONPATH=. .local/bench/venv-quix/bin/python bench/quix_peer.py \
        --topic T --signals S --count N --config rules.toml --out F
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from quixstreams import Application, State

from services.detection.record_high import Late, SymbolTracker
from services.detection.rules import Rules
from services.detection.timeline import to_us
from services.detection.trackers import Trackers


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--signals", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, default=Path(".local/bench/quix-state"))
    parser.add_argument("--out", type=Path, required=True)
    # Named by a caller that waits for the group's first commit (bench/live/cost.py).
    parser.add_argument("--group", default=None)
    args = parser.parse_args()

    factory = Trackers(Rules.load(args.config))
    trackers: dict[str, SymbolTracker] = {}

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group or f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir / uuid.uuid4().hex[:8]),
        loglevel="WARNING",
    )
    ticks = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    signals = app.topic(args.signals, key_serializer="str", value_serializer="bytes")
    progress = {"seen": 0, "first": 0.0, "signals": 0}

    def detect(tick: dict[str, Any], state: State) -> bytes | None:
        if not progress["seen"]:
            progress["first"] = time.perf_counter()
        progress["seen"] += 1
        symbol = tick["symbol"]
        tracker = trackers.get(symbol)
        if tracker is None:
            tracker = trackers[symbol] = factory.symbol(symbol, state.get("tracker"))
        result = tracker.update(to_us(datetime.fromisoformat(tick["ts"])), tick["price"])
        state.set("tracker", tracker.to_state())
        signal = None if result is None or isinstance(result, Late) else result
        if signal is not None:
            progress["signals"] += 1
        if progress["seen"] >= args.count:
            seconds = time.perf_counter() - progress["first"]
            args.out.write_text(
                json.dumps(
                    {
                        "events": progress["seen"],
                        "seconds": seconds,
                        "rate": progress["seen"] / seconds,
                        "signals": progress["signals"],
                    }
                )
            )
            app.stop()
        return None if signal is None else signal.model_dump_json().encode()

    sdf = app.dataframe(ticks)
    sdf = sdf.apply(detect, stateful=True).filter(lambda value: value is not None)
    sdf.to_topic(signals)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
