"""Background entry points of analytics: they find ids and call the analytics modules."""

from __future__ import annotations

import time

from lavka.analytics import crosssell
from lavka.core.jobs import enqueue, periodic
from lavka.core.models import Site


@periodic(crosssell.refresh_seconds())
def schedule_product_pairs() -> int:
    """Queue one refresh of the "bought together" pairs per active site. Every worker runs its periodic
    jobs, and does so on start: the key names the refresh window, so the window gets one job per site."""
    window = int(time.time() // crosssell.refresh_seconds())
    site_ids = list(Site.objects.filter(is_active=True).values_list("pk", flat=True))
    for site_id in site_ids:
        enqueue(refresh_product_pairs, site_id, key=f"analytics.product_pairs:{site_id}:{window}")
    return len(site_ids)


def refresh_product_pairs(site_id: int) -> int:
    """Recompute one site's pairs (idempotent: the site's rows are replaced)."""
    site = Site.objects.filter(pk=site_id).first()
    return 0 if site is None else crosssell.refresh_pairs(site)


# Customer metrics: a full refresh per site once a day (the incremental path keeps them current between).
METRICS_MAX_AGE_SECONDS = 24 * 3600


def _metrics_stale(site_id: int, max_age: float) -> bool:
    from django.utils import timezone

    from lavka.analytics.models import SiteAnalytics

    refreshed = SiteAnalytics.objects.filter(site_id=site_id).values_list("refreshed_at", flat=True).first()
    return refreshed is None or (timezone.now() - refreshed).total_seconds() >= max_age


@periodic(3600)
def schedule_metrics_refresh() -> int:
    """Hourly: queue a full metrics refresh for each active site refreshed more than a day ago. The key
    names the site and the day, so every worker may run this and a day gets one job per site."""
    day = int(time.time() // METRICS_MAX_AGE_SECONDS)
    due = [
        site_id
        for site_id in Site.objects.filter(is_active=True).values_list("pk", flat=True)
        if _metrics_stale(site_id, METRICS_MAX_AGE_SECONDS)
    ]
    for site_id in due:
        enqueue(refresh_site_metrics, site_id, key=f"analytics.metrics:{site_id}:{day}")
    return len(due)


def refresh_site_metrics(site_id: int) -> int:
    """The full refresh of one site (metrics, RFM, lifecycle, model fits, scores), unless another run
    refreshed it in the last hours. Returns the customers refreshed (0 when skipped). Jobs run outside
    a transaction, so the refresh also vacuums the metrics table (metrics.refresh_site)."""
    from lavka.analytics import metrics

    site = Site.objects.filter(pk=site_id).first()
    if site is None or not _metrics_stale(site_id, METRICS_MAX_AGE_SECONDS / 2):
        return 0
    return metrics.refresh_site(site).customers
