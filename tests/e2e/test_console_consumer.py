"""`signals` is plain JSON that any Kafka client reads: here, Kafka's own console consumer.

The real processor turns a slice of the demo data set into signals; the console consumer of
the Kafka version in use (`deploy/local/kafka.sh run console-consumer`, as docs/kafka.md shows)
reads the topic, and every line it prints must parse as JSON and be the signal the backtest
says, in the same order per subject.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import DEMO, backtest, by_subject, paced_rules
from tests.support.services import ROOT, Service, free_port, run_cli, service_env
from tests.support.stack import SettingsFactory

pytestmark = pytest.mark.e2e

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
# The first 8,000 ticks of the demo without its history: 23 signals, first-seen prices
# counting as records (this test is about the wire format, not about seeding).
TICKS = 8000


def test_the_kafka_console_consumer_reads_signals_as_plain_json(
    settings: SettingsFactory, tmp_path: Path
) -> None:
    s = settings(partitions=3)
    lines = DEMO.read_text(encoding="utf-8").splitlines(keepends=True)
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("".join(lines[: TICKS + 1]), encoding="utf-8")
    rules = paced_rules(tmp_path)
    expected = backtest(ticks, rules, history=None)
    assert len(expected) >= 10

    env = service_env(s, rules)
    processor = Service("processor", ["process", "--web-port", str(free_port())], env, tmp_path)
    try:
        ingest = run_cli("ingest", str(ticks), "--rate", "5000", env=env, timeout_s=300)
        assert ingest.returncode == 0, ingest.stderr
        # Reads until it has as many as the backtest says, or until 90 s pass without one.
        consumer = subprocess.run(
            [
                "bash", str(KAFKA_SH), "run", "console-consumer",
                "--bootstrap-server", s.kafka_bootstrap,
                "--topic", s.signals_topic,
                "--from-beginning",
                "--max-messages", str(len(expected)),
                "--timeout-ms", "90000",
            ],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )  # fmt: skip
    finally:
        processor.stop()
    printed = consumer.stdout.splitlines()
    assert f"Processed a total of {len(expected)} messages" in consumer.stderr, (
        consumer.stderr[-2000:] + processor.log_tail()
    )
    assert len(printed) == len(expected), printed[:5]
    for line in printed:
        assert isinstance(json.loads(line), dict), line  # plain JSON, no framing
    assert by_subject(printed) == by_subject(expected)
