"""The only writers of the order reference books (statuses, types, methods …) and allowed transitions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.core.actions import apply_and_save
from lavka.core.actor import Actor
from lavka.orders.models import (
    DeliveryType,
    OrderMethod,
    OrderType,
    PaymentStatus,
    PaymentType,
    ReferenceBook,
    Status,
    StatusGroup,
    StatusTransition,
)

# URL slug → model: the reference books an admin edits on the settings pages.
REFERENCE_BOOKS: dict[str, type[ReferenceBook]] = {
    "status-groups": StatusGroup,
    "statuses": Status,
    "order-types": OrderType,
    "order-methods": OrderMethod,
    "delivery-types": DeliveryType,
    "payment-types": PaymentType,
    "payment-statuses": PaymentStatus,
}
# At most one row of a book is the default for the CRM (and one for the API).
EXCLUSIVE_FLAGS = ("default_for_crm", "default_for_api")


@transaction.atomic
def save_reference(
    model: type[ReferenceBook], instance: ReferenceBook | None, values: dict[str, Any], *, actor: Actor
) -> ReferenceBook:
    """Create or change one reference book row; errors are keyed by field name."""
    row = apply_and_save(instance or model(), values)
    for flag in EXCLUSIVE_FLAGS:
        if getattr(row, flag, False):
            model.objects.exclude(pk=row.pk).filter(**{flag: True}).update(**{flag: False})
    return row


@transaction.atomic
def upsert_reference(
    model: type[ReferenceBook], code: str, values: dict[str, Any], *, actor: Actor
) -> tuple[ReferenceBook, bool]:
    """Change the row with this code, or create it (the API's `reference/<book>/{code}/edit`).

    Returns the row and whether it was created.
    """
    row = model.objects.select_for_update().filter(code=code).first()
    return save_reference(model, row, {**values, "code": code}, actor=actor), row is None


@transaction.atomic
def set_transitions(order_type: OrderType, pairs: Iterable[tuple[int, int]], *, actor: Actor) -> int:
    """Make exactly `pairs` (from status id, to status id) the allowed moves of `order_type`.

    Returns how many transitions changed (added + removed).
    """
    wanted = {(int(a), int(b)) for a, b in pairs if int(a) != int(b)}
    known = set(Status.objects.values_list("id", flat=True))
    if any(a not in known or b not in known for a, b in wanted):
        raise ValidationError({"transitions": _("Unknown status.")})
    existing = {
        (t.from_status_id, t.to_status_id): t.pk
        for t in StatusTransition.objects.filter(order_type=order_type)
    }
    removed = [pk for pair, pk in existing.items() if pair not in wanted]
    added = [
        StatusTransition(order_type=order_type, from_status_id=a, to_status_id=b)
        for a, b in wanted - existing.keys()
    ]
    StatusTransition.objects.filter(pk__in=removed).delete()
    StatusTransition.objects.bulk_create(added)
    return len(removed) + len(added)
