"""Lifecycle stages and the per-site thresholds they use.

A customer with at least one counted order is in exactly one stage, by the days since the last order
(`d`) and the number of orders (`n`), with the site's thresholds active < sleeping < churned:

    d ≤ active_days:                   new (n = 1) or repeat (n ≥ 2) — a recent buyer
    active_days < d ≤ sleeping_days:   active — still within the shop's usual buying cycle
    sleeping_days < d ≤ churned_days:  sleeping
    d > churned_days:                  churned

A customer without orders has no stage (blank).

Thresholds come from the shop's own purchase intervals: the gaps in days between consecutive counted
orders of the same customer, taken from a sample of at most SAMPLE_CUSTOMERS repeat customers. active =
the median gap, sleeping = the 80th percentile, churned = the 95th (rounded up, at least 7 days and each
at least a day more than the one before). Below MIN_GAPS gaps the current values stay (defaults 90 /
180 / 365). A person may set them (`set_thresholds`); the full refresh then keeps them until
`reset_thresholds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.analytics import dialect
from lavka.analytics.models import Lifecycle, SiteAnalytics
from lavka.core import history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site

MIN_GAPS = 30
SAMPLE_CUSTOMERS = 5000
MIN_ACTIVE_DAYS = 7
FIELDS = ("active_days", "sleeping_days", "churned_days")
ENTITY = "site_analytics"


@dataclass(frozen=True)
class Thresholds:
    active_days: int
    sleeping_days: int
    churned_days: int

    @classmethod
    def of(cls, settings: SiteAnalytics) -> Thresholds:
        return cls(settings.active_days, settings.sleeping_days, settings.churned_days)


def stage(orders: int, days_since_last: float | None, t: Thresholds) -> str:
    """The stage of one customer (see the module docstring)."""
    if not orders or days_since_last is None:
        return ""
    if days_since_last > t.churned_days:
        return Lifecycle.CHURNED
    if days_since_last > t.sleeping_days:
        return Lifecycle.SLEEPING
    if days_since_last > t.active_days:
        return Lifecycle.ACTIVE
    return Lifecycle.NEW if orders == 1 else Lifecycle.REPEAT


def stage_sql(orders: str, days_since_last: str, t: Thresholds) -> str:
    """The same as `stage`, as a CASE expression over two SQL expressions (thresholds are integers)."""
    return (
        f"CASE WHEN COALESCE({orders}, 0) = 0 OR {days_since_last} IS NULL THEN ''"
        f" WHEN {days_since_last} > {int(t.churned_days)} THEN '{Lifecycle.CHURNED}'"
        f" WHEN {days_since_last} > {int(t.sleeping_days)} THEN '{Lifecycle.SLEEPING}'"
        f" WHEN {days_since_last} > {int(t.active_days)} THEN '{Lifecycle.ACTIVE}'"
        f" WHEN {orders} = 1 THEN '{Lifecycle.NEW}' ELSE '{Lifecycle.REPEAT}' END"
    )


def settings_of(site: Site | int) -> SiteAnalytics:
    site_id = site if isinstance(site, int) else site.pk
    settings, _created = SiteAnalytics.objects.get_or_create(site_id=site_id)
    return settings


# --- Deriving the thresholds ---------------------------------------------------------------------------


def thresholds_from_gaps(gaps: Sequence[float] | np.ndarray) -> Thresholds | None:
    """Median / 80th / 95th percentile of the gaps, rounded up and kept in order; None below MIN_GAPS."""
    values = np.asarray(gaps, dtype=np.float64)
    if values.size < MIN_GAPS:
        return None
    p50, p80, p95 = np.percentile(values, [50, 80, 95])
    active = max(MIN_ACTIVE_DAYS, math.ceil(p50))
    sleeping = max(active + 1, math.ceil(p80))
    churned = max(sleeping + 1, math.ceil(p95))
    return Thresholds(active, sleeping, churned)


def purchase_gaps(site_id: int, repeat_customers: str, counted: str) -> np.ndarray:
    """Days between consecutive counted orders of a sample of the site's repeat customers.

    `repeat_customers` is a table (or subquery) with `customer_id` and `orders_count`; `counted` a
    condition on `o` that keeps counted orders. The sample is every k-th customer id, so that it is
    spread over the whole history and the same on every run.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {repeat_customers} rc WHERE rc.orders_count >= 2")
        repeaters = cursor.fetchone()[0]
        if not repeaters:
            return np.zeros(0)
        step = max(1, math.ceil(repeaters / SAMPLE_CUSTOMERS))
        cursor.execute(
            f"SELECT customer_id FROM {repeat_customers} rc WHERE rc.orders_count >= 2"
            f" AND rc.customer_id % {step} = 0"
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return np.zeros(0)
        moment = dialect.epoch_days("o.created_at")
        sample = dialect.in_ids("o.customer_id", ids)
        cursor.execute(
            f"SELECT gap FROM (SELECT {moment} - LAG({moment}) OVER"
            f" (PARTITION BY o.customer_id ORDER BY o.created_at) AS gap"
            f" FROM orders_order o WHERE o.site_id = %s AND {counted} AND {sample}"
            f") t WHERE gap IS NOT NULL",
            [site_id],
        )
        return np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.float64)


