"""What the segment builder offers for a field's value: sites, managers, tags, categories, products,
order methods, RFM segments; `site_ids` limits them to those sites (None: every site)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.translation import gettext as _

from lavka.analytics.segments.values import MAX_LIST

Choices = list[tuple[str, str]]
ChoiceSource = Callable[[Collection[int] | None], Choices]


_cache: dict[str, tuple[float, Choices]] = {}
_cache_lock = threading.Lock()
CACHE_SECONDS = 60.0


def _cached(key: str, load: Callable[[], Choices]) -> Choices:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    value = load()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def forget_choices() -> None:
    with _cache_lock:
        _cache.clear()


def static_choices(*pairs: tuple[str, Any]) -> Callable[[Collection[int] | None], Choices]:
    return lambda site_ids: [(value, str(label)) for value, label in pairs]


def site_choices(site_ids: Collection[int] | None) -> Choices:
    from lavka.core.models import Site

    sites = Site.objects.order_by("ordering", "code")
    if site_ids is not None:
        sites = sites.filter(pk__in=site_ids)
    return [(code, f"{name} ({code})") for code, name in sites.values_list("code", "name")]


def manager_choices(site_ids: Collection[int] | None) -> Choices:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True).exclude(role="operator")
    if site_ids is not None:
        users = users.filter(Q(sites__in=site_ids) | Q(role="admin")).distinct()
    return [("none", _("— unassigned —"))] + [(str(u.pk), str(u)) for u in users.order_by("username")]


def tag_choices(site_ids: Collection[int] | None) -> Choices:
    from lavka.customers.models import Tag

    return [(name, name) for name in Tag.objects.order_by("name").values_list("name", flat=True)[:MAX_LIST]]


def site_scoped(model_path: str, label: Callable[[Any], str]) -> Callable[[Collection[int] | None], Choices]:
    def choices(site_ids: Collection[int] | None) -> Choices:
        from django.apps import apps

        rows = apps.get_model(model_path).objects.select_related("site").order_by("site__code", "name")
        if site_ids is not None:
            rows = rows.filter(site__in=site_ids)
        return [(str(row.pk), label(row)) for row in rows[:MAX_LIST]]

    return choices


def method_choices(site_ids: Collection[int] | None) -> Choices:
    from lavka.orders.models import OrderMethod

    return list(OrderMethod.objects.order_by("ordering", "code").values_list("code", "name"))


def rfm_choices(site_ids: Collection[int] | None) -> Choices:
    """The named RFM segments present now (the metrics refresh writes them; cached for a minute)."""

    def load() -> Choices:
        from lavka.analytics.models import CustomerMetrics

        names = (
            CustomerMetrics.objects.exclude(rfm_segment="")
            .order_by("rfm_segment")
            .values_list("rfm_segment", flat=True)
        )
        return [(n, n) for n in names.distinct()[:100]]

    return _cached("rfm", load)


def lifecycle_choices(site_ids: Collection[int] | None) -> Choices:
    from lavka.analytics.models import Lifecycle

    return [(value, str(label)) for value, label in Lifecycle.choices]


def channel_purposes() -> list[tuple[str, str, Any]]:
    from lavka.customers.choices import Channel, Purpose

    return [
        (channel, purpose, format_lazy("{} · {}", channel_label, purpose_label))
        for channel, channel_label in Channel.choices
        for purpose, purpose_label in Purpose.choices
    ]
