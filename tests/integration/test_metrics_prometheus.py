"""A real Prometheus scrapes the real services during a replay.

The test starts its own Prometheus (free port, generated config, storage in tmp_path),
never touching the stack's shared one, plus a processor, an alerter and an ingestor in
the test's namespace, each on free ports. Then:
- every target of `/api/v1/targets` is up (the ingestor while its replay runs);
- the delivered-alerts counter, queried from Prometheus, equals the alerts in Redis;
- every metric name a Grafana panel or an alert rule uses is in some service's /metrics.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_deploy_prometheus import LIVE_SOURCE_PREFIX, used_metric_names
from tests.support.live import Drained
from tests.support.services import ROOT, Service, free_port, service_env
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

DEMO = ROOT / "deploy" / "demo" / "ticks.csv"
RULES = ROOT / "deploy" / "demo" / "rules.toml"
# ~10 s of replay: the ingestor (a batch job) lives long enough to be scraped.
RATE = "5000"


def get(url: str, timeout_s: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def ok(url: str) -> bool:
    return get(url)[0] == 200


class Prometheus:
    def __init__(self, tmp: Path, targets: dict[str, int]) -> None:
        exe = shutil.which("prometheus")
        assert exe, "prometheus not found: `make stack-up` installs Debian's prometheus"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = "".join(
            f"  - job_name: marketsignal-{name}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            for name, port in targets.items()
        )
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ROOT / 'deploy' / 'prometheus' / 'rules.yml'}\n"
            f"scrape_configs:\n{jobs}"
        )
        self.log = (tmp / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.name = "prometheus"
        self.log_path = tmp / "prometheus.log"
        wait_for("prometheus /-/ready", functools.partial(ok, f"{self.url}/-/ready"), 60, [self])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = get(f"{self.url}/api/v1/{path}{query}")
        assert status == 200, body
        return json.loads(body)["data"]

    def targets(self) -> dict[str, str]:
        return {t["labels"]["job"]: t["health"] for t in self.api("targets")["activeTargets"]}

    def scalar(self, promql: str) -> float | None:
        result = self.api("query", query=promql)["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sample_names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_prometheus_scrapes_every_service_and_counts_the_replays_alerts(
    settings: SettingsFactory, tmp_path: Path
) -> None:
    s = settings()
    ports = {"ingestor": free_port(), "processor": free_port(), "alerter": free_port()}
    env = service_env(s, RULES)
    env.update(
        MARKETSIGNAL_INGESTOR_METRICS_PORT=str(ports["ingestor"]),
        MARKETSIGNAL_PROCESSOR_METRICS_PORT=str(ports["processor"]),
        MARKETSIGNAL_ALERTER_METRICS_PORT=str(ports["alerter"]),
    )
    metrics = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    prom = Prometheus(tmp_path, ports)
    services: list[Service] = []
    try:
        processor = Service("processor", ["process", "--web-port", str(free_port())], env, tmp_path)
        alerter = Service("alerter", ["alert"], env, tmp_path)
        services += [processor, alerter]
        for name in ("processor", "alerter"):
            readyz = f"{metrics[name]}/readyz"
            wait_for(f"{name} /readyz", functools.partial(ok, readyz), 150, services)
            assert ok(f"{metrics[name]}/healthz")

        ingestor = Service("ingestor", ["ingest", str(DEMO), "--rate", RATE], env, tmp_path)
        services.append(ingestor)
        scraped: dict[str, str] = {}

        def all_up_while_ingesting() -> bool:
            if "ingestor" not in scraped:
                status, body = get(f"{metrics['ingestor']}/metrics")
                if status == 200:
                    scraped["ingestor"] = body
            targets = prom.targets()
            return len(targets) == 3 and set(targets.values()) == {"up"}

        wait_for("every target up", all_up_while_ingesting, 30, [processor, alerter, ingestor])
        assert ingestor.proc.wait(timeout=120) == 0, ingestor.log_tail()
        # The replay's alerts: what the alerter put in the namespace's Redis stream, once
        # everything the replay caused is committed (not once the stream looks quiet).
        drained = Drained(s)
        try:
            wait_for("the replay drained", drained, 180, [processor, alerter], max_poll_s=0.5)
        finally:
            drained.close()
        client = redis.Redis.from_url(s.redis_url)
        n_alerts = int(client.xlen(s.redis_key("alerts")))
        client.close()
        assert n_alerts > 0
        query = (
            'sum(marketsignal_alerts_delivered_total{job="marketsignal-alerter",channel="stream"})'
        )
        wait_for(
            f"prometheus to report {n_alerts} delivered alerts",
            lambda: prom.scalar(query) == n_alerts,
            30,
            [processor, alerter],
        )
        for name in ("processor", "alerter"):
            status, body = get(f"{metrics[name]}/metrics")
            assert status == 200
            scraped[name] = body
        assert set(scraped) == {"ingestor", "processor", "alerter"}
        exposed = set().union(*(sample_names(text) for text in scraped.values()))
        used = {n for n in used_metric_names() if not n.startswith(LIVE_SOURCE_PREFIX)}
        missing = used - exposed
        assert not missing, f"used by dashboards or rules, exposed by no service: {missing}"
        # faust's own sensor is in the processor's registry too
        assert "faust_messages_received_total" in sample_names(scraped["processor"])
        print(f"\nprometheus: 3 targets up; {n_alerts} alerts delivered, counter = {n_alerts}")
    finally:
        for svc in reversed(services):
            svc.stop()
        prom.stop()