def derive(site_id: int, repeat_customers: str, counted: str) -> SiteAnalytics:
    """Store thresholds derived from the purchase gaps, unless a person set them."""
    settings = settings_of(site_id)
    if settings.thresholds_edited:
        return settings
    derived = thresholds_from_gaps(purchase_gaps(site_id, repeat_customers, counted))
    if derived is not None:
        settings.active_days = derived.active_days
        settings.sleeping_days = derived.sleeping_days
        settings.churned_days = derived.churned_days
        settings.save(update_fields=list(FIELDS))
    return settings


def restage_site(site_id: int, t: Thresholds) -> int:
    """Re-derive every stage of the site from its stored metrics (one UPDATE); rows changed."""
    days = f"({dialect.now_days(timezone.now())!r} - {dialect.epoch_days('last_order_at')})"
    expression = stage_sql("orders_count", days, t)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE analytics_customermetrics SET lifecycle = {expression} WHERE site_id = %s", [site_id]
        )
        return cursor.rowcount


# --- Actions --------------------------------------------------------------------------------------------


def _clean_days(name: str, value: Any, errors: dict[str, list[str]]) -> int | None:
    try:
        if isinstance(value, bool):
            raise ValueError
        days = value if isinstance(value, int) else int(str(value).strip())
    except (TypeError, ValueError):
        errors[name] = [_("Enter a whole number of days.")]
        return None
    if not 1 <= days <= 36500:
        errors[name] = [_("Enter a number of days between 1 and 36500.")]
        return None
    return days


@transaction.atomic
def set_thresholds(
    site: Site, active_days: Any, sleeping_days: Any, churned_days: Any, actor: Actor
) -> SiteAnalytics:
    """A person sets the site's lifecycle thresholds: kept by later refreshes, applied to every
    customer now. Errors name the field."""
    errors: dict[str, list[str]] = {}
    active = _clean_days("active_days", active_days, errors)
    sleeping = _clean_days("sleeping_days", sleeping_days, errors)
    churned = _clean_days("churned_days", churned_days, errors)
    if active is not None and sleeping is not None and sleeping <= active:
        errors["sleeping_days"] = [_("Must be more than the active period.")]
    if sleeping is not None and churned is not None and churned <= sleeping and "sleeping_days" not in errors:
        errors["churned_days"] = [_("Must be more than the sleeping period.")]
    if errors:
        raise ValidationError(errors)
    assert active is not None and sleeping is not None and churned is not None
    settings = SiteAnalytics.objects.select_for_update().filter(site=site).first() or settings_of(site)
    before = {name: getattr(settings, name) for name in (*FIELDS, "thresholds_edited")}
    settings.active_days, settings.sleeping_days, settings.churned_days = active, sleeping, churned
    settings.thresholds_edited = True
    settings.save(update_fields=[*FIELDS, "thresholds_edited"])
    history.write(
        [Change(ENTITY, site.pk, name, value, getattr(settings, name)) for name, value in before.items()],
        actor,
    )
    restage_site(site.pk, Thresholds.of(settings))
    return settings


@transaction.atomic
def reset_thresholds(site: Site, actor: Actor) -> SiteAnalytics:
    """Go back to thresholds derived from the shop's purchase intervals, and apply them now."""
    from lavka.analytics.metrics import counted_condition

    settings = SiteAnalytics.objects.select_for_update().filter(site=site).first() or settings_of(site)
    before = {name: getattr(settings, name) for name in (*FIELDS, "thresholds_edited")}
    settings.thresholds_edited = False
    settings.save(update_fields=["thresholds_edited"])
    settings = derive(
        site.pk,
        f"(SELECT customer_id, orders_count FROM analytics_customermetrics WHERE site_id = {int(site.pk)})",
        counted_condition(),
    )
    history.write(
        [Change(ENTITY, site.pk, name, value, getattr(settings, name)) for name, value in before.items()],
        actor,
    )
    restage_site(site.pk, Thresholds.of(settings))
    return settings
