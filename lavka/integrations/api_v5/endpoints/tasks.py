"""API v5: tasks (§2.6), and the reference lookups the other endpoint groups share."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from lavka.accounts.models import User
from lavka.core.models import HistoryRecord, Site
from lavka.customers.filtersets import search_q
from lavka.customers.models import Customer
from lavka.integrations.api_v5 import formats, history
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import ENTITY_ERROR, AccessDenied, ApiError, InvalidParameters, NotFound
from lavka.integrations.api_v5.request import ApiRequest, pagination
from lavka.integrations.api_v5.router import api
from lavka.orders.models import Order
from lavka.tasks.actions import TaskData, create_task, update_task
from lavka.tasks.models import Task

LIST_QUERY = ("filter", "limit", "page")
# Action field → the task's field in the API, for error keys.
FIELD_NAMES = {"performer": "performerId", "due_at": "datetime"}


# --- shared lookups ----------------------------------------------------------------------------------


def invalid(field: str, message: str = "This value is not valid.") -> ApiError:
    return ApiError(ENTITY_ERROR, 400, {field: message})


def scalar(value: Any, field: str) -> str:
    """An entity field that must be a plain value (a nested object there is a client error)."""
    if isinstance(value, dict | list):
        raise invalid(field)
    text = "" if value is None else str(value)
    if "\x00" in text:  # PostgreSQL cannot even compare such a string
        raise invalid(field)
    return text


def int_value(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise invalid(field)
    try:
        number = int(scalar(value, field).strip())
    except ValueError:
        raise invalid(field) from None
    if not 0 < number < 2**63:
        raise invalid(field)
    return number


def checked_external_id(value: Any, field: str) -> str:
    scalar(value, field)
    return formats.external_id(value) or ""


def plain_id(value: str) -> int | None:
    """A database id written in ASCII digits, or None."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def path_id(value: str) -> int:
    """A numeric id from the path; anything else names no entity."""
    pk = plain_id(value)
    if pk is None:
        raise NotFound()
    return pk


def filter_text(flt: dict[str, Any], name: str) -> str:
    value = flt.get(name)
    if isinstance(value, dict | list) or "\x00" in str(value):
        raise InvalidParameters(name)
    return "" if value is None else str(value).strip()


def filter_ints(flt: dict[str, Any], name: str) -> list[int]:
    try:
        return p.int_list(flt.get(name), name)
    except p.ParameterError:
        raise InvalidParameters(name) from None


def filter_strings(flt: dict[str, Any], name: str) -> list[str]:
    try:
        values = p.string_list(flt.get(name), name)
    except p.ParameterError:
        raise InvalidParameters(name) from None
    if any("\x00" in v for v in values):
        raise InvalidParameters(name)
    return values


def filter_bool(flt: dict[str, Any], name: str) -> bool | None:
    value = flt.get(name)
    if value in (None, ""):
        return None
    try:
        return p.boolean(value, name)
    except p.ParameterError:
        raise InvalidParameters(name) from None


def datetime_range(qs: QuerySet, flt: dict[str, Any], field: str, lower: str, upper: str) -> QuerySet:
    """`filter[lower]`/`filter[upper]` on a datetime field; a bare upper date includes that whole day."""
    error = "Errors in the input parameters"
    start = formats.parse_datetime(filter_text(flt, lower) or None, f"children[{lower}]", error=error)
    end_text = filter_text(flt, upper)
    end = formats.parse_datetime(end_text or None, f"children[{upper}]", error=error)
    if start:
        qs = qs.filter(**{f"{field}__gte": start})
    if end:
        if len(end_text) == 10:
            qs = qs.filter(**{f"{field}__lt": end + datetime.timedelta(days=1)})
        else:
            qs = qs.filter(**{f"{field}__lte": end})
    return qs


def reference_site(req: ApiRequest, ref: dict[str, Any], field: str) -> Site:
    """The site an externalId or number is read in: `ref.site`, else the request's `site`."""
    if ref.get("site") not in (None, ""):
        return req.site_by_code(scalar(ref["site"], f"{field}.site"), f"{field}.site")
    site = req.site(required=True)
    assert site is not None  # required=True raises instead
    return site


def customer_ref(req: ApiRequest, ref: Any, field: str = "customer") -> Customer:
    """`{id}` or `{externalId}` (read in the site) → a customer the key may see."""
    if not isinstance(ref, dict):
        raise invalid(field)
    if ref.get("id") not in (None, ""):
        pk = int_value(ref["id"], f"{field}.id")
        customer = Customer.objects.filter(pk=pk).select_related("site").first()
        if customer is None:
            raise invalid(f"{field}.id", f"Customer with id={pk} not found.")
    elif ref.get("externalId") not in (None, ""):
        external_id = checked_external_id(ref["externalId"], f"{field}.externalId")
        site = reference_site(req, ref, field)
        customer = Customer.objects.filter(site=site, external_id=external_id).select_related("site").first()
        if customer is None:
            raise invalid(f"{field}.externalId", f"Customer with externalId={external_id} not found.")
    else:
        raise invalid(field, "Give the customer's id or externalId.")
    req.check_site(customer.site)
    return customer


