"""The webhook signature: `X-Lavka-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.

The timestamp is inside the signed text, so a receiver that also checks its age refuses an old request
replayed by someone who captured it. Receivers may copy `verify_signature` (docs/events.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time

PREFIX = "sha256="


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The value of the `X-Lavka-Signature` header."""
    message = f"{timestamp}.".encode() + body
    return PREFIX + hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: str | bytes,
    header: str,
    *,
    max_age_seconds: float | None = 300,
    now: float | None = None,
) -> bool:
    """True when `header` is the signature of `body` sent at `timestamp` (the `X-Lavka-Timestamp` header)
    with `secret`, and the timestamp is no older (nor further ahead) than `max_age_seconds`.

    Pass the raw request body: re-encoding parsed JSON changes the bytes and breaks the signature.
    """
    timestamp = str(timestamp).strip()
    if not (timestamp.isascii() and timestamp.isdigit()) or not header or not header.startswith(PREFIX):
        return False
    if max_age_seconds is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > max_age_seconds:
            return False
    expected = sign(secret, timestamp, _as_bytes(body))
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))
