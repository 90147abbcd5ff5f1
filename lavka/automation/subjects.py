"""What rules run on: the order, the customer or the task an event is about.

For each subject, `schema_for()` gives the fields a condition may read (checked when a rule is saved)
and `build_context()` loads one subject as plain dicts in a fixed, small number of queries, so that
every rule triggered by the event evaluates against the same data without touching the database.

    schema = schema_for("order")
    compiled = compile_condition(rule.condition, schema)            # once per rule
    context = build_context("order", order_id, event, schema=schema, needs=compiled.fields)
    held, why = explain(compiled, context)
"""

from __future__ import annotations

import datetime
import functools
import importlib
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lavka.automation.expressions import (
    BOOL,
    DATE,
    DATETIME,
    MONEY,
    NUMBER,
    STRING,
    Context,
    Schema,
    Type,
    list_of,
    obj,
)

SUBJECTS = ("order", "customer", "task")

# --- schemas ---------------------------------------------------------------------------------------

USER = obj(
    "user",
    {
        "id": NUMBER,
        "username": STRING,
        "name": STRING,
        "first_name": STRING,
        "last_name": STRING,
        "email": STRING,
        "role": STRING,
        "presence": STRING,
        "team": STRING.null(),
    },
)

_CUSTOMER_FIELDS: dict[str, Type] = {
    "id": NUMBER,
    "external_id": STRING.null(),
    "site": STRING,
    "first_name": STRING,
    "last_name": STRING,
    "patronymic": STRING,
    "name": STRING,
    "email": STRING,
    "phones": list_of(STRING, "phone"),
    "tags": list_of(STRING, "tag"),
    "segments": list_of(STRING, "segment"),  # codes of the analytics segments the customer is in now
    "vip": BOOL,
    "bad": BOOL,
    "sex": STRING,
    "birthday": DATE.null(),
    "source": STRING,
    "medium": STRING,
    "campaign": STRING,
    "orders_count": NUMBER,
    "total_summ": MONEY,
    "first_order_at": DATETIME.null(),
    "last_order_at": DATETIME.null(),
    "created_at": DATETIME,
    "manager": USER.null(),
}

_ORDER_FIELDS: dict[str, Type] = {
    "id": NUMBER,
    "number": STRING,
    "external_id": STRING.null(),
    "site": STRING,
    "status": STRING,
    "status_group": STRING,
    "closed": BOOL,
    "order_type": STRING,
    "order_method": STRING,
    "manager": USER.null(),
    "first_name": STRING,
    "last_name": STRING,
    "patronymic": STRING,
    "name": STRING,
    "phone": STRING,
    "email": STRING,
    "delivery_type": STRING.null(),
    "delivery_cost": MONEY,
    "delivery_address": STRING,
    "delivery_date": DATE.null(),
    "delivery_external_id": STRING,
    "track_number": STRING,
    "delivery_status": STRING,
    "summ": MONEY,
    "total_summ": MONEY,
    "prepay_sum": MONEY,
    "to_pay": MONEY,
    "discount_manual_amount": MONEY,
    "discount_manual_percent": NUMBER,
    "full_paid": BOOL,
    "full_paid_at": DATETIME.null(),
    "source": STRING,
    "medium": STRING,
    "campaign": STRING,
    "keyword": STRING,
    "content": STRING,
    "customer_comment": STRING,
    "manager_comment": STRING,
    "from_api": BOOL,
    "created_at": DATETIME,
    "status_updated_at": DATETIME.null(),
}

ITEM = obj(
    "order item",
    {
        "id": NUMBER,
        "product_name": STRING,
        "sku": STRING,
        "quantity": NUMBER,
        "initial_price": MONEY,
        "discount_manual_amount": MONEY,
        "summ": MONEY,
        "comment": STRING,
        "external_id": STRING,
        "offer": obj("offer", {"id": NUMBER, "sku": STRING, "name": STRING, "external_id": STRING}),
        "product": obj("product", {"id": NUMBER, "name": STRING, "external_id": STRING}),
    },
)

PAYMENT = obj(
    "payment",
    {
        "id": NUMBER,
        "type": STRING,
        "status": STRING,
        "amount": MONEY,
        "paid": BOOL,
        "paid_at": DATETIME.null(),
        "external_id": STRING.null(),
        "comment": STRING,
    },
)

NOW = obj(
    "now",
    {
        "hour": NUMBER,
        "minute": NUMBER,
        "weekday": NUMBER,  # 0 = Monday
        "day": NUMBER,
        "month": NUMBER,
        "year": NUMBER,
        "date": DATE,
        "time": STRING,  # "09:30", so that now.time >= "09:00" reads naturally
    },
)

