"""The orders list's filters (shared by the list page, the complaints page and the CSV export)."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from lavka.core.forms import user_sites
from lavka.core.ui import UNASSIGNED, day_start, manager_choices, name_q, search_region
from lavka.customers.filtersets import MATCH_LIMIT, email_variants, phone_customer_ids, phone_key
from lavka.customers.models import Customer
from lavka.orders.choices import ComplaintReason
from lavka.orders.models import Order, OrderMethod, Payment, PaymentStatus, Status, StatusGroup

ORDERINGS = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    "-total_summ": ("-total_summ", "-id"),
    "total_summ": ("total_summ", "id"),
    "number": ("number", "id"),
    "status": ("status__ordering", "-created_at", "-id"),
}
SORT_CHOICES = [
    ("-created_at", _("newest first")),
    ("created_at", _("oldest first")),
    ("-total_summ", _("largest total first")),
    ("total_summ", _("smallest total first")),
    ("number", _("number")),
    ("status", _("status")),
]
DATE = forms.DateInput(attrs={"type": "date"})


def search_q(text: str, region: str = "RU") -> Q:
    """Orders matching a number, a phone in any format, an e-mail or a customer's name.

    Customers are looked up first (indexed columns, a bounded list of ids), so the order query can use
    the number, phone, e-mail and customer indexes instead of scanning.
    """
    text = text.strip()[:100]
    if not text:
        return Q()
    q = Q(number__in={text, text.upper()})
    key = phone_key(text, region)
    if key:
        phone = Q(phone=key) if key.startswith("+") else Q(phone__contains=key)
        return q | phone | Q(customer_id__in=phone_customer_ids(key))
    if "@" in text:
        emails = email_variants(text)
        ids = list(Customer.objects.filter(email__in=emails).values_list("id", flat=True)[:MATCH_LIMIT])
        return q | Q(email__in=emails) | Q(customer_id__in=ids)
    return q | name_q(text)


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Search"), method="filter_q", max_length=100)
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), to_field_name="code", queryset=None, empty_label=_("all")
    )
    group = django_filters.ModelChoiceFilter(
        label=_("Status group"),
        field_name="status__group",
        to_field_name="code",
        queryset=StatusGroup.objects.all(),
        empty_label=_("all"),
    )
    status = django_filters.ModelChoiceFilter(
        label=_("Status"),
        to_field_name="code",
        queryset=Status.objects.select_related("group"),
        empty_label=_("all"),
    )
    manager = django_filters.ChoiceFilter(label=_("Manager"), method="filter_manager", empty_label=_("all"))
    date_from = django_filters.DateFilter(label=_("From"), method="filter_date_from", widget=DATE)
    date_to = django_filters.DateFilter(label=_("To"), method="filter_date_to", widget=DATE)
    payment_status = django_filters.ModelChoiceFilter(
        label=_("Payment status"),
        to_field_name="code",
        queryset=PaymentStatus.objects.all(),
        method="filter_payment",
        empty_label=_("all"),
    )
    order_method = django_filters.ModelChoiceFilter(
        label=_("Order method"),
        to_field_name="code",
        queryset=OrderMethod.objects.all(),
        empty_label=_("all"),
    )
    sort = django_filters.ChoiceFilter(
        label=_("Sort"), choices=SORT_CHOICES, method="filter_sort", empty_label=None
    )

    class Meta:
        model = Order
        fields: list[str] = []

    def __init__(
        self, data: Any = None, queryset: QuerySet | None = None, *, request: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(data, queryset, request=request, **kwargs)
        user = request.user
        self.filters["site"].queryset = user_sites(user)
        self.filters["manager"].extra["choices"] = manager_choices(user)

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(search_q(value, search_region(self.request.user)))

    def filter_manager(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == UNASSIGNED:
            return queryset.filter(manager__isnull=True)
        return queryset.filter(manager_id=int(value))

    def filter_date_from(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(created_at__gte=day_start(value))

    def filter_date_to(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        if value >= datetime.date.max:
            return queryset
        return queryset.filter(created_at__lt=day_start(value + datetime.timedelta(days=1)))

    def filter_payment(self, queryset: QuerySet, name: str, value: PaymentStatus) -> QuerySet:
        return queryset.filter(Exists(Payment.objects.filter(order=OuterRef("pk"), status=value)))

    def filter_sort(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.order_by(*ORDERINGS.get(value, ORDERINGS["-created_at"]))


class ComplaintFilter(OrderFilter):
    reason = django_filters.ChoiceFilter(
        label=_("Reason"),
        field_name="complaint_reason",
        choices=ComplaintReason.choices,
        empty_label=_("all"),
    )
