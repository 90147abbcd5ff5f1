"""Task pages: My tasks, the task card with its form, create, close/reopen, the card panels and the
notices. Every page reads through `Task.objects.visible_to(user)`, so a task outside the user's scope is
a 404; every write goes through `tasks.actions`."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lavka.accounts.models import User
from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors, user_sites
from lavka.core.htmx import render_page
from lavka.core.models import HistoryRecord, Site
from lavka.core.permissions import sees_all_in_sites
from lavka.core.ui import day_start, lookup, param, timeline
from lavka.customers.models import Customer
from lavka.orders.models import Order
from lavka.tasks import actions
from lavka.tasks.forms import CloseForm, TaskForm
from lavka.tasks.models import Notification, Task
from lavka.tasks.panels import panel_context

MY_LIMIT = 300
CLOSED_LIMIT = 50
NOTICES_LIMIT = 20
HISTORY_LIMIT = 200
HISTORY_LABELS = {
    "id": gettext_lazy("Task"),
    "text": gettext_lazy("Title"),
    "commentary": gettext_lazy("Description"),
    "datetime": gettext_lazy("Due"),
    "remind_at": gettext_lazy("Remind at"),
    "performer": gettext_lazy("Performer"),
    "customer": gettext_lazy("Customer"),
    "order": gettext_lazy("Order"),
    "call": gettext_lazy("Call"),
    "phone": gettext_lazy("Phone"),
    "complete": gettext_lazy("Closed"),
    "status": gettext_lazy("Status"),
    "completion_comment": gettext_lazy("Result"),
}


def visible_tasks(request: HttpRequest) -> QuerySet[Task]:
    return Task.objects.visible_to(request.user)


def _task(request: HttpRequest, pk: int) -> Task:
    related = ("site", "performer", "creator", "order", "customer", "call")
    return get_object_or_404(visible_tasks(request).select_related(*related), pk=pk)


# --- My tasks ------------------------------------------------------------------------------------------


@require_GET
def my_tasks(request: HttpRequest) -> HttpResponse:
    """Open tasks: overdue first, then due today, then later (and those without a due time); closed ones
    only when asked. Supervisors and admins may look at everyone's."""
    user = request.user
    may_see_all = sees_all_in_sites(user)
    everyone = may_see_all and request.GET.get("who") == "all"
    show_closed = request.GET.get("closed") == "1"
    tasks = visible_tasks(request).select_related("site", "performer", "order", "customer")
    if not everyone:
        tasks = tasks.filter(performer=user)
    now = timezone.now()
    tomorrow = day_start(timezone.localdate(now) + datetime.timedelta(days=1))
    rows = list(tasks.filter(complete=False).order_by(F("due_at").asc(nulls_last=True), "id")[: MY_LIMIT + 1])
    overdue = [t for t in rows[:MY_LIMIT] if t.due_at is not None and t.due_at < now]
    today = [t for t in rows[:MY_LIMIT] if t.due_at is not None and now <= t.due_at < tomorrow]
    later = [t for t in rows[:MY_LIMIT] if t.due_at is None or t.due_at >= tomorrow]
    closed = []
    if show_closed:
        closed = list(tasks.filter(complete=True).order_by("-completed_at", "-id")[:CLOSED_LIMIT])
    notices = list(
        Notification.objects.filter(user=user, read_at__isnull=True)
        .select_related("task")
        .order_by("-created_at", "-id")[:NOTICES_LIMIT]
    )
    context = {
        "nav": "tasks",
        "sections": [
            ("overdue", _("Overdue"), overdue),
            ("today", _("Due today"), today),
            ("later", _("Later"), later),
        ],
        "open_count": min(len(rows), MY_LIMIT),
        "truncated": len(rows) > MY_LIMIT,
        "limit": MY_LIMIT,
        "closed": closed,
        "show_closed": show_closed,
        "everyone": everyone,
        "may_see_all": may_see_all,
        "notices": notices,
        "now": now,
        "close_form": CloseForm(),
    }
    return render_page(request, "tasks/my_tasks.html", context, partial="tasks/_my_tasks.html")


# --- Create, the card, edit ------------------------------------------------------------------------------


def _subject(request: HttpRequest) -> tuple[Order | None, Customer | None]:
    """The order or customer a new task is about (`?order=` / `?customer=`), if the user may see it."""
    data = request.POST if request.method == "POST" else request.GET
    order_id, customer_id = param(data, "order", 20), param(data, "customer", 20)
    order = customer = None
    if order_id:
        if not (order_id.isascii() and order_id.isdigit()):
            raise Http404
        order = get_object_or_404(
            Order.objects.visible_to(request.user).select_related("site", "customer"), pk=int(order_id)
        )
    elif customer_id:
        if not (customer_id.isascii() and customer_id.isdigit()):
            raise Http404
        customer = get_object_or_404(
            Customer.objects.visible_to(request.user).active().select_related("site"), pk=int(customer_id)
        )
    return order, customer


def _site_for_new(request: HttpRequest, sites: list[Site]) -> Site | None:
    data = request.POST if request.method == "POST" else request.GET
    code = param(data, "site", 64)
    chosen = next((s for s in sites if s.code == code), None)
    return chosen or (sites[0] if sites else None)


def _safe_next(request: HttpRequest) -> str | None:
    target = (request.POST.get("next") or request.GET.get("next") or "").strip()
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _back(request: HttpRequest, task: Task) -> HttpResponse:
    """Where to go after a write: `next`, else the card the task is about, else the task."""
    target = _safe_next(request)
    if target:
        return redirect(target)
    if visible_tasks(request).filter(pk=task.pk).exists():
        return redirect("tasks:detail", pk=task.pk)
    return redirect("tasks:my")  # e.g. given to someone else: out of this user's scope now


