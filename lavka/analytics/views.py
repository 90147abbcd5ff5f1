"""Manager KPI pages for supervisors and admins: the table, a drill-down per figure, the CSV.

Anyone else gets 404, as do managers the viewer may not see (their existence does not leak).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.analytics import kpi
from lavka.core.permissions import sees_all_in_sites
from lavka.core.ui import csv_response
from lavka.orders.models import Order
from lavka.tasks.models import Task

MAX_DAYS = 366

FIGURE_LABELS = {
    "handled": gettext_lazy("Orders handled"),
    "first_action": gettext_lazy("Time to first action"),
    "completed": gettext_lazy("Completed"),
    "cancelled": gettext_lazy("Cancelled"),
    "tasks_on_time": gettext_lazy("Tasks on time"),
    "tasks_overdue": gettext_lazy("Tasks overdue"),
    "escalations": gettext_lazy("Escalations"),
}


def supervisors_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            not request.user.is_authenticated
            or not request.user.is_active
            or not sees_all_in_sites(request.user)
        ):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def period_from(params: QueryDict) -> tuple[kpi.Period, str]:
    """The period asked for, or the current month with the reason the request was not usable."""
    default = kpi.Period.current_month()
    raw_from, raw_to = params.get("from", "").strip(), params.get("to", "").strip()
    if not raw_from and not raw_to:
        return default, ""
    try:
        first = datetime.date.fromisoformat(raw_from) if raw_from else default.first
        last = datetime.date.fromisoformat(raw_to) if raw_to else default.last
    except ValueError:
        return default, _("Enter dates as YYYY-MM-DD.")
    if last < first:
        return default, _("The end of the period is before its start.")
    if (last - first).days >= MAX_DAYS:
        return default, _("A period is at most %(days)s days.") % {"days": MAX_DAYS}
    return kpi.Period(first, last), ""


def _query(period: kpi.Period) -> str:
    return f"from={period.first.isoformat()}&to={period.last.isoformat()}"


def _duration(value: datetime.timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


@supervisors_only
def kpi_page(request: HttpRequest) -> HttpResponse:
    period, error = period_from(request.GET)
    rows = [
        {
            "kpi": row,
            "median": _duration(row.median_first_action),
            "counts": [(f, row.count(f)) for f in kpi.FIGURES],
        }
        for row in kpi.manager_kpis(request.user, period)
    ]
    context = {
        "nav": "kpi",
        "period": period,
        "error": error,
        "query": _query(period),
        "rows": rows,
        "labels": [FIGURE_LABELS[f] for f in kpi.FIGURES],
    }
    return render(request, "analytics/kpi.html", context)


@supervisors_only
def kpi_detail(request: HttpRequest, user_id: int, figure: str) -> HttpResponse:
    if figure not in kpi.FIGURES:
        raise Http404
    manager = next((m for m in kpi.visible_managers(request.user) if m.pk == user_id), None)
    if manager is None:
        raise Http404
    period, error = period_from(request.GET)
    (row,) = kpi.manager_kpis(request.user, period, [manager])
    context: dict[str, Any] = {
        "nav": "kpi",
        "manager": manager,
        "figure": figure,
        "label": FIGURE_LABELS[figure],
        "period": period,
        "error": error,
        "query": _query(period),
        "count": row.count(figure),
        "median": _duration(row.median_first_action),
    }
    if figure in kpi.ORDER_FIGURES:
        orders = Order.objects.in_bulk(row.order_ids())
        if figure in ("handled", "first_action"):
            assignments = row.assignments if figure == "handled" else row.acted
            context["assignments"] = [(a, orders.get(a.order_id), _duration(_delta(a))) for a in assignments]
        else:
            moves = row.completed_moves if figure == "completed" else row.cancelled_moves
            context["moves"] = [(m, orders.get(m.order_id)) for m in moves]
    else:
        context["tasks"] = list(Task.objects.filter(pk__in=row.task_ids(figure)).order_by("due_at", "id"))
    return render(request, "analytics/kpi_detail.html", context)


def _delta(assignment: kpi.Assignment) -> datetime.timedelta | None:
    seconds = assignment.seconds
    return None if seconds is None else datetime.timedelta(seconds=seconds)


def _ids(values: list[Any]) -> str:
    return " ".join(str(v) for v in values)


@supervisors_only
def kpi_csv(request: HttpRequest) -> HttpResponse:
    period, error = period_from(request.GET)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    rows = kpi.manager_kpis(request.user, period)
    numbers = kpi.order_numbers(rows)
    header = [
        "period_from",
        "period_to",
        "manager_id",
        "manager",
        "orders_handled",
        "orders_handled_numbers",
        "first_actions",
        "median_first_action_seconds",
        "first_action_history_ids",
        "orders_completed",
        "orders_completed_numbers",
        "orders_cancelled",
        "orders_cancelled_numbers",
        "tasks_on_time",
        "tasks_on_time_ids",
        "tasks_overdue",
        "tasks_overdue_ids",
        "escalations",
        "escalations_task_ids",
    ]

    def lines() -> Any:
        for row in rows:
            median = row.median_first_action
            yield [
                period.first.isoformat(),
                period.last.isoformat(),
                row.manager.pk,
                str(row.manager),
                row.count("handled"),
                _ids([numbers.get(i, i) for i in row.handled_order_ids]),
                row.count("first_action"),
                "" if median is None else f"{median.total_seconds():g}",
                _ids([f"{a.record_id}>{a.action_record_id}" for a in row.acted]),
                row.count("completed"),
                _ids([numbers.get(i, i) for i in row.completed_order_ids]),
                row.count("cancelled"),
                _ids([numbers.get(i, i) for i in row.cancelled_order_ids]),
                row.count("tasks_on_time"),
                _ids(row.on_time_task_ids),
                row.count("tasks_overdue"),
                _ids(row.overdue_task_ids),
                row.count("escalations"),
                _ids(row.escalated_task_ids),
            ]

    filename = f"manager-kpi-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return csv_response(filename, header, lines())
