"""Per-key request budget: N requests per second window, more for telephony (§1.11).

Counted in the shared cache (Redis when configured), so several web processes share one budget.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from lavka.accounts.models import ApiKey


def limit_for(key: ApiKey, telephony: bool) -> int:
    if telephony:
        return settings.LAVKA_API_TELEPHONY_RATE_LIMIT
    return key.rate_limit or settings.LAVKA_API_RATE_LIMIT


def allow(key: ApiKey, telephony: bool = False) -> bool:
    limit = limit_for(key, telephony)
    if limit <= 0:
        return True
    bucket = f"api-rate:{key.pk}:{'t' if telephony else 'm'}:{int(time.time())}"
    if cache.add(bucket, 1, 5):
        return True
    try:
        used = cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, 5)
        return True
    return used <= limit
