"""Columns shared by every CSV of customers (the customers list, a segment's members)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from lavka.customers.models import Customer


def contact_header() -> list[str]:
    """The columns that say who a customer is, first in every customer CSV (list, segment)."""
    return [
        _("ID"),
        _("Site"),
        _("Last name"),
        _("First name"),
        _("Patronymic"),
        _("Phones"),
        _("E-mail"),
        _("Manager"),
    ]


def contact_cells(customer: Customer) -> tuple[Any, ...]:
    """`contact_header`'s cells; the phones come from a prefetch, site and manager from select_related."""
    return (
        customer.pk,
        customer.site.code,
        customer.last_name,
        customer.first_name,
        customer.patronymic,
        " ".join(p.number for p in customer.phones.all()),
        customer.email,
        customer.manager.username if customer.manager else "",
    )
