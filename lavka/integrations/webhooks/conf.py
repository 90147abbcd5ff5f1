"""Webhook settings, each read with a default so that none has to be declared in `lavka/settings.py`."""

from __future__ import annotations

from django.conf import settings


def _number(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def max_failures() -> int:
    """Consecutive failed attempts after which a new subscription is disabled (editable per subscription)."""
    return int(_number("LAVKA_WEBHOOK_MAX_FAILURES", 20))


def max_attempts() -> int:
    """Failed attempts after which one delivery is given up (it can still be replayed by hand)."""
    return int(_number("LAVKA_WEBHOOK_MAX_ATTEMPTS", 30))


def timeout() -> float:
    return _number("LAVKA_WEBHOOK_TIMEOUT_SECONDS", 10)


def backoff_base() -> float:
    return _number("LAVKA_WEBHOOK_BACKOFF_BASE_SECONDS", 10)


def backoff_cap() -> float:
    return _number("LAVKA_WEBHOOK_BACKOFF_CAP_SECONDS", 3600)


def lease_seconds() -> float:
    """How long a claimed delivery is reserved for its sender; must be longer than the timeout."""
    return max(_number("LAVKA_WEBHOOK_LEASE_SECONDS", 60), timeout() + 1)


def poll_seconds() -> float:
    """How often the worker looks for deliveries due for a retry."""
    return _number("LAVKA_WEBHOOK_POLL_SECONDS", 2)


def batch() -> int:
    """Deliveries one sender run sends at most, so a slow receiver does not hold the worker for long."""
    return int(_number("LAVKA_WEBHOOK_BATCH", 20))