def order_ref(req: ApiRequest, ref: Any, field: str = "order") -> Order:
    """`{id}`, `{externalId}` or `{number}` (the last two read in the site) → an order the key may see."""
    if not isinstance(ref, dict):
        raise invalid(field)
    if ref.get("id") not in (None, ""):
        pk = int_value(ref["id"], f"{field}.id")
        order = Order.objects.filter(pk=pk).select_related("site", "customer").first()
        if order is None:
            raise invalid(f"{field}.id", f"Order with id={pk} not found.")
    elif ref.get("externalId") not in (None, "") or ref.get("number") not in (None, ""):
        by = "externalId" if ref.get("externalId") not in (None, "") else "number"
        value = checked_external_id(ref[by], f"{field}.{by}")
        site = reference_site(req, ref, field)
        lookup = {"external_id": value} if by == "externalId" else {"number": value}
        order = Order.objects.filter(site=site, **lookup).select_related("site", "customer").first()
        if order is None:
            raise invalid(f"{field}.{by}", f"Order with {by}={value} not found.")
    else:
        raise invalid(field, "Give the order's id, externalId or number.")
    req.check_site(order.site)
    return order


def active_user(value: Any, field: str) -> User:
    pk = int_value(value, field)
    user = User.objects.filter(pk=pk).first()
    if user is None:
        raise invalid(field, f"User with id={pk} not found.")
    if not user.is_active:
        raise invalid(field, f"User with id={pk} is not active.")
    return user


def action_error(exc: ValidationError, names: dict[str, str]) -> ApiError:
    """An action's ValidationError keyed by the API's field names."""
    if not hasattr(exc, "error_dict"):
        return ApiError(ENTITY_ERROR, 400, {"0": " ".join(exc.messages)})
    return ApiError(
        ENTITY_ERROR,
        400,
        {names.get(name, name): " ".join(messages) for name, messages in exc.message_dict.items()},
    )


def prefixed(exc: ApiError, prefix: str) -> ApiError:
    errors = exc.errors if isinstance(exc.errors, dict) else {}
    return ApiError(exc.message, exc.status, {f"{prefix}.{name}": text for name, text in errors.items()})


@contextmanager
def entity_errors(prefix: str, names: dict[str, str] | None = None) -> Iterator[None]:
    """Field errors raised inside are keyed under the entity (`task.performerId`); an action's
    ValidationError is renamed to the API's fields with `names` first."""
    try:
        yield
    except ValidationError as exc:
        raise prefixed(action_error(exc, names or {}), prefix) from None
    except ApiError as exc:
        if exc.status != 400 or not isinstance(exc.errors, dict):
            raise
        raise prefixed(exc, prefix) from None


# --- tasks -------------------------------------------------------------------------------------------


def task_json(task: Task) -> dict[str, Any]:
    """A task as §2.6 shows it."""
    customer = order = None
    if task.customer is not None:
        customer = formats.compact(
            {
                "type": "customer",
                "id": task.customer.pk,
                "externalId": task.customer.external_id,
                "site": task.customer.site.code,
            }
        )
    if task.order is not None:
        order = formats.compact(
            {
                "id": task.order.pk,
                "number": task.order.number,
                "externalId": task.order.external_id,
                "site": task.order.site.code,
            }
        )
    return formats.compact(
        {
            "id": task.pk,
            "text": task.text,
            "commentary": task.commentary,
            "datetime": formats.dt(task.due_at)[:16] if task.due_at else None,
            "createdAt": formats.dt(task.created_at),
            "complete": task.complete,
            "completedAt": formats.dt(task.completed_at),
            "creator": task.creator_id,
            "performer": task.performer_id,
            "performerType": "user",
            "customer": customer,
            "order": order,
            "phone": task.phone,
            "phoneSite": task.site.code if task.phone and task.site else None,
        }
    )


def _tasks(req: ApiRequest) -> QuerySet:
    return Task.objects.filter(req.site_q("site")).select_related("site", "customer__site", "order__site")


def _task(req: ApiRequest, id: str) -> Task:
    task = Task.objects.select_related("site", "customer__site", "order__site").filter(pk=path_id(id)).first()
    if task is None:
        raise NotFound()
    if req.key.site_codes is not None and (task.site is None or not req.allows_site(task.site.code)):
        raise AccessDenied()
    return task


