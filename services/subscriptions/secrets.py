"""Webhook secrets derived from one key, so none is stored in Redis.

A subscription's secret is HMAC-SHA256(key, "webhook-secret:" + id), shown once to its
creator. The key is `MARKETSIGNAL_WEBHOOK_KEY` or, unset, the file `webhook_key_file`
(created with 64 random hex digits, mode 0600, on first use): every alerter and
`marketsignal subscribe` of one deployment must share it. Anyone who can read Redis,
a subscriber's ACL user included, finds no secret there and cannot sign a delivery.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from services.runtime.settings import Settings

KEY_BYTES = 32


class WebhookSecrets:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the webhook key needs at least 16 bytes")
        self._key = key

    @classmethod
    def load(cls, settings: Settings) -> WebhookSecrets:
        if settings.webhook_key is not None:
            return cls(settings.webhook_key.get_secret_value().encode())
        return cls(read_or_create_key(settings.webhook_key_file))

    def secret(self, sub_id: str) -> str:
        return hmac.new(self._key, f"webhook-secret:{sub_id}".encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "WebhookSecrets(<key hidden>)"


def read_or_create_key(path: Path) -> bytes:
    """The key in `path`; if there is none yet, a new random one written there (0600)."""
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(KEY_BYTES) + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_text().strip().encode()
    if len(key) < 16:
        raise ValueError(f"{path}: the webhook key needs at least 16 characters")
    return key