EVENT = obj("event", {"type": STRING, "source": STRING, "depth": NUMBER})

# Custom field types (core.CustomField.Type) → expression types.
_CUSTOM_TYPES = {"integer": NUMBER, "numeric": NUMBER, "boolean": BOOL, "date": DATE}


def _custom_fields(entity: str) -> dict[str, Type]:
    """`custom.<code>` of every site's fields of `entity`; a code typed differently on two sites is text."""
    from lavka.core.models import CustomField

    found: dict[str, Type] = {}
    for code, kind in CustomField.objects.filter(entity=entity).values_list("code", "type").order_by("id"):
        t = _CUSTOM_TYPES.get(kind, STRING).null()
        found[code] = t if found.get(code, t) == t else STRING.null()
    return found


def _customer_type(custom: Mapping[str, Type]) -> Type:
    return obj("customer", {**_CUSTOMER_FIELDS, "custom": obj("custom fields", custom)})


def _order_type(custom: Mapping[str, Type], customer: Type | None, *, lines: bool) -> Type:
    fields = dict(_ORDER_FIELDS)
    fields["custom"] = obj("custom fields", custom)
    if customer is not None:
        fields["customer"] = customer
    if lines:
        fields["items"] = list_of(ITEM, "item")
        fields["payments"] = list_of(PAYMENT, "payment")
    return obj("order", fields)


def _order_changes(order: Type) -> dict[str, Type | None]:
    from lavka.orders.choices import TRACKED_FIELDS

    changes: dict[str, Type | None] = {
        name: order.fields[name] for name in TRACKED_FIELDS if name in order.fields
    }
    changes.update(
        {
            "status": STRING,
            "order_type": STRING,
            "order_method": STRING,
            "delivery_type": STRING,
            "manager": NUMBER,  # old("manager") / new("manager") are user ids
            "customer": NUMBER,
            "delivery_time": None,
            "items": None,
            "payments": None,
        }
    )
    for code, t in order.fields["custom"].fields.items():
        changes[f"custom.{code}"] = t
    return changes


def _customer_changes(customer: Type) -> dict[str, Type | None]:
    from lavka.customers.choices import TRACKED_FIELDS

    changes: dict[str, Type | None] = {}
    for attr in TRACKED_FIELDS:
        name = attr.removesuffix("_id")
        changes[name] = NUMBER if attr.endswith("_id") else customer.fields.get(name)
    changes.update({"phones": None, "tags": None, "address": None, "consent": None, "note": None})
    for code, t in customer.fields["custom"].fields.items():
        changes[f"custom.{code}"] = t
    return changes


@functools.cache
def _task_tracked() -> dict[str, str]:
    """The task attributes history tracks (attribute → history name), wherever the tasks app keeps them."""
    for module in ("lavka.tasks.choices", "lavka.tasks.actions"):
        try:
            tracked = getattr(importlib.import_module(module), "TRACKED_FIELDS", None)
        except ImportError:
            continue
        if isinstance(tracked, dict):
            return tracked
    return {}


def _task_model_fields() -> list[models.Field]:
    from lavka.tasks.models import Task

    return [f for f in Task._meta.concrete_fields]


def _relation(f: models.Field) -> str:
    """What a task's foreign key points at: site, user, customer, order or something else."""
    from lavka.customers.models import Customer
    from lavka.orders.models import Order

    target = f.related_model
    if f.name == "site":
        return "site"
    if target is Customer:
        return "customer"
    if target is Order:
        return "order"
    if isinstance(target, type) and target._meta.label_lower == settings.AUTH_USER_MODEL.lower():
        return "user"
    return "other"


def _scalar_type(f: models.Field) -> Type | None:
    if isinstance(f, models.BooleanField):
        t = BOOL
    elif isinstance(f, models.DateTimeField):
        t = DATETIME
    elif isinstance(f, models.DateField):
        t = DATE
    elif isinstance(f, (models.IntegerField, models.DecimalField, models.AutoField)):
        t = NUMBER
    elif isinstance(f, (models.CharField, models.TextField)):
        t = STRING
    else:
        return None  # JSON, times, floats, files: not readable by conditions
    return t.null() if f.null else t


