"""The bonus panel of the customer card (`{% loyalty_panel customer %}`)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from lavka.customers.models import Customer
from lavka.loyalty import queries
from lavka.loyalty.forms import EnrolForm, OperationForm
from lavka.loyalty.models import BonusOperation

register = template.Library()
LAST_OPERATIONS = 10


@register.inclusion_tag("loyalty/_panel.html", takes_context=True)
def loyalty_panel(context: Any, customer: Customer) -> dict[str, Any]:
    """Nothing when the customer's site has no programme; else the account, or a form to enrol."""
    program = queries.program_for_site(customer.site_id)
    out: dict[str, Any] = {"customer": customer, "program": program, "csrf_token": context.get("csrf_token")}
    if program is None or customer.merged_into_id:
        return {**out, "program": None}
    account = queries.account_for_customer(customer)
    if account is None:
        phone = customer.main_phone
        return {**out, "enrol_form": EnrolForm(initial={"phone_number": phone, "activate": True})}
    spendable, waiting = queries.balance(account)
    following = queries.next_level(program, account.level)
    operations = (
        BonusOperation.objects.filter(account=account).select_related("order").order_by("-created_at", "-id")
    )
    return {
        **out,
        "account": account,
        "spendable": spendable,
        "waiting": waiting,
        "next_level": following,
        "to_next_level": following.threshold - account.orders_sum if following else None,
        "operations": list(operations[:LAST_OPERATIONS]),
        "today": timezone.localdate(),
        "operation_form": OperationForm(initial={"kind": OperationForm.CREDIT}),
    }
