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
    call_id: int | None = None


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
    # Done after its due time (what the KPIs count as "late"); False when it had no due time.
    late: bool = False


@dataclass(frozen=True)
class TaskCancelled(DomainEvent):
    type = "tasks.cancelled"
    task_id: int
    site: str | None
    performer_id: int
    customer_id: int | None
    order_id: int | None


@dataclass(frozen=True)
class TaskReopened(DomainEvent):
    type = "tasks.reopened"
    task_id: int
    site: str | None
    performer_id: int
    old_status: str


@dataclass(frozen=True)
class TaskReminded(DomainEvent):
    type = "tasks.reminded"
    task_id: int
    site: str | None
    performer_id: int
    remind_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class TaskOverdue(DomainEvent):
    type = "tasks.overdue"
    task_id: int
    site: str | None
    performer_id: int
    customer_id: int | None
    order_id: int | None
    due_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class TaskEscalated(DomainEvent):
    type = "tasks.escalated"
    task_id: int
    site: str | None
    performer_id: int
    supervisor_id: int | None  # None: nobody to escalate to (no team supervisor, no site supervisor)
    due_at: str  # ISO 8601, UTC
