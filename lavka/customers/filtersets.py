"""The customers list's filters (shared by the list page, the order form's customer search and the export)."""

from __future__ import annotations

import contextlib
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.utils.translation import gettext_lazy as _

from lavka.analytics import rfm
from lavka.analytics.models import Lifecycle
from lavka.core.forms import YES_NO, user_sites
from lavka.core.phones import phone_search_key
from lavka.core.ui import PHONE_CHARS, UNASSIGNED, manager_choices, name_q, search_region
from lavka.core.validation import clean_email
from lavka.customers.models import CustomerPhone, Tag

# The lifecycle stages in the order a customer goes through them (sorting by the code would be alphabetical).
LIFECYCLE_ORDER = Case(
    *[When(metrics__lifecycle=stage, then=Value(i)) for i, stage in enumerate(Lifecycle.values)],
    default=Value(None),
    output_field=IntegerField(),
)


def _metric(name: str, descending: bool) -> Any:
    """An ordering on a CustomerMetrics column; customers without metrics (or the figure) come last."""
    expression = F(f"metrics__{name}")
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


ORDERINGS: dict[str, tuple[Any, ...]] = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    "name": ("last_name", "first_name", "id"),
    "-total_summ": ("-total_summ", "-id"),
    "-orders_count": ("-orders_count", "-id"),
    "-last_order_at": (F("last_order_at").desc(nulls_last=True), "-id"),
    "-churn_risk": (_metric("churn_risk", True), "-id"),
    "churn_risk": (_metric("churn_risk", False), "id"),
    "-p_alive": (_metric("p_alive", True), "-id"),
    "p_alive": (_metric("p_alive", False), "id"),
    "-predicted_value": (_metric("predicted_value", True), "-id"),
    "predicted_value": (_metric("predicted_value", False), "id"),
    "rfm": (*(_metric(f"{x}_score", True) for x in "rfm"), "-id"),
    "lifecycle": (LIFECYCLE_ORDER.asc(nulls_last=True), "id"),
}
SORT_CHOICES = [
    ("-created_at", _("newest first")),
    ("created_at", _("oldest first")),
    ("name", _("name")),
    ("-total_summ", _("largest revenue first")),
    ("-orders_count", _("most orders first")),
    ("-last_order_at", _("latest order first")),
    ("-churn_risk", _("highest churn risk first")),
    ("churn_risk", _("lowest churn risk first")),
    ("-p_alive", _("most likely active first")),
    ("p_alive", _("least likely active first")),
    ("-predicted_value", _("highest expected value first")),
    ("predicted_value", _("lowest expected value first")),
    ("rfm", _("best RFM scores first")),
    ("lifecycle", _("lifecycle stage")),
]
# How many customers a phone or e-mail search may match before it stops widening an order search.
MATCH_LIMIT = 1000


def phone_customer_ids(key: str) -> list[int]:
    """Customers with this phone: an exact match for a full E.164 number, else one containing these digits."""
    phones = (
        CustomerPhone.objects.filter(number=key)
        if key.startswith("+")
        else CustomerPhone.objects.filter(number__contains=key)
    )
    return list(phones.order_by().values_list("customer_id", flat=True).distinct()[:MATCH_LIMIT])


def email_variants(text: str) -> set[str]:
    """The address as typed and as stored (domain in lower case)."""
    emails = {text}
    with contextlib.suppress(ValidationError):  # a half-typed address is still a search term
        emails.add(clean_email(text))
    return emails


def phone_key(text: str, region: str) -> str | None:
    """The phone a search term stands for (E.164, or digits to look for), or None if it is not a phone."""
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if PHONE_CHARS.match(text) and len(digits) >= 4:
        return phone_search_key(text, region) or digits
    return None


def search_q(text: str, region: str = "RU") -> Q:
    """Customers by phone in any format, e-mail or name (every word must match a name part)."""
    text = text.strip()[:100]
    if not text:
        return Q()
    key = phone_key(text, region)
    if key:
        return Q(pk__in=phone_customer_ids(key))
    if "@" in text:
        return Q(email__in=email_variants(text))
    return name_q(text)


class ShareFilter(django_filters.NumberFilter):
    """A 0…1 figure (churn risk, P(alive)) entered in per cent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=0, max_value=100, **kwargs)

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs if value in (None, "") else super().filter(qs, float(value) / 100)


class AmountFilter(django_filters.NumberFilter):
    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        # The column is a float: compare with a float, not a Decimal.
        return qs if value in (None, "") else super().filter(qs, float(value))


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Search"), method="filter_q", max_length=100)
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), to_field_name="code", queryset=None, empty_label=_("all")
    )
    manager = django_filters.ChoiceFilter(label=_("Manager"), method="filter_manager", empty_label=_("all"))
    tag = django_filters.ModelChoiceFilter(
        label=_("Tag"),
        field_name="tags",
        to_field_name="name",
        queryset=Tag.objects.all(),
        empty_label=_("all"),
    )
    has_orders = django_filters.ChoiceFilter(
        label=_("Has orders"), choices=YES_NO[1:], method="filter_has_orders", empty_label=_("all")
    )
    lifecycle = django_filters.ChoiceFilter(
        label=_("Lifecycle"), field_name="metrics__lifecycle", choices=Lifecycle.choices, empty_label=_("all")
    )
    rfm_segment = django_filters.ChoiceFilter(
        label=_("RFM segment"),
        field_name="metrics__rfm_segment",
        choices=[(segment.code, segment.name) for segment in rfm.SEGMENTS],
        empty_label=_("all"),
    )
    churn_from = ShareFilter(
        label=_("Churn risk from, %"), field_name="metrics__churn_risk", lookup_expr="gte"
    )
    churn_to = ShareFilter(label=_("Churn risk to, %"), field_name="metrics__churn_risk", lookup_expr="lte")
    alive_from = ShareFilter(label=_("P(alive) from, %"), field_name="metrics__p_alive", lookup_expr="gte")
    alive_to = ShareFilter(label=_("P(alive) to, %"), field_name="metrics__p_alive", lookup_expr="lte")
    value_from = AmountFilter(
        label=_("Expected value from"), field_name="metrics__predicted_value", lookup_expr="gte", min_value=0
    )
    value_to = AmountFilter(
        label=_("Expected value to"), field_name="metrics__predicted_value", lookup_expr="lte", min_value=0
    )
    sort = django_filters.ChoiceFilter(
        label=_("Sort"), choices=SORT_CHOICES, method="filter_sort", empty_label=None, widget=forms.Select
    )

    def __init__(
        self, data: Any = None, queryset: QuerySet | None = None, *, request: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(data, queryset, request=request, **kwargs)
        self.filters["site"].queryset = user_sites(request.user)
        self.filters["manager"].extra["choices"] = manager_choices(request.user)

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(search_q(value, search_region(self.request.user)))

    def filter_manager(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == UNASSIGNED:
            return queryset.filter(manager__isnull=True)
        return queryset.filter(manager_id=int(value))

    def filter_has_orders(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(orders_count__gt=0) if value == "yes" else queryset.filter(orders_count=0)

    def filter_sort(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.order_by(*ORDERINGS.get(value, ORDERINGS["-created_at"]))