def _task_type(custom_customer: Mapping[str, Type], custom_order: Mapping[str, Type]) -> Type:
    """The task's own fields are read off the model, so fields the tasks app adds appear here too."""
    fields: dict[str, Type] = {}
    for f in _task_model_fields():
        if f.is_relation:
            kind = _relation(f)
            if kind == "site":
                t = STRING
            elif kind == "customer":
                t = _customer_type(custom_customer)
            elif kind == "order":
                t = _order_type(custom_order, None, lines=False)
            elif kind == "user":
                t = USER
            else:
                t = obj(f.name, {"id": NUMBER})
            fields[f.name] = t.null() if f.null else t
        else:
            scalar = _scalar_type(f)
            if scalar is not None:
                fields[f.name] = scalar
    fields["overdue"] = BOOL
    return obj("task", fields)


def schema_for(subject: str) -> Schema:
    """The fields conditions of rules on `subject` may read, custom fields included (one query)."""
    if subject == "order":
        order = _order_type(_custom_fields("order"), _customer_type(_custom_fields("customer")), lines=True)
        return Schema({"order": order, "now": NOW, "event": EVENT}, _order_changes(order), "order")
    if subject == "customer":
        customer = _customer_type(_custom_fields("customer"))
        return Schema(
            {"customer": customer, "now": NOW, "event": EVENT}, _customer_changes(customer), "customer"
        )
    if subject == "task":
        task = _task_type(_custom_fields("customer"), _custom_fields("order"))
        changes: dict[str, Type | None] = {}
        for attr in _task_tracked():
            name = attr.removesuffix("_id")
            t = task.fields.get(name)
            changes[name] = NUMBER if (t is not None and t.kind == "object") else t
        changes.setdefault("complete", BOOL)
        return Schema({"task": task, "now": NOW, "event": EVENT}, changes, "task")
    raise ValueError(f"unknown subject {subject!r}")


def subject_for_trigger(trigger: str) -> str | None:
    """Which subject a rule with this trigger runs on ("orders.created" → "order")."""
    head, _, rest = trigger.partition(".")
    by_app = {"orders": "order", "customers": "customer", "tasks": "task"}
    if head in by_app:
        return None if rest.startswith("corporate") else by_app[head]
    if head == "timer":
        for subject in SUBJECTS:
            if rest.startswith(subject):
                return subject
    return None


def subject_of(event_type: str, payload: Mapping[str, Any]) -> tuple[str, int] | None:
    """(subject, id) an event is about: the app's own entity first, else the first id it carries."""
    subject = subject_for_trigger(event_type)
    keys = [f"{subject}_id"] if subject else ["task_id", "order_id", "customer_id"]
    for key in keys:
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return key.removesuffix("_id"), value
    return None


# --- contexts --------------------------------------------------------------------------------------
#
# Joins cost more to plan than to run (a dozen of them took PostgreSQL ~5 ms to plan), so a context is
# read as a few narrow queries: the subject with its customer/order by join, the users it names in
# one query, and each list in one query. Reference books (sites, statuses, types …) come from a small
# per-process cache instead of joins.


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_USER_VALUES = ("id", "username", "first_name", "last_name", "email", "role", "presence", "team__name")
_CUSTOMER_VALUES = _names(
    """
    id external_id site_id first_name last_name patronymic email vip bad sex birthday source medium
    campaign orders_count total_summ first_order_at last_order_at created_at custom_fields manager_id
    """
)
_ORDER_VALUES = _names(
    """
    id number external_id site_id status_id order_type_id order_method_id delivery_type_id manager_id
    customer_id first_name last_name patronymic phone email delivery_cost delivery_address
    delivery_date delivery_external_id track_number delivery_status summ total_summ prepay_sum
    discount_manual_amount discount_manual_percent full_paid_at source medium campaign keyword
    content customer_comment manager_comment from_api created_at status_updated_at custom_fields
    """
)
_ITEM_VALUES = _names(
    """
    id product_name sku quantity initial_price discount_manual_amount summ comment external_id
    offer_id offer__sku offer__name offer__external_id offer__product_id offer__product__name
    offer__product__external_id
    """
)
_PAYMENT_VALUES = _names("id type_id status_id amount paid_at external_id comment")


