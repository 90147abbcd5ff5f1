"""Analytics panels of the order and customer cards, loaded into the card with htmx.

Each panel reads its order or customer through the same `visible_to(user)` scope as the card itself, so a
user who may not open the card gets 404 for its panels too (existence does not leak).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from lavka.analytics import crosssell, rfm
from lavka.analytics.models import CustomerMetrics, Segment
from lavka.customers.models import Customer
from lavka.orders.models import Order

log = logging.getLogger(__name__)
SUGGESTIONS = 5
MAX_SEGMENTS = 200  # segments checked for membership on one card


@require_GET
def order_pairs(request: HttpRequest, order_pk: int) -> HttpResponse:
    """The "often bought together" panel: products paired with the order's items that it does not hold yet."""
    order = get_object_or_404(Order.objects.visible_to(request.user).select_related("site"), pk=order_pk)
    context = {"order": order, "suggestions": crosssell.suggestions_for_order(order, SUGGESTIONS)}
    return render(request, "analytics/panels/order_pairs.html", context)


@require_GET
def customer_panel(request: HttpRequest, customer_pk: int) -> HttpResponse:
    """Segment, RFM, lifecycle, model scores with the churn explanation, and the likely next purchase."""
    customer = get_object_or_404(
        Customer.objects.visible_to(request.user).select_related("site"), pk=customer_pk
    )
    metrics = CustomerMetrics.objects.filter(customer=customer).first()
    context: dict[str, Any] = {
        "customer": customer,
        "metrics": metrics,
        "rfm_label": rfm_label(metrics.rfm_segment) if metrics else "",
        "scored": metrics is not None and metrics.r_score is not None,
        "modelled": metrics is not None and metrics.p_alive is not None,
        "segments": segments_of(customer),
        "likely_next": crosssell.likely_next(customer, SUGGESTIONS),
    }
    return render(request, "analytics/panels/customer.html", context)


def rfm_label(code: str) -> str:
    """The name of an RFM segment code ("at_risk" → "At risk"); an unknown code is shown as it is."""
    segment = rfm.BY_CODE.get(code)
    return str(segment.name) if segment else code


def _memberships() -> Callable[[int, list[Segment]], list[str]] | None:
    """The segments module's membership test, if that module is installed (it is optional here):
    `memberships(customer_id, segments)` gives the codes of those the customer is in."""
    try:
        segments = importlib.import_module("lavka.analytics.segments")
    except ImportError:
        return None
    memberships = getattr(segments, "memberships", None)
    if callable(memberships):
        return memberships
    contains = getattr(segments, "contains", None)
    if callable(contains):
        return lambda customer_id, candidates: [s.code for s in candidates if contains(s, customer_id)]
    return None


def segments_of(customer: Customer) -> list[Segment]:
    """The saved segments (of the customer's site or of every site) the customer belongs to."""
    memberships = _memberships()
    if memberships is None:
        return []
    site = Q(site=customer.site_id) | Q(site__isnull=True)
    candidates = list(Segment.objects.filter(site).order_by("name", "id")[:MAX_SEGMENTS])
    try:
        codes = set(memberships(customer.pk, candidates))
    except Exception:  # the card must not go down with a segment it cannot evaluate
        log.exception("segment membership of customer %s failed", customer.pk)
        return []
    return [segment for segment in candidates if segment.code in codes]