@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    order, customer = _subject(request)
    sites: list[Site] = []
    site = order.site if order else customer.site if customer else None
    if site is None:
        sites = list(user_sites(request.user))
        site = _site_for_new(request, sites)
    form = TaskForm(request.POST or None, user=request.user, site=site)
    if request.method == "POST" and form.is_valid():
        data = form.task_data()
        data.order, data.order_set = order, order is not None
        data.customer, data.customer_set = customer, customer is not None
        try:
            task = actions.create_task(data, actor=actor_of(request), site=site)
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            messages.success(request, _("Task created."))
            return _back(request, task)
    context = {
        "nav": "tasks",
        "form": form,
        "order": order,
        "customer": customer,
        "site": site,
        "sites": sites,
        "next": _safe_next(request) or "",
    }
    return render(request, "tasks/form.html", context, status=400 if form.is_bound else 200)


def _history(task: Task) -> list[Any]:
    records = list(
        HistoryRecord.objects.filter(entity="task", entity_id=task.pk)
        .select_related("user")
        .order_by("-id")[:HISTORY_LIMIT]
    )
    user_ids = {
        value
        for r in records
        if r.field == "performer"
        for value in (r.old_value, r.new_value)
        if isinstance(value, int)
    }
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)}
    statuses = {value: str(label) for value, label in Task.Status.choices}
    orders = dict(Order.objects.filter(pk=task.order_id).values_list("pk", "number")) if task.order_id else {}
    customers = {task.customer_id: str(task.customer)} if task.customer_id else {}
    return timeline(
        records,
        labels=HISTORY_LABELS,
        resolvers={
            "performer": lookup(users),
            "status": lookup(statuses),
            "order": lookup(orders),
            "customer": lookup(customers),
            "datetime": _moment,
            "remind_at": _moment,
        },
    )


def _moment(value: Any) -> str:
    """A time the history keeps in ISO 8601, shown in the user's time zone."""
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        return str(value)
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _card(
    request: HttpRequest, task: Task, *, form: TaskForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "nav": "tasks",
        "task": task,
        "form": form or TaskForm(user=request.user, site=task.site, task=task),
        "close_form": CloseForm(),
        "history": _history(task),
        "now": timezone.now(),
        "order_visible": task.order_id is not None
        and Order.objects.visible_to(request.user).filter(pk=task.order_id).exists(),
        "customer_visible": task.customer_id is not None
        and Customer.objects.visible_to(request.user).filter(pk=task.customer_id).exists(),
    }
    return render(request, "tasks/detail.html", context, status=status)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _card(request, _task(request, pk))


@require_POST
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    form = TaskForm(request.POST, user=request.user, site=task.site, task=task)
    if form.is_valid():
        try:
            task = actions.update_task(task, form.task_data(), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            messages.success(request, _("Task saved."))
            return _back(request, task)
    return _card(request, task, form=form, status=400)


# --- Close, reopen --------------------------------------------------------------------------------------


def _after_state_change(request: HttpRequest, task: Task, message: str, ok: bool = True) -> HttpResponse:
    """An htmx post from a card's panel gets the panel again; anything else goes back."""
    panel = param(request.POST, "panel", 40)
    if getattr(request, "htmx", None) and panel:
        return panel_view(request, panel, message=message, ok=ok)
    (messages.success if ok else messages.error)(request, message)
    return _back(request, task)


def _close(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    task = _task(request, pk)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _after_state_change(request, task, " ".join(form.errors.get("comment", [])), ok=False)
    try:
        task = action(task, actor=actor_of(request), comment=form.cleaned_data["comment"])
    except ValidationError as exc:
        return _after_state_change(request, task, " ".join(exc.messages), ok=False)
    return _after_state_change(request, task, done)


@require_POST
def complete(request: HttpRequest, pk: int) -> HttpResponse:
    return _close(request, pk, actions.complete_task, _("Task done."))


@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _close(request, pk, actions.cancel_task, _("Task cancelled."))


@require_POST
def reopen(request: HttpRequest, pk: int) -> HttpResponse:
    task = actions.reopen_task(_task(request, pk), actor=actor_of(request))
    return _after_state_change(request, task, _("Task reopened."))


# --- The card panels ------------------------------------------------------------------------------------


def panel_view(request: HttpRequest, subject: str, *, message: str = "", ok: bool = True) -> HttpResponse:
    kind, _colon, raw_id = subject.partition(":")
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 19):
        raise Http404
    if kind == "order":
        order = get_object_or_404(Order.objects.visible_to(request.user), pk=int(raw_id))
        context = panel_context(request.user, order=order)
    elif kind == "customer":
        customer = get_object_or_404(Customer.objects.visible_to(request.user), pk=int(raw_id))
        context = panel_context(request.user, customer=customer)
    else:
        raise Http404
    context.update(panel_message=message, panel_ok=ok)
    return render(request, "tasks/_panel.html", context)


@require_GET
def order_panel(request: HttpRequest, pk: int) -> HttpResponse:
    return panel_view(request, f"order:{pk}")


@require_GET
def customer_panel(request: HttpRequest, pk: int) -> HttpResponse:
    return panel_view(request, f"customer:{pk}")


# --- Notices --------------------------------------------------------------------------------------------


@require_POST
def notice_read(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Notification, pk=pk, user=request.user)
    actions.mark_read(note, user=request.user)
    return redirect(_safe_next(request) or reverse("tasks:my"))


@require_POST
def notices_read(request: HttpRequest) -> HttpResponse:
    actions.mark_all_read(request.user)
    return redirect(_safe_next(request) or reverse("tasks:my"))