@functools.cache
def _template(name: str) -> Any:
    """The query for one part of a context, built once: Django spends more time turning a wide
    values() into SQL than PostgreSQL spends running it, and a clone skips most of that."""
    from django.contrib.auth import get_user_model

    from lavka.customers.models import Customer, CustomerPhone
    from lavka.orders.models import Order, OrderItem, Payment

    if name == "order":
        return Order.objects.order_by().values(*_ORDER_VALUES, *_prefixed("customer__", _CUSTOMER_VALUES))
    if name == "customer":
        return Customer.objects.order_by().values(*_CUSTOMER_VALUES)
    if name == "users":
        return get_user_model().objects.order_by().values(*_USER_VALUES)
    if name == "items":
        return OrderItem.objects.order_by("id").values(*_ITEM_VALUES)
    if name == "payments":
        return Payment.objects.order_by("id").values(*_PAYMENT_VALUES)
    if name == "phones":
        return CustomerPhone.objects.order_by("position", "id").values_list("number", flat=True)
    if name == "tags":
        return Customer.tags.through.objects.order_by("tag__name").values_list("tag__name", flat=True)
    raise ValueError(name)


@functools.cache
def _task_template(values: tuple[str, ...]) -> Any:
    from lavka.tasks.models import Task

    return Task.objects.order_by().values(*values)


def _one(query: Any, pk: int) -> dict[str, Any] | None:
    return next(iter(query.filter(pk=pk)), None)


# --- reference books, cached ---

REFS_SECONDS = 60.0
_refs: dict[str, tuple[float, dict[int, Any]]] = {}
_refs_lock = threading.Lock()


def _load_refs(kind: str) -> dict[int, Any]:
    from lavka.core.models import Site
    from lavka.orders import models as orders

    if kind == "site":
        return {i: (code, tz) for i, code, tz in Site.objects.values_list("id", "code", "time_zone")}
    if kind == "status":
        return {
            i: (code, group)
            for i, code, group in orders.Status.objects.values_list("id", "code", "group__code")
        }
    if kind == "payment_status":
        rows = orders.PaymentStatus.objects.values_list("id", "code", "payment_complete")
        return {i: (code, complete) for i, code, complete in rows}
    model = {
        "order_type": orders.OrderType,
        "order_method": orders.OrderMethod,
        "delivery_type": orders.DeliveryType,
        "payment_type": orders.PaymentType,
    }[kind]
    return dict(model.objects.values_list("id", "code"))


def _ref(kind: str, ref_id: int | None) -> Any:
    """A reference book row's values by id; an id not seen yet (a new row) reads the table again."""
    if ref_id is None:
        return None
    now = time.monotonic()
    entry = _refs.get(kind)
    if entry is None or now - entry[0] > REFS_SECONDS or ref_id not in entry[1]:
        _watch_refs()
        entry = (now, _load_refs(kind))
        with _refs_lock:
            _refs[kind] = entry
    return entry[1].get(ref_id)


def forget_references(**kwargs: Any) -> None:
    """Drop the cached reference books (a site, status or type was saved; other processes catch up
    within REFS_SECONDS)."""
    with _refs_lock:
        _refs.clear()
    from lavka.analytics.segments.compiler import forget_segments

    forget_segments()


@functools.cache
def _watch_refs() -> None:
    from django.db.models.signals import post_delete, post_save

    from lavka.core.models import Site
    from lavka.orders import models as orders

    for model in (
        Site,
        orders.Status,
        orders.StatusGroup,
        orders.OrderType,
        orders.OrderMethod,
        orders.DeliveryType,
        orders.PaymentType,
        orders.PaymentStatus,
    ):
        for signal in (post_save, post_delete):
            signal.connect(forget_references, sender=model, dispatch_uid=f"automation-refs-{model.__name__}")


def _code(kind: str, ref_id: int | None) -> Any:
    found = _ref(kind, ref_id)
    return found[0] if isinstance(found, tuple) else found


# --- rows → plain data ---


@functools.lru_cache(maxsize=64)
def _zone(name: str | None) -> datetime.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _site_zone(site_id: int | None) -> datetime.tzinfo:
    found = _ref("site", site_id)
    return _zone(found[1] if found else None)


def _local(value: datetime.datetime | None, tz: datetime.tzinfo) -> datetime.datetime | None:
    return value.astimezone(tz) if value is not None else None


