"""Manager KPIs (docs/metrics.md, "Manager KPIs"): pure reads over history, orders and tasks.

Shops tie pay to these figures, so every figure keeps the ids of the records it counts: the page
links each number to a drill-down listing exactly those records, and the CSV lists them alongside.
The whole computation is a fixed number of queries, however many managers there are: per-record
look-ups (first action, responsible manager) are correlated subqueries on the history index.
"""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BigIntegerField, CharField, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from lavka.accounts.models import User
from lavka.core.models import HistoryRecord
from lavka.core.permissions import Role, is_admin
from lavka.orders.choices import Group
from lavka.orders.models import Order, Status
from lavka.tasks.models import Task

ORDER = "order"

# The figures a drill-down can show, in page order.
FIGURES = (
    "handled",
    "first_action",
    "completed",
    "cancelled",
    "tasks_on_time",
    "tasks_overdue",
    "escalations",
)
ORDER_FIGURES = frozenset({"handled", "first_action", "completed", "cancelled"})


@dataclass(frozen=True)
class Period:
    """Whole days `first`..`last` in the installation's time zone; `start`/`end` is the half-open UTC span."""

    first: datetime.date
    last: datetime.date

    @property
    def start(self) -> datetime.datetime:
        return _midnight(self.first)

    @property
    def end(self) -> datetime.datetime:
        return _midnight(self.last + datetime.timedelta(days=1))

    @classmethod
    def current_month(cls, today: datetime.date | None = None) -> Period:
        today = today or timezone.localdate(timezone.now(), timezone.get_default_timezone())
        first = today.replace(day=1)
        next_month = (first + datetime.timedelta(days=32)).replace(day=1)
        return cls(first, next_month - datetime.timedelta(days=1))


def _midnight(day: datetime.date) -> datetime.datetime:
    # The installation's zone, not the viewer's: two people must see the same figures for a period.
    return timezone.make_aware(
        datetime.datetime.combine(day, datetime.time.min), timezone.get_default_timezone()
    )


@dataclass(frozen=True)
class Assignment:
    """One "manager" history record naming the manager, and their first later action on the order."""

    order_id: int
    record_id: int
    assigned_at: datetime.datetime
    action_record_id: int | None
    acted_at: datetime.datetime | None

    @property
    def seconds(self) -> float | None:
        if self.acted_at is None:
            return None
        return (self.acted_at - self.assigned_at).total_seconds()


@dataclass(frozen=True)
class StatusMove:
    """One "status" history record moving an order into the complete or cancel group."""

    order_id: int
    record_id: int
    at: datetime.datetime
    old: str | None
    new: str


@dataclass
class ManagerKpi:
    manager: User
    assignments: list[Assignment] = field(default_factory=list)
    completed_moves: list[StatusMove] = field(default_factory=list)
    cancelled_moves: list[StatusMove] = field(default_factory=list)
    on_time_task_ids: list[int] = field(default_factory=list)
    overdue_task_ids: list[int] = field(default_factory=list)
    escalated_task_ids: list[int] = field(default_factory=list)

    @property
    def handled_order_ids(self) -> list[int]:
        return _unique(a.order_id for a in self.assignments)

    @property
    def completed_order_ids(self) -> list[int]:
        return _unique(m.order_id for m in self.completed_moves)

    @property
    def cancelled_order_ids(self) -> list[int]:
        return _unique(m.order_id for m in self.cancelled_moves)

    @property
    def acted(self) -> list[Assignment]:
        return [a for a in self.assignments if a.acted_at is not None]

    @property
    def median_first_action(self) -> datetime.timedelta | None:
        seconds = [a.seconds for a in self.acted]
        return datetime.timedelta(seconds=statistics.median(seconds)) if seconds else None

    def count(self, figure: str) -> int:
        """The number shown for `figure` (for first_action: the assignments the median is taken over)."""
        return {
            "handled": len(self.handled_order_ids),
            "first_action": len(self.acted),
            "completed": len(self.completed_order_ids),
            "cancelled": len(self.cancelled_order_ids),
            "tasks_on_time": len(self.on_time_task_ids),
            "tasks_overdue": len(self.overdue_task_ids),
            "escalations": len(self.escalated_task_ids),
        }[figure]

    def task_ids(self, figure: str) -> list[int]:
        return {
            "tasks_on_time": self.on_time_task_ids,
            "tasks_overdue": self.overdue_task_ids,
            "escalations": self.escalated_task_ids,
        }[figure]

    def order_ids(self) -> set[int]:
        return {a.order_id for a in self.assignments} | {
            m.order_id for m in self.completed_moves + self.cancelled_moves
        }


def _unique(ids: Any) -> list[int]:
    return sorted(set(ids))


def visible_managers(viewer: Any) -> list[User]:
    """Managers whose figures `viewer` may read: admins all; supervisors those of their sites and of
    the teams they lead; anyone else none."""
    if not viewer or not viewer.is_authenticated or not viewer.is_active:
        return []
    managers = User.objects.filter(role=Role.MANAGER)
    if is_admin(viewer):
        return list(managers.order_by("last_name", "first_name", "username", "id"))
    if viewer.role != Role.SUPERVISOR:
        return []
    scope = Q(sites__in=viewer.site_ids) | Q(team__supervisor=viewer.pk)
    ids = managers.filter(scope).values("pk")
    return list(User.objects.filter(pk__in=ids).order_by("last_name", "first_name", "username", "id"))


