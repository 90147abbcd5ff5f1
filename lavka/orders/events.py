from dataclasses import dataclass, field
from typing import Any

from lavka.core.events import DomainEvent

# Fields of `orders.updated` (history names) that nothing derived from a customer's orders reads: the
# customer's figures, metrics and order facts. Contact details, comments, the delivery slot, address and
# tracking, the order's type and method, custom fields, line comments and payments.
PASSIVE_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "patronymic",
        "phone",
        "additional_phone",
        "email",
        "external_id",
        "customer_comment",
        "manager_comment",
        "delivery_date",
        "delivery_time",
        "delivery_address",
        "delivery_external_id",
        "track_number",
        "delivery_status",
        "order_type",
        "order_method",
        "delivery_type",
        "order_product.comment",
        "payments",
    }
)
PASSIVE_PREFIXES = ("delivery_address.", "custom_", "payments.")


def moves_order_figures(event: Any) -> bool:
    """For receivers of order events (`receiver(applies=…)`): whether the event may change what is
    derived from orders (totals, lines, dates, the customer…). Only an `orders.updated` whose fields are
    all passive does not; one that names no fields may."""
    if event.type != "orders.updated":
        return True
    fields = event.payload.get("fields") or []
    return not fields or not all(
        name in PASSIVE_FIELDS or str(name).startswith(PASSIVE_PREFIXES) for name in fields
    )


@dataclass(frozen=True)
class OrderCreated(DomainEvent):
    type = "orders.created"
    order_id: int
    site: str
    customer_id: int
    status: str
    manager_id: int | None


@dataclass(frozen=True)
class OrderUpdated(DomainEvent):
    type = "orders.updated"
    order_id: int
    site: str
    customer_id: int
    fields: list[str] = field(default_factory=list)
    # The order's own fields that changed, as history has them: {field: [old, new]} (rules read it).
    changes: dict[str, list] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStatusChanged(DomainEvent):
    type = "orders.status_changed"
    order_id: int
    site: str
    customer_id: int
    old_status: str
    new_status: str
    new_group: str


@dataclass(frozen=True)
class OrderManagerChanged(DomainEvent):
    type = "orders.manager_changed"
    order_id: int
    site: str
    customer_id: int
    old_manager_id: int | None
    new_manager_id: int | None


@dataclass(frozen=True)
class OrderPaymentAdded(DomainEvent):
    type = "orders.payment_added"
    order_id: int
    site: str
    customer_id: int
    payment_id: int
    amount: str
    status: str


@dataclass(frozen=True)
class OrderFullyPaid(DomainEvent):
    """The paid payments reached the order's total (once per time it happens)."""

    type = "orders.fully_paid"
    order_id: int
    site: str
    customer_id: int
    total_summ: str
    prepay_sum: str


@dataclass(frozen=True)
class OrdersMerged(DomainEvent):
    type = "orders.merged"
    order_id: int  # the order that received the other's lines
    site: str
    customer_id: int
    merged_order_id: int
