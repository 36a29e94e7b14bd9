"""Each service's small HTTP server: `/metrics`, `/healthz` and `/readyz`.

One server per process, on its own thread, so it answers whatever the service's main
loop is doing (a blocking kafka-python poll, Faust's event loop, a batch replay). The
registry is created by the service's `run` and passed in: there is no global registry,
so two services in one test process never share or clash on metric names.

- `/metrics`: the registry in the Prometheus text format; `?name[]=...` (repeatable) only
  the samples of those names, as prometheus_client's own handler answers (a poller of one
  counter, such as the benchmarks, then costs the service little).
- `/healthz`: 200 while the process serves HTTP at all (liveness: restart me if not).
- `/readyz`: 200 when the readiness callback says the service is connected and able to
  work (for the processor: table recovery finished), else 503 with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

# The services' log lines, with their time (as faust's are): an outage reads from the logs.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("marketsignal.observability")

# (ready, reason): the reason is shown on /readyz either way.
Readiness = Callable[[], tuple[bool, str]]


def always_ready() -> tuple[bool, str]:
    return True, "ok"


class ReadyFlag:
    """A readiness state a service's loop sets and the HTTP thread reads."""

    def __init__(self, reason: str = "starting") -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._reason = reason

    def set(self, ready: bool, reason: str) -> None:
        with self._lock:
            self._ready, self._reason = ready, reason

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason


def all_of(*checks: Readiness) -> Readiness:
    """Ready when every check is; else the first one's reason that is not."""

    def ready() -> tuple[bool, str]:
        reasons = []
        for check in checks:
            ok, reason = check()
            if not ok:
                return ok, reason
            reasons.append(reason)
        return True, "; ".join(reasons)

    return ready


def _handler(registry: CollectorRegistry, ready: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                names = parse_qs(query).get("name[]")
                chosen = registry.restricted_registry(names) if names else registry
                self._send(200, encoder(chosen), content_type)
            elif path == "/healthz":
                self._send(200, b"alive\n")
            elif path == "/readyz":
                try:
                    ok, reason = ready()
                except Exception as exc:  # a failing probe means "not ready", never a 500
                    ok, reason = False, f"readiness check failed: {exc}"
                self._send(200 if ok else 503, f"{reason}\n".encode())
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape is noise

    return Handler


class ObservabilityServer:
    """`start()` binds (port 0: any free port, see `.port`) and serves on a daemon thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready: Readiness = always_ready,
    ) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self.ready = ready
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ObservabilityServer:
        """Raises OSError if the port is taken."""
        server = ThreadingHTTPServer(
            (self.host, self.requested_port), _handler(self.registry, self.ready)
        )
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="observability", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def serve(
    name: str,
    registry: CollectorRegistry,
    host: str,
    port: int,
    ready: Readiness = always_ready,
) -> ObservabilityServer | None:
    """Start the server; a taken port is logged, not fatal (the scrape then shows it down)."""
    try:
        server = ObservabilityServer(registry, host=host, port=port, ready=ready).start()
    except OSError as exc:
        log.error("%s: metrics server on %s:%s not started: %s", name, host, port, exc)
        return None
    log.info("%s: /metrics, /healthz, /readyz on %s", name, server.url)
    return server
