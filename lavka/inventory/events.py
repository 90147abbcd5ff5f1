from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class StockChanged(DomainEvent):
    """An offer's stock changed in one or more warehouses; `changes` is `[{warehouse, old, new}]`."""

    type = "inventory.stock_changed"
    offer_id: int
    site: str
    changes: list[dict] = field(default_factory=list)