def _order_scope(viewer: Any) -> Any:
    """Orders whose records a viewer's figures count: admins all, supervisors their sites' orders."""
    return None if is_admin(viewer) else Order.objects.filter(site__in=viewer.site_ids).values("pk")


def _manager_id(json_field: str = "new_value") -> Cast:
    return Cast(KeyTextTransform("id", json_field), BigIntegerField())


def manager_kpis(viewer: Any, period: Period, managers: list[User] | None = None) -> list[ManagerKpi]:
    """The figures of each manager `viewer` may see (or of `managers`, already checked by the caller)."""
    if managers is None:
        managers = visible_managers(viewer)
    rows = {m.pk: ManagerKpi(m) for m in managers}
    if not rows:
        return []
    ids = list(rows)
    start, end = period.start, period.end
    orders = _order_scope(viewer)
    history = HistoryRecord.objects.filter(entity=ORDER)
    if orders is not None:
        history = history.filter(entity_id__in=orders)

    # Orders handled and time to first action. A record written with the order itself (created=True)
    # is not an action: creating an order with yourself as manager would otherwise score zero.
    first_action = HistoryRecord.objects.filter(
        entity=ORDER,
        entity_id=OuterRef("entity_id"),
        user_id=OuterRef("assigned_to"),
        id__gt=OuterRef("id"),
        created=False,
    ).order_by("id")
    assignments = (
        history.filter(field="manager", created_at__gte=start, created_at__lt=end)
        .annotate(assigned_to=_manager_id())
        .filter(assigned_to__in=ids)
        .annotate(
            action_id=Subquery(first_action.values("id")[:1]),
            acted_at=Subquery(first_action.values("created_at")[:1]),
        )
        .order_by("id")
        .values_list("assigned_to", "entity_id", "id", "created_at", "action_id", "acted_at")
    )
    for manager_id, order_id, record_id, at, action_id, acted_at in assignments:
        rows[manager_id].assignments.append(Assignment(order_id, record_id, at, action_id, acted_at))

    # Orders completed / cancelled: status records moving into the group, credited to the manager the
    # order had at that moment (its last "manager" record before the status record).
    group_of = dict(Status.objects.values_list("code", "group__code"))
    closing = [code for code, group in group_of.items() if group in Group.CLOSED]
    responsible = (
        HistoryRecord.objects.filter(
            entity=ORDER, entity_id=OuterRef("entity_id"), field="manager", id__lt=OuterRef("id")
        )
        .order_by("-id")
        .annotate(manager_id=_manager_id())
        .values("manager_id")[:1]
    )
    moves = (
        history.filter(field="status", created=False, created_at__gte=start, created_at__lt=end)
        .annotate(
            new_code=Cast(KeyTextTransform("code", "new_value"), CharField()),
            old_code=Cast(KeyTextTransform("code", "old_value"), CharField()),
        )
        .filter(new_code__in=closing)
        .annotate(responsible=Subquery(responsible, output_field=BigIntegerField()))
        .filter(responsible__in=ids)
        .order_by("id")
        .values_list("responsible", "entity_id", "id", "created_at", "old_code", "new_code")
    )
    for manager_id, order_id, record_id, at, old, new in moves:
        group = group_of.get(new)
        if old is not None and group_of.get(old) == group:
            continue  # a move inside the group is not a move into it
        target = (
            rows[manager_id].completed_moves if group == Group.COMPLETE else rows[manager_id].cancelled_moves
        )
        target.append(StatusMove(order_id, record_id, at, old, new))

    # Tasks: one query for every task that can count, sorted out here.
    now = timezone.now()
    tasks = (
        Task.objects.visible_to(viewer)
        .filter(performer__in=ids)
        .filter(
            Q(completed_at__gte=start, completed_at__lt=end)
            | Q(due_at__gte=start, due_at__lt=end)
            | Q(escalated_at__gte=start, escalated_at__lt=end)
        )
    )
    for task_id, performer_id, status, due_at, completed_at, escalated_at in tasks.order_by("id").values_list(
        "id", "performer_id", "status", "due_at", "completed_at", "escalated_at"
    ):
        row = rows[performer_id]
        if (
            _within(completed_at, start, end)
            and status == Task.Status.DONE
            and due_at
            and completed_at <= due_at
        ):
            row.on_time_task_ids.append(task_id)
        # Overdue once its due time has passed without the task being closed by then.
        if _within(due_at, start, min(end, now)) and (completed_at is None or completed_at > due_at):
            row.overdue_task_ids.append(task_id)
        if _within(escalated_at, start, end):
            row.escalated_task_ids.append(task_id)
    return list(rows.values())


def _within(moment: datetime.datetime | None, start: datetime.datetime, end: datetime.datetime) -> bool:
    return moment is not None and start <= moment < end


def order_numbers(kpis: list[ManagerKpi]) -> dict[int, str]:
    """Numbers of every order the figures count, in one query (for the CSV and the drill-down)."""
    ids: set[int] = set()
    for kpi in kpis:
        ids |= kpi.order_ids()
    return dict(Order.objects.filter(pk__in=ids).values_list("pk", "number")) if ids else {}
