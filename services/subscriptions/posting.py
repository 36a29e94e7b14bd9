"""One webhook POST: the destination checked again, the body signed, the answer judged.

Destinations are checked at each attempt (services/subscriptions/destinations.py): literal
addresses here, names by the connector's resolver. Redirects are not followed: a 3xx is
a failed attempt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

import aiohttp

from services.subscriptions.destinations import (
    DestinationError,
    describe,
    literal,
    parse_url,
    refusal,
)
from services.subscriptions.signing import SIGNATURE_HEADER, sign


@dataclass
class Target:
    url: str
    secret: str


async def post(
    session: aiohttp.ClientSession | None,
    target: Target,
    sub_id: str,
    alert_id: str,
    attempt: int,
    body: bytes,
    allow: Sequence[IPv4Network | IPv6Network],
) -> str | None:
    """None on a 2xx answer, else what went wrong (never the URL's credentials)."""
    try:
        _, host, _ = parse_url(target.url)
        ip = literal(host)
        why = None if ip is None else refusal(ip, allow)
        if why:
            raise DestinationError(f"refused destination: {why}")
    except DestinationError as exc:
        return str(exc)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(target.secret, int(time.time()), body),
        "X-Marketsignal-Subscription": sub_id,
        "X-Marketsignal-Alert-Id": alert_id,
        "X-Marketsignal-Attempt": str(attempt),
    }
    assert session is not None, "the worker opens the session before posting"
    try:
        async with session.post(
            target.url, data=body, headers=headers, allow_redirects=False
        ) as resp:
            await resp.read()
            if 200 <= resp.status < 300:
                return None
            if 300 <= resp.status < 400:
                return f"HTTP {resp.status}: redirects are not followed"
            return f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return describe(exc)


def alert_id_of(body: bytes) -> str:
    marker = b'"alert_id":"'
    start = body.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    return body[start : body.find(b'"', start)].decode(errors="replace")