def _users(ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    """The users named by `ids`, in one query (none when no id is given)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found = {}
    for row in _template("users").filter(pk__in=wanted):
        first, last, username = row["first_name"], row["last_name"], row["username"]
        found[row["id"]] = {
            "id": row["id"],
            "username": username,
            "name": f"{first} {last}".strip() or username,
            "first_name": first,
            "last_name": last,
            "email": row["email"],
            "role": row["role"],
            "presence": row["presence"],
            "team": row["team__name"],
        }
    return found


def _custom(raw: Any, t: Type) -> dict[str, Any]:
    values = raw if isinstance(raw, dict) else {}
    return {code: coerce(values.get(code), ft) for code, ft in t.fields.items()}


def _customer(
    row: Mapping[str, Any], p: str, tz: datetime.tzinfo, t: Type, users: Mapping[int, Any]
) -> dict[str, Any] | None:
    if row[p + "id"] is None:
        return None
    names = (row[p + "last_name"], row[p + "first_name"], row[p + "patronymic"])
    return {
        "id": row[p + "id"],
        "external_id": row[p + "external_id"],
        "site": _code("site", row[p + "site_id"]),
        "first_name": row[p + "first_name"],
        "last_name": row[p + "last_name"],
        "patronymic": row[p + "patronymic"],
        "name": " ".join(part for part in names if part),
        "email": row[p + "email"],
        "phones": None,  # filled by _add_customer_lists
        "tags": None,
        "segments": None,
        "vip": row[p + "vip"],
        "bad": row[p + "bad"],
        "sex": row[p + "sex"],
        "birthday": row[p + "birthday"],
        "source": row[p + "source"],
        "medium": row[p + "medium"],
        "campaign": row[p + "campaign"],
        "orders_count": row[p + "orders_count"],
        "total_summ": row[p + "total_summ"],
        "first_order_at": _local(row[p + "first_order_at"], tz),
        "last_order_at": _local(row[p + "last_order_at"], tz),
        "created_at": _local(row[p + "created_at"], tz),
        "manager": users.get(row[p + "manager_id"]),
        "custom": _custom(row[p + "custom_fields"], t.fields["custom"]),
    }


def _order(
    row: Mapping[str, Any], p: str, tz: datetime.tzinfo, t: Type, users: Mapping[int, Any]
) -> dict[str, Any] | None:
    from lavka.orders.choices import Group

    if row[p + "id"] is None:
        return None
    names = (row[p + "last_name"], row[p + "first_name"], row[p + "patronymic"])
    total, paid = row[p + "total_summ"], row[p + "prepay_sum"]
    status, group = _ref("status", row[p + "status_id"]) or (None, None)
    return {
        "id": row[p + "id"],
        "number": row[p + "number"],
        "external_id": row[p + "external_id"],
        "site": _code("site", row[p + "site_id"]),
        "status": status,
        "status_group": group,
        "closed": group in Group.CLOSED,
        "order_type": _code("order_type", row[p + "order_type_id"]),
        "order_method": _code("order_method", row[p + "order_method_id"]),
        "manager": users.get(row[p + "manager_id"]),
        "first_name": row[p + "first_name"],
        "last_name": row[p + "last_name"],
        "patronymic": row[p + "patronymic"],
        "name": " ".join(part for part in names if part),
        "phone": row[p + "phone"],
        "email": row[p + "email"],
        "delivery_type": _code("delivery_type", row[p + "delivery_type_id"]),
        "delivery_cost": row[p + "delivery_cost"],
        "delivery_address": row[p + "delivery_address"],
        "delivery_date": row[p + "delivery_date"],
        "delivery_external_id": row[p + "delivery_external_id"],
        "track_number": row[p + "track_number"],
        "delivery_status": row[p + "delivery_status"],
        "summ": row[p + "summ"],
        "total_summ": total,
        "prepay_sum": paid,
        "to_pay": max(total - paid, Decimal("0.00")),
        "discount_manual_amount": row[p + "discount_manual_amount"],
        "discount_manual_percent": row[p + "discount_manual_percent"],
        "full_paid": row[p + "full_paid_at"] is not None,
        "full_paid_at": _local(row[p + "full_paid_at"], tz),
        "source": row[p + "source"],
        "medium": row[p + "medium"],
        "campaign": row[p + "campaign"],
        "keyword": row[p + "keyword"],
        "content": row[p + "content"],
        "customer_comment": row[p + "customer_comment"],
        "manager_comment": row[p + "manager_comment"],
        "from_api": row[p + "from_api"],
        "created_at": _local(row[p + "created_at"], tz),
        "status_updated_at": _local(row[p + "status_updated_at"], tz),
        "custom": _custom(row[p + "custom_fields"], t.fields["custom"]),
    }


def _wants(needs: frozenset[str] | None, path: str) -> bool:
    """Whether some condition reads `path` or below it (no `needs`: load everything)."""
    if needs is None:
        return True
    return path in needs or any(p.startswith(path + ".") for p in needs)


def _add_customer_lists(customer: dict[str, Any] | None, needs: frozenset[str] | None, path: str) -> None:
    """Phones, tags and segments: one query each, only when a condition reads them."""
    if customer is None:
        return
    if _wants(needs, path + ".phones"):
        customer["phones"] = list(_template("phones").filter(customer_id=customer["id"]))
    if _wants(needs, path + ".tags"):
        customer["tags"] = list(_template("tags").filter(customer_id=customer["id"]))
    if _wants(needs, path + ".segments"):
        from lavka.analytics.segments import memberships

        customer["segments"] = memberships(customer["id"])


def _item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "product_name": row["product_name"],
        "sku": row["sku"],
        "quantity": row["quantity"],
        "initial_price": row["initial_price"],
        "discount_manual_amount": row["discount_manual_amount"],
        "summ": row["summ"],
        "comment": row["comment"],
        "external_id": row["external_id"],
        "offer": {
            "id": row["offer_id"],
            "sku": row["offer__sku"],
            "name": row["offer__name"],
            "external_id": row["offer__external_id"],
        },
        "product": {
            "id": row["offer__product_id"],
            "name": row["offer__product__name"],
            "external_id": row["offer__product__external_id"],
        },
    }


def _payment(row: Mapping[str, Any], tz: datetime.tzinfo) -> dict[str, Any]:
    status, complete = _ref("payment_status", row["status_id"]) or (None, False)
    return {
        "id": row["id"],
        "type": _code("payment_type", row["type_id"]),
        "status": status,
        "amount": row["amount"],
        "paid": complete,
        "paid_at": _local(row["paid_at"], tz),
        "external_id": row["external_id"],
        "comment": row["comment"],
    }


def _now(now: datetime.datetime | None, tz: datetime.tzinfo) -> tuple[datetime.datetime, dict[str, Any]]:
    local = (now or timezone.now()).astimezone(tz)
    return local, {
        "hour": local.hour,
        "minute": local.minute,
        "weekday": local.weekday(),
        "day": local.day,
        "month": local.month,
        "year": local.year,
        "date": local.date(),
        "time": local.strftime("%H:%M"),
    }


def _event(event: Any) -> dict[str, Any]:
    if event is None:
        return {"type": None, "source": None, "depth": 0}
    actor = getattr(event, "actor", None)
    return {
        "type": getattr(event, "type", None),
        "source": actor.get("source") if isinstance(actor, dict) else None,
        "depth": getattr(event, "depth", 0) or 0,
    }


def build_context(
    subject: str,
    subject_id: int,
    event: Any = None,
    *,
    schema: Schema | None = None,
    now: datetime.datetime | None = None,
    needs: Iterable[str] | None = None,
) -> Context | None:
    """The context of one subject for one event; None when the subject no longer exists.

    `event`: an OutboxEvent or anything with `type` and `payload` (and optionally `actor`, `depth`);
    None for no event (nothing changed). `schema`: the one the conditions were compiled with (built if
    not given: one more query). `now`: the moment to evaluate at (dry runs pass the event's time).
    `needs`: the union of the compiled conditions' `fields`; lists no condition reads are not loaded.
    """
    schema = schema or schema_for(subject)
    wanted = frozenset(needs) if needs is not None else None
    if subject == "order":
        return _order_context(subject_id, event, schema, now, wanted)
    if subject == "customer":
        return _customer_context(subject_id, event, schema, now, wanted)
    if subject == "task":
        return _task_context(subject_id, event, schema, now, wanted)
    raise ValueError(f"unknown subject {subject!r}")


def _prefixed(prefix: str, names: Iterable[str]) -> list[str]:
    return [prefix + name for name in names]


def _order_context(
    order_id: int, event: Any, schema: Schema, now: datetime.datetime | None, needs: frozenset[str] | None
) -> Context | None:
    t = schema.variables["order"]
    row = _one(_template("order"), order_id)
    if row is None:
        return None
    tz = _site_zone(row["site_id"])
    users = _users(
        [
            row["manager_id"] if _wants(needs, "order.manager") else None,
            row["customer__manager_id"] if _wants(needs, "order.customer.manager") else None,
        ]
    )
    order = _order(row, "", tz, t, users)
    assert order is not None
    order["customer"] = _customer(row, "customer__", tz, t.fields["customer"], users)
    _add_customer_lists(order["customer"], needs, "order.customer")
    order["items"] = None
    if _wants(needs, "order.items"):
        order["items"] = [_item(r) for r in _template("items").filter(order_id=order_id)]
    order["payments"] = None
    if _wants(needs, "order.payments"):
        order["payments"] = [_payment(r, tz) for r in _template("payments").filter(order_id=order_id)]
    local, now_values = _now(now, tz)
    ids = {"manager": row["manager_id"], "customer": row["customer_id"]}
    changed, old, new = _changes(event, schema, _order_history(), _ORDER_GROUPS, lambda: {**order, **ids})
    return Context({"order": order, "now": now_values, "event": _event(event)}, changed, old, new, local)


def _customer_context(
    customer_id: int, event: Any, schema: Schema, now: datetime.datetime | None, needs: frozenset[str] | None
) -> Context | None:
    t = schema.variables["customer"]
    row = _one(_template("customer"), customer_id)
    if row is None:
        return None
    tz = _site_zone(row["site_id"])
    customer = _customer(
        row, "", tz, t, _users([row["manager_id"] if _wants(needs, "customer.manager") else None])
    )
    _add_customer_lists(customer, needs, "customer")
    local, now_values = _now(now, tz)
    ids = {"manager": row["manager_id"]}
    changed, old, new = _changes(
        event, schema, _customer_history(), _CUSTOMER_GROUPS, lambda: {**(customer or {}), **ids}
    )
    return Context(
        {"customer": customer, "now": now_values, "event": _event(event)}, changed, old, new, local
    )


def _task_links(task: Type) -> list[tuple[models.Field, str]]:
    """The task's fields conditions read, with what each is: a value, or the kind of its link."""
    return [
        (f, _relation(f) if f.is_relation else "value") for f in _task_model_fields() if f.name in task.fields
    ]


def _task_context(
    task_id: int, event: Any, schema: Schema, now: datetime.datetime | None, needs: frozenset[str] | None
) -> Context | None:
    t = schema.variables["task"]
    links = _task_links(t)
    values = ["site_id"]
    for f, kind in links:
        if kind == "value":
            values.append(f.name)
        elif kind == "customer":
            values += _prefixed(f.name + "__", _CUSTOMER_VALUES)
        elif kind == "order":
            values += _prefixed(f.name + "__", _ORDER_VALUES)
        elif kind != "site":
            values.append(f.attname)
    row = _one(_task_template(tuple(values)), task_id)
    if row is None:
        return None
    tz = _site_zone(row["site_id"])
    user_ids = [row[f.attname] for f, kind in links if kind == "user" and _wants(needs, f"task.{f.name}")]
    user_ids += [
        row[f"{f.name}__manager_id"]
        for f, kind in links
        if kind in ("customer", "order") and _wants(needs, f"task.{f.name}.manager")
    ]
    users = _users(user_ids)
    task: dict[str, Any] = {}
    for f, kind in links:
        if kind == "value":
            value = row[f.name]
            task[f.name] = _local(value, tz) if isinstance(value, datetime.datetime) else value
        elif kind == "site":
            task[f.name] = _code("site", row["site_id"])
        elif kind == "user":
            task[f.name] = users.get(row[f.attname])
        elif kind == "customer":
            task[f.name] = _customer(row, f.name + "__", tz, t.fields[f.name], users)
            _add_customer_lists(task[f.name], needs, f"task.{f.name}")
        elif kind == "order":
            task[f.name] = _order(row, f.name + "__", tz, t.fields[f.name], users)
        else:
            task[f.name] = {"id": row[f.attname]} if row[f.attname] is not None else None
    local, now_values = _now(now, tz)
    due = task.get("due_at")
    task["overdue"] = bool(due is not None and due < local and not task.get("complete"))
    ids = {f.name: row[f.attname] for f, kind in links if kind == "user"}
    ids.update({f.name: row[f"{f.name}__id"] for f, kind in links if kind in ("customer", "order")})
    changed, old, new = _changes(event, schema, _task_history(), {}, lambda: {**task, **ids})
    return Context({"task": task, "now": now_values, "event": _event(event)}, changed, old, new, local)


# --- what the event changed -------------------------------------------------------------------------

# History field name → the name conditions use in changed()/old()/new().
_ORDER_REFS = (
    "status",
    "order_type",
    "order_method",
    "delivery_type",
    "manager",
    "customer",
    "delivery_time",
)
# History names with a dotted part (`order_product.quantity`) → the field that changed as a whole.
_ORDER_GROUPS = {"order_product": "items", "payments": "payments", "delivery_address": "delivery_address"}
_CUSTOMER_GROUPS = {"address": "address", "consent": "consent"}


@functools.cache
def _order_history() -> dict[str, str]:
    from lavka.orders.choices import TRACKED_FIELDS

    return {**{hist: attr for attr, hist in TRACKED_FIELDS.items()}, **{n: n for n in _ORDER_REFS}}


@functools.cache
def _customer_history() -> dict[str, str]:
    from lavka.customers.choices import TRACKED_FIELDS

    return {hist: attr.removesuffix("_id") for attr, hist in TRACKED_FIELDS.items()}


def _task_history() -> dict[str, str]:
    return {hist: attr.removesuffix("_id") for attr, hist in _task_tracked().items()}


def _changes(
    event: Any,
    schema: Schema,
    table: Mapping[str, str],
    groups: Mapping[str, str],
    current: Callable[[], Mapping[str, Any]],
) -> tuple[frozenset[str], dict[str, Any], dict[str, Any]]:
    """(changed names, old values, new values) of the event, in the schema's vocabulary."""
    if event is None:
        return frozenset(), {}, {}
    kind = str(getattr(event, "type", "") or "")
    payload = getattr(event, "payload", None) or {}
    vocabulary = schema.changes
    changed: set[str] = set()
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}

    def value(name: str, raw: Any) -> Any:
        t = vocabulary.get(name)
        return coerce(raw, t) if t is not None else None

    action = kind.partition(".")[2]
    if action == "status_changed":
        changed.add("status")
        old["status"], new["status"] = payload.get("old_status"), payload.get("new_status")
    elif action == "manager_changed":
        changed.add("manager")
        old["manager"] = value("manager", payload.get("old_manager_id"))
        new["manager"] = value("manager", payload.get("new_manager_id"))
    elif action == "payment_added":
        changed.add("payments")
    elif action == "merged" and kind.startswith("orders."):
        changed.update({"items", "payments"})
    elif action == "completed" and kind.startswith("tasks."):
        changed.add("complete")
        old["complete"], new["complete"] = False, True
    elif action == "updated":
        fields = payload.get("fields")
        for hist in fields if isinstance(fields, list) else []:
            if isinstance(hist, str):
                changed.add(_translate(hist, table, groups))
        given = payload.get("changes")
        for hist, pair in given.items() if isinstance(given, dict) else ():
            name = _translate(hist, table, groups)
            exact = hist in table or hist.startswith("custom_")
            if not exact or vocabulary.get(name) is None or not isinstance(pair, list) or len(pair) != 2:
                continue
            changed.add(name)
            old[name], new[name] = value(name, pair[0]), value(name, pair[1])
        # Without the old and new values in the event, new() is the subject's value as loaded now.
        missing = [name for name in changed if name not in new and vocabulary.get(name) is not None]
        if missing:
            values = current()
            for name in missing:
                new[name] = _current(values, name)
    return frozenset(changed & set(vocabulary)), old, new


def _translate(hist: str, table: Mapping[str, str], groups: Mapping[str, str]) -> str:
    if hist in table:
        return table[hist]
    if hist.startswith("custom_"):
        return "custom." + hist.removeprefix("custom_")
    return groups.get(hist.split(".", 1)[0], hist)


def _current(subject: Mapping[str, Any], name: str) -> Any:
    if name.startswith("custom."):
        custom = subject.get("custom") or {}
        return custom.get(name.removeprefix("custom."))
    value = subject.get(name)
    if isinstance(value, dict):  # a related object: its id, as old()/new() give for it
        return value.get("id")
    return value


def coerce(raw: Any, t: Type | None) -> Any:
    """A JSON value (history, custom fields) as the type `t` wants it; null when it does not fit."""
    if raw is None or t is None:
        return None
    if isinstance(raw, dict):  # reference books and related objects as history writes them
        raw = raw.get("code", raw.get("id"))
        if raw is None:
            return None
    kind = t.kind
    try:
        if kind in ("number", "money"):
            if isinstance(raw, (bool, list, dict)):
                return None
            if isinstance(raw, int):
                return raw
            number = Decimal(str(raw))
            return number if number.is_finite() else None
        if kind == "string":
            return raw if isinstance(raw, str) else (None if isinstance(raw, list) else str(raw))
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            return {"true": True, "1": True, "false": False, "0": False}.get(str(raw).lower())
        if kind == "date":
            if isinstance(raw, datetime.date):
                return raw if not isinstance(raw, datetime.datetime) else raw.date()
            return datetime.date.fromisoformat(str(raw)[:10])
        if kind == "datetime":
            if isinstance(raw, datetime.datetime):
                value = raw
            else:
                parsed = parse_datetime(str(raw))
                if parsed is None:
                    return None
                value = parsed
            return value if timezone.is_aware(value) else timezone.make_aware(value, datetime.UTC)
    except (ValueError, TypeError, InvalidOperation, ArithmeticError):
        return None
    return None
