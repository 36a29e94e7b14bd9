"""The ingest figures: `marketsignal ingest` with and without bundles, and kafka-python's
own producer on the same bytes."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from bench.live.common import BOOTSTRAP, PY, ROOT, env_for, rate_in, ticks_in
from services.ingestor.publish import compression, linger_ms
from services.runtime.settings import Settings


def ingest_producer_settings(*, bundles: bool) -> dict[str, Any]:
    """The producer settings `marketsignal ingest` uses (compression, linger, batch size)."""
    s = Settings()
    return {
        "compression_type": compression(s.ingest_compression),
        "linger_ms": linger_ms(s, bundling=bundles),
        "batch_size": s.ingest_batch_bytes,
    }


def ingest(
    namespace: str,
    rules: Path,
    data: Path,
    logs: Path,
    *,
    bundles: bool = True,
    rate: int | None = None,
) -> dict[str, Any]:
    """`marketsignal ingest` of `data`, with its default tick bundles or one per record,
    at full speed or paced at `rate` ticks/s."""
    env = env_for(namespace, rules)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [PY, "-m", "services.cli", "ingest", str(data), "--metrics-port", "-1"]
    command += [] if bundles else ["--no-bundle"]
    command += [] if rate is None else ["--rate", str(rate)]
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the whole process (every thread, start-up included): what a tick costs.
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    (logs / f"ingest-{namespace}log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed: {proc.stderr[-2000:]}")
    line = [x for x in proc.stderr.splitlines() + proc.stdout.splitlines() if "ingest:" in x][-1]
    return {"rate": rate_in(line), "wall_s": wall, "cpu_s": cpu, "summary": line.strip()}


def raw_producer(topic: str, records: list[Any], **config: Any) -> dict[str, Any]:
    """kafka-python's own producer, acks=all and idempotent, its other settings default
    unless given (e.g. `ingest_producer_settings()`)."""
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, **config
    )
    try:
        producer.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)
        started, cpu = time.perf_counter(), time.process_time()
        for rec in records:
            # A bundle has no key and names its partition: so does this producer.
            partition = rec.partition if rec.key is None else None
            producer.send(topic, key=rec.key, value=rec.value, partition=partition)
        producer.flush()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        producer.close()
    ticks = sum(ticks_in(rec.value) for rec in records)
    return {
        "rate": ticks / seconds,
        "records_per_s": len(records) / seconds,
        "seconds": seconds,
        "cpu_s": cpu,
    }
