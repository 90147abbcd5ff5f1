from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


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
