"""API v5: customers (§2.3, §3.4)."""

from __future__ import annotations

from typing import Any

from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.router import api  # noqa: F401


def customer_json(customer: Customer) -> dict[str, Any]:
    """A customer as retailCRM shows it (the full object, also embedded in orders)."""
    return formats.compact(
        {
            "type": "customer",
            "id": customer.pk,
            "externalId": customer.external_id,
            "site": customer.site.code,
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "patronymic": customer.patronymic,
            "email": customer.email,
            "phones": [{"number": p.number} for p in customer.phones.all()],
            "createdAt": formats.dt(customer.created_at),
            "managerId": customer.manager_id,
            "vip": customer.vip,
            "bad": customer.bad,
            "customFields": customer.custom_fields or [],
            "tags": [],
        }
    )
