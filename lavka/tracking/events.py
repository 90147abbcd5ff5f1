from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class CartUpdated(DomainEvent):
    """The shop reported a customer's cart (created or replaced)."""

    type = "tracking.cart_updated"
    cart_id: int
    site: str
    customer_id: int
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CartCleared(DomainEvent):
    """The cart was emptied: the customer bought (then `order_id` is set) or removed everything."""

    type = "tracking.cart_cleared"
    cart_id: int
    site: str
    customer_id: int
    order_id: int | None = None
