from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class CostCreated(DomainEvent):
    type = "analytics.cost_created"
    cost_id: int
    cost_item: str
    summ: str
    sites: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CostUpdated(DomainEvent):
    type = "analytics.cost_updated"
    cost_id: int
    cost_item: str
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CostDeleted(DomainEvent):
    type = "analytics.cost_deleted"
    cost_id: int
    cost_item: str
