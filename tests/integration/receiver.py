"""A local HTTP receiver for webhook tests: records each request, answers as planned."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

from aiohttp import web

from services.runtime.settings import Settings

# The allow-list that lets webhooks reach this receiver (tests only: loopback is refused).
LOCAL_RECEIVER = (IPv4Network("127.0.0.1/32"),)


def webhook_settings(settings: Callable[..., Settings], **more: Any) -> Settings:
    """Settings whose webhooks may reach this receiver, with quick retries (2 attempts)."""
    values: dict[str, Any] = {
        "webhook_backoff_s": 0.05,
        "webhook_max_attempts": 2,
        "webhook_allow_networks": LOCAL_RECEIVER,
        **more,
    }
    return settings(**values)


class Receiver:
    """A local HTTP server: records each POST; `plan` answers (status or 'hang') in turn."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, str], bytes]] = []
        self.plans: dict[str, list[int | str]] = {}
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def _run(self, ready: threading.Event) -> None:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            path = request.match_info["path"]
            plan = self.plans.get(path, [])
            answer = plan.pop(0) if plan else 200
            self.received.append((time.monotonic(), dict(request.headers), body))
            self.received[-1][1]["path"] = path
            if answer == "hang":
                await asyncio.sleep(3600)
            if isinstance(answer, str) and answer.startswith("redirect:"):
                location = answer.removeprefix("redirect:")
                return web.Response(status=302, headers={"Location": location})
            return web.Response(status=int(answer))

        async def main() -> None:
            app = web.Application()
            app.router.add_post("/{path}", handle)
            app.router.add_get("/{path}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            await asyncio.Event().wait()

        with contextlib.suppress(RuntimeError):  # the fixture stops the loop at teardown
            self.loop.run_until_complete(main())

    def bodies(self, path: str) -> list[bytes]:
        return [b for _t, h, b in self.received if h["path"] == path]
