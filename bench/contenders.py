"""Consumers for the live bench (`bench/live/`), each in its own process on one topic.

    python bench/contenders.py aiokafka --topic T --count N --decoder json|orjson --out F
    python bench/contenders.py faust --topic T --count N --out F

Each reads the topic from the start with a fresh consumer group and writes
{"events": n, "seconds": s, "rate": n/s} to F, timed from the first record it handles to
the N-th: start-up and group joins are left out, for every contender alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import orjson


def _write(out: Path, events: int, seconds: float, **extra: Any) -> None:
    rate = events / seconds if seconds > 0 else 0.0
    out.write_text(json.dumps({"events": events, "seconds": seconds, "rate": rate, **extra}))


async def aiokafka_limit(bootstrap: str, topic: str, count: int, decoder: str, out: Path) -> None:
    """The Python limit: getmany and a decode per value, nothing else."""
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415 - each contender imports its own

    loads = orjson.loads if decoder == "orjson" else json.loads
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if not seen and records:
                    first = time.perf_counter()
                for record in records:
                    loads(record.value)
                seen += sum(len(r) for r in batches.values())
    finally:
        await consumer.stop()
    # The first batch's own decode is inside the window, its fetch is not: negligible at N.
    _write(out, seen, time.perf_counter() - first)


def faust_bare(bootstrap: str, topic: str, count: int, out: Path) -> None:
    """The ceiling: a faust-streaming agent (concurrency 1, memory store, no table, no
    sensor) that only decodes each value."""
    import faust  # noqa: PLC0415 - each contender imports its own

    datadir = Path(".local/bench/faust") / uuid.uuid4().hex[:8]
    datadir.mkdir(parents=True)
    app = faust.App(
        f"bench-bare-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        datadir=str(datadir),
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    state: dict[str, Any] = {"seen": 0, "first": 0.0}

    @app.agent(source, concurrency=1)
    async def decode(stream: Any) -> None:
        async for value in stream:
            if not state["seen"]:
                state["first"] = time.perf_counter()
            orjson.loads(value)
            state["seen"] += 1
            if state["seen"] >= count:
                _write(out, state["seen"], time.perf_counter() - state["first"])
                # A benchmark process: its figure is written, nothing to shut down cleanly.
                os._exit(0)

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.spinner = None  # as `marketsignal process`: else the root logger is at DEBUG
    worker.execute_from_commandline()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["aiokafka", "faust"])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--decoder", choices=["json", "orjson"], default="orjson")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.which == "aiokafka":
        asyncio.run(aiokafka_limit(args.bootstrap, args.topic, args.count, args.decoder, args.out))
    else:
        faust_bare(args.bootstrap, args.topic, args.count, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
