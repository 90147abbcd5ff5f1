from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class TaskCreated(DomainEvent):
    type = "tasks.created"
    task_id: int
    site: str | None
    performer_id: int
    customer_id: int | None
    order_id: int | None
    due_at: str | None  # ISO 8601, UTC


@dataclass(frozen=True)
class TaskUpdated(DomainEvent):
    type = "tasks.updated"
    task_id: int
    site: str | None
    performer_id: int
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskCompleted(DomainEvent):
    type = "tasks.completed"
    task_id: int
    site: str | None
    performer_id: int
    customer_id: int | None
    order_id: int | None
