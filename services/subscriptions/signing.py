"""Webhook signatures.

Signature: `X-Marketsignal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>." + body, keyed with the subscription's secret>`. A receiver recomputes it and
refuses a `t` older than its tolerance (`verify`), so a captured delivery cannot be
replayed later (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-Marketsignal-Signature"
_SIGNATURE = re.compile(r"^t=([0-9]{1,12}),v1=([0-9a-f]{64})$")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, now: float | None = None, tolerance_s: int = 300
) -> bool:
    """What a receiver does: the signature matches and its timestamp is recent."""
    match = _SIGNATURE.match(header)
    if match is None:
        return False
    timestamp = int(match.group(1))
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)