@api("GET", "tasks", scope="task_read", query=LIST_QUERY)
def task_list(req: ApiRequest) -> dict[str, Any]:
    """Tasks, newest first."""
    flt = req.filter
    qs = _tasks(req)
    for name, lookup in (
        ("ids", "pk__in"),
        ("performers", "performer_id__in"),
        ("creators", "creator_id__in"),
    ):
        values = filter_ints(flt, name)
        if values:
            qs = qs.filter(**{lookup: values})
    status = filter_text(flt, "status")
    if status not in ("", "complete", "performing"):
        raise InvalidParameters("status")
    if status:
        qs = qs.filter(complete=status == "complete")
    if text := filter_text(flt, "text"):
        qs = qs.filter(text__icontains=text[:255])
    if number := filter_text(flt, "orderNumber"):
        qs = qs.filter(order__number=number[:64])
    if customer := filter_text(flt, "customer"):
        qs = qs.filter(customer__in=Customer.objects.filter(search_q(customer)))
    qs = datetime_range(qs, flt, "due_at", "dateFrom", "dateTo")
    qs = datetime_range(qs, flt, "created_at", "createdAtFrom", "createdAtTo")
    qs = datetime_range(qs, flt, "completed_at", "completedAtFrom", "completedAtTo")
    rows, pagination = req.paginate(qs)
    return {"pagination": pagination, "tasks": [task_json(t) for t in rows]}


def _task_data(req: ApiRequest, data: dict[str, Any], *, creating: bool) -> TaskData:
    task = TaskData()
    for name in ("text", "commentary", "phone"):
        if name in data:
            setattr(task, name, scalar(data[name], name))
    if creating and not task.text:
        raise invalid("text", "This value should not be blank.")
    if "datetime" in data:
        task.due_at_set = True
        task.due_at = formats.parse_datetime(scalar(data["datetime"], "datetime") or None, "datetime")
    if data.get("performerId") not in (None, ""):
        task.performer = active_user(data["performerId"], "performerId")
    elif creating:
        raise invalid("performerId", "This value should not be blank.")
    if "customer" in data:
        task.customer_set = True
        task.customer = customer_ref(req, data["customer"]) if data["customer"] else None
    if "order" in data:
        task.order_set = True
        task.order = order_ref(req, data["order"]) if data["order"] else None
    if "complete" in data:
        try:
            task.complete = p.boolean(data["complete"], "complete", False)
        except p.ParameterError:
            raise invalid("complete") from None
    return task


@api("POST", "tasks/create", scope="task_write", entity="task", query=("site",))
def task_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create a task."""
    entity = req.entity("task")
    with entity_errors("task", FIELD_NAMES):
        data = _task_data(req, entity, creating=True)
        site = None
        if data.order is None and data.customer is None:
            # A task about nobody belongs to the request's site; a site-limited key must name one.
            site = req.site(required=req.key.site_codes is not None)
        task = create_task(data, actor=req.actor, site=site)
    return 201, {"id": task.pk}


# History fields whose values are ids of other entities: shown as `{id}` like the order feed does.
REFERENCE_FIELDS = ("performer", "customer", "order")


def _history_value(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in REFERENCE_FIELDS:
        return {"id": value}
    if field == "datetime" and isinstance(value, str):
        try:
            moment = formats.parse_datetime(value, field)
        except ApiError:
            return value
        return formats.dt(moment)[:16] if moment else value
    return value


def _history_records(records: list[HistoryRecord], req: ApiRequest) -> list[dict[str, Any]]:
    tasks = _tasks(req).in_bulk({r.entity_id for r in records})
    out = []
    for record in records:
        task = tasks.get(record.entity_id)
        out.append(
            {
                **history.record_base(record, req),
                "field": record.field,
                "oldValue": _history_value(record.field, record.old_value),
                "newValue": _history_value(record.field, record.new_value),
                "task": task_json(task) if task is not None else {"id": record.entity_id},
            }
        )
    return out


@api("GET", "tasks/history", scope="task_read", query=LIST_QUERY)
def task_history(req: ApiRequest) -> dict[str, Any]:
    """Changes of tasks, by moving `filter[sinceId]` like the order history."""
    entity_ids = None
    if req.key.site_codes is not None:
        entity_ids = _tasks(req).values("pk")
    return history.feed(req, "task", _history_records, entity_ids=entity_ids)


@api("GET", "tasks/{id}", scope="task_read")
def task_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """A task by id."""
    return {"task": task_json(_task(req, id))}


@api("POST", "tasks/{id}/edit", scope="task_write", entity="task", query=("site",))
def task_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change a task; `complete: true` completes it."""
    task = _task(req, id)
    entity = req.entity("task")
    with entity_errors("task", FIELD_NAMES):
        update_task(task, _task_data(req, entity, creating=False), actor=req.actor)
    return {}


@api("GET", "tasks/{id}/comments", scope="task_read", query=("limit", "page"))
def task_comments(req: ApiRequest, id: str) -> dict[str, Any]:
    """A task's comments: Lavka's tasks carry one commentary and no comment thread."""
    _task(req, id)
    limit, page = req.limit_page()
    return {"comments": [], "pagination": pagination(limit, page, 0)}
