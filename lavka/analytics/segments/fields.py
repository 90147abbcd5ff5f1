"""The catalogue of what a segment condition can be about (docs/segments.md).

Each `Field` has a kind, which decides its operators and the shape of its value, and a `build`
function that turns one checked condition into a `Q` over `Customer`. Conditions on customer metrics
go through the one-to-one `metrics` join (its primary key is the customer's); order history is an
EXISTS or an `IN (… GROUP BY … HAVING …)` subquery, so a segment is always one SQL statement.

Site behaviour (views, carts) is not tracked yet: when it is, its fields are added with `register()`
and nothing else here changes.
"""

from __future__ import annotations

import datetime
import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils.dates import MONTHS
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.analytics.segments.choices import (
    ChoiceSource,
    channel_purposes,
    lifecycle_choices,
    manager_choices,
    method_choices,
    rfm_choices,
    site_choices,
    site_scoped,
    static_choices,
    tag_choices,
)
from lavka.analytics.segments.values import (
    Period,
    clean_date,
    clean_days,
    clean_list,
    clean_number,
    clean_text,
    day_start,
    error,
    holds,
)

# Operators by kind, in the order the builder offers them.
OPERATORS: dict[str, tuple[str, ...]] = {
    "number": ("gte", "lte", "gt", "lt", "eq", "ne", "between", "empty", "not_empty"),
    "date": ("in_last_days", "not_in_last_days", "before", "after", "between", "empty", "not_empty"),
    "string": ("eq", "ne", "contains", "not_contains", "empty", "not_empty"),
    "choice": ("in", "not_in"),
    "bool": ("is",),
    "tags": ("any", "all", "none"),
    # Order history: "bought any of …" / "bought none of …", and an amount over the period.
    "set": ("any", "none"),
    "amount": ("gte", "lte", "gt", "lt", "eq", "ne", "between"),
}
NO_VALUE = frozenset({"empty", "not_empty"})
OPERATOR_LABELS: dict[str, Any] = {
    "gte": "≥",
    "lte": "≤",
    "gt": ">",
    "lt": "<",
    "eq": "=",
    "ne": "≠",
    "between": gettext_lazy("between"),
    "empty": gettext_lazy("is empty"),
    "not_empty": gettext_lazy("is not empty"),
    "in_last_days": gettext_lazy("in the last N days"),
    "not_in_last_days": gettext_lazy("more than N days ago"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "is": gettext_lazy("is"),
    "any": gettext_lazy("any of"),
    "all": gettext_lazy("all of"),
    "none": gettext_lazy("none of"),
}


@dataclass(frozen=True)
class Condition:
    """One checked condition: the value is already of the field's type."""

    field: Field
    operator: str
    value: Any
    period: Period | None = None


@dataclass(frozen=True)
class Build:
    """What a field's `build` may need besides the condition: the moment "now" is, and whether the
    query is for one customer (aggregates then become correlated subqueries, cheap for one row)."""

    now: datetime.datetime
    correlated: bool = False


Builder = Callable[[Condition, Build], Q]


@dataclass(frozen=True)
class Field:
    name: str
    label: Any
    group: Any
    kind: str
    build: Builder
    nullable: bool = False
    number: str = "decimal"  # number and amount kinds: "int", "decimal" or "float"
    # (value, label) pairs the builder offers; `site_ids` limits them to those sites (None: all).
    choices: ChoiceSource | None = None
    fixed: bool = False  # values must be among the choices (checked when a definition is saved)
    ids: bool = False  # values are row ids (as text); `keywords` may stand beside them
    keywords: tuple[str, ...] = ()
    period: bool = False  # order history: takes a period

    @property
    def operators(self) -> tuple[str, ...]:
        ops = OPERATORS[self.kind]
        if self.kind in ("number", "date") and not self.nullable:
            ops = tuple(o for o in ops if o not in NO_VALUE)
        return ops

    def clean(self, op: str, raw: Any, path: str) -> Any:
        """The value of a condition with operator `op`, converted, or a ValidationError naming `path`."""
        if op in NO_VALUE:
            return None
        if op == "between":
            if not isinstance(raw, (list, tuple)) or len(raw) != 2:
                raise error(path, _("Give two values: from and to."))
            low, high = (self._scalar(v, f"{path}.{i}") for i, v in enumerate(raw))
            if low > high:
                raise error(path, _("The first value must not be greater than the second."))
            return [low, high]
        if self.kind in ("number", "amount"):
            return self._scalar(raw, path)
        if self.kind == "date":
            if op in ("in_last_days", "not_in_last_days"):
                return clean_days(raw, path)
            return clean_date(raw, path)
        if self.kind == "string":
            return clean_text(raw, path)
        if self.kind == "bool":
            if not isinstance(raw, bool):
                raise error(path, _("Choose yes or no."))
            return raw
        values = clean_list(raw, path)
        if self.ids:
            for i, value in enumerate(values):
                if value not in self.keywords and not (
                    value.isascii() and value.isdigit() and len(value) < 19
                ):
                    raise error(f"{path}.{i}", _("Unknown value “%(value)s”.") % {"value": value})
        if self.fixed and self.choices is not None:
            known = {value for value, _label in self.choices(None)}
            for i, value in enumerate(values):
                if value not in known:
                    raise error(f"{path}.{i}", _("Unknown value “%(value)s”.") % {"value": value})
        return values

    def _scalar(self, raw: Any, path: str) -> Any:
        if self.kind == "date":
            return clean_date(raw, path)
        return clean_number(raw, path, self.number)


# --- Q builders ------------------------------------------------------------------------------------


def compare(path: str, c: Condition, b: Build) -> Q:
    """`path <op> value` for number, date, string, choice and bool kinds; unknown values (null)
    satisfy only "is empty" (and the negative string operators)."""
    op, v = c.operator, c.value
    if op == "empty":
        q = Q(**{f"{path}__isnull": True})
        return q | Q(**{path: ""}) if c.field.kind == "string" else q
    if op == "not_empty":
        q = Q(**{f"{path}__isnull": False})
        return q & ~Q(**{path: ""}) if c.field.kind == "string" else q
    if c.field.kind == "date":
        return _date_q(path, op, v, b)
    if c.field.kind == "string":
        # "=" is exact, so PostgreSQL can estimate it from its statistics (UPPER(x) = … it cannot, and
        # then picks a plan for a handful of rows); "contains" ignores case (SQLite: ASCII letters only).
        q = Q(**{f"{path}__{'icontains' if 'contains' in op else 'exact'}": v})
        return ~q if op in ("ne", "not_contains") else q
    if op == "between":
        return Q(**{f"{path}__gte": v[0], f"{path}__lte": v[1]})
    simple = {"gte": "gte", "lte": "lte", "gt": "gt", "lt": "lt", "eq": "exact"}
    if op in simple:
        return Q(**{f"{path}__{simple[op]}": v})
    if op == "ne":
        return Q(**{f"{path}__lt": v}) | Q(**{f"{path}__gt": v})
    if op in ("in", "not_in"):
        q = Q(**{f"{path}__in": v})
        return ~q if op == "not_in" else q
    if op == "is":
        return Q(**{path: v})
    raise ValueError(op)


def _date_q(path: str, op: str, v: Any, b: Build) -> Q:
    if op == "in_last_days":
        return Q(**{f"{path}__gte": b.now - datetime.timedelta(days=v)})
    if op == "not_in_last_days":
        return Q(**{f"{path}__lt": b.now - datetime.timedelta(days=v)})
    if op == "before":
        return Q(**{f"{path}__lt": day_start(v)})
    if op == "after":
        return Q(**{f"{path}__gte": day_start(v + datetime.timedelta(days=1))})
    if op == "between":
        end = day_start(v[1] + datetime.timedelta(days=1))
        return Q(**{f"{path}__gte": day_start(v[0]), f"{path}__lt": end})
    raise ValueError(op)


def column(path: str, convert: Callable[[Any], Any] | None = None) -> Builder:
    """A plain column (or one reached by joins, e.g. `metrics__revenue`); `convert` maps list values."""

    def build(c: Condition, b: Build) -> Q:
        if convert is not None and isinstance(c.value, list):
            c = Condition(c.field, c.operator, [convert(v) for v in c.value], c.period)
        return compare(path, c, b)

    return build


def days_since(path: str) -> Builder:
    """Whole days since a moment, as a range on the moment itself (so an index on it serves)."""

    def ago(days: int, b: Build) -> datetime.datetime:
        return b.now - datetime.timedelta(days=days)

    def build(c: Condition, b: Build) -> Q:
        op, n = c.operator, c.value
        if op in NO_VALUE:
            return compare(path, c, b)
        # "at least n days" is "at or before now − n days"; whole days, so "more than n" is "at least n + 1".
        if op == "gte":
            return Q(**{f"{path}__lte": ago(n, b)})
        if op == "gt":
            return Q(**{f"{path}__lte": ago(n + 1, b)})
        if op == "lt":
            return Q(**{f"{path}__gt": ago(n, b)})
        if op == "lte":
            return Q(**{f"{path}__gt": ago(n + 1, b)})
        if op == "between":
            return Q(**{f"{path}__lte": ago(n[0], b), f"{path}__gt": ago(n[1] + 1, b)})
        exact = Q(**{f"{path}__lte": ago(n, b), f"{path}__gt": ago(n + 1, b)})
        return exact if op == "eq" else Q(**{f"{path}__isnull": False}) & ~exact

    return build


def _manager(c: Condition, b: Build) -> Q:
    ids = [int(v) for v in c.value if v.isdigit()]
    q = Q(manager_id__in=ids)
    if "none" in c.value:
        q |= Q(manager__isnull=True)
    return ~q if c.operator == "not_in" else q


def _city(c: Condition, b: Build) -> Q:
    from lavka.customers.models import CustomerAddress

    main = CustomerAddress.objects.filter(customer_id=OuterRef("pk"), is_main=True)
    op = c.operator
    if op == "empty":
        return ~Q(Exists(main.exclude(city="")))
    if op == "not_empty":
        return Q(Exists(main.exclude(city="")))
    lookup = "city__icontains" if "contains" in op else "city__iexact"
    found = Q(Exists(main.filter(**{lookup: c.value})))
    return ~found if op in ("ne", "not_contains") else found


def _tags(c: Condition, b: Build) -> Q:
    from lavka.customers.models import Customer

    links = Customer.tags.through.objects.filter(customer_id=OuterRef("pk"))
    if c.operator == "all":
        return functools.reduce(operator.and_, (Q(Exists(links.filter(tag__name=n))) for n in c.value))
    found = Q(Exists(links.filter(tag__name__in=c.value)))
    return ~found if c.operator == "none" else found


def consent(channel: str, purpose: str) -> Builder:
    def build(c: Condition, b: Build) -> Q:
        from lavka.customers.models import Consent

        granted = Consent.objects.filter(
            customer_id=OuterRef("pk"), channel=channel, purpose=purpose, granted=True
        )
        return Q(Exists(granted)) if c.value else ~Exists(granted)

    return build


def counted_orders(c: Condition, b: Build) -> QuerySet:
    """The orders an order-history condition looks at: those that count (not cancelled), in its period."""
    from lavka.orders.models import Order

    orders = Order.objects.counted().order_by()
    return orders.filter(c.period.q("created_at", b.now)) if c.period else orders


def bought(lookup: str, expand: Callable[[list[str]], Any] | None = None) -> Builder:
    """Some counted order of the period has a line (or is) matching `lookup__in` the values."""

    def build(c: Condition, b: Build) -> Q:
        values = expand(c.value) if expand else c.value
        orders = counted_orders(c, b).filter(customer_id=OuterRef("pk"), **{f"{lookup}__in": values})
        found = Q(Exists(orders))
        return ~found if c.operator == "none" else found

    return build


def aggregate(expression: Callable[[], Any]) -> Builder:
    """Count or revenue of the period's counted orders against the value. A customer without such
    orders has 0: when 0 satisfies the comparison, the query keeps everyone except the customers
    whose orders fail it, so those with no orders at all are in."""

    def build(c: Condition, b: Build) -> Q:
        per_customer = counted_orders(c, b).values("customer_id").annotate(amount=expression())
        test = compare("amount", c, b)
        zero_in = holds(c.operator, 0, c.value)
        if b.correlated:
            mine = per_customer.filter(customer_id=OuterRef("pk"))
            failing = Exists(mine.filter(~test))
            return ~failing if zero_in else Q(Exists(mine.filter(test)))
        if zero_in:
            return ~Q(pk__in=per_customer.filter(~test).values("customer_id"))
        return Q(pk__in=per_customer.filter(test).values("customer_id"))

    return build


def _ids(values: Iterable[str]) -> list[int]:
    return [int(v) for v in values if v.isascii() and v.isdigit() and len(v) < 19]


CATEGORY_DEPTH = 5  # levels below a chosen category that still count as it


def _with_subcategories(values: list[str]) -> QuerySet:
    """The categories asked for and those below them, as a subquery (so the segment stays one
    statement; a recursive query would need raw SQL, and shops' trees are shallow)."""
    from lavka.catalog.models import Category

    ids = _ids(values)
    below = functools.reduce(
        operator.or_,
        (Q(**{"__".join(["parent"] * depth) + "_id__in": ids}) for depth in range(1, CATEGORY_DEPTH + 1)),
    )
    return Category.objects.filter(Q(pk__in=ids) | below).values("pk")


# --- the catalogue ---------------------------------------------------------------------------------

CUSTOMER = gettext_lazy("Customer")
METRICS = gettext_lazy("Purchases (metrics)")
SCORES = gettext_lazy("Model scores")
TAGS = gettext_lazy("Tags and consent")
HISTORY = gettext_lazy("Order history in a period")

FIELDS: dict[str, Field] = {}


def register(field: Field) -> Field:
    """Add a field to the catalogue (the extension point for site behaviour and other sources)."""
    if field.kind not in OPERATORS:
        raise ValueError(f"unknown kind {field.kind!r}")
    FIELDS[field.name] = field
    return field


def _metric(name: str, label: Any, kind: str = "number", *, group: Any = METRICS, **options: Any) -> None:
    register(Field(f"metrics.{name}", label, group, kind, column(f"metrics__{name}"), **options))


def _catalogue() -> None:
    register(
        Field(
            "site",
            gettext_lazy("Site"),
            CUSTOMER,
            "choice",
            column("site__code"),
            choices=site_choices,
            fixed=True,
        )
    )
    register(
        Field(
            "sex",
            gettext_lazy("Sex"),
            CUSTOMER,
            "choice",
            column("sex", lambda v: "" if v == "unknown" else v),
            choices=static_choices(
                ("female", gettext_lazy("female")),
                ("male", gettext_lazy("male")),
                ("unknown", gettext_lazy("not known")),
            ),
            fixed=True,
        )
    )
    months = [(str(number), name) for number, name in MONTHS.items()]
    register(
        Field(
            "birthday_month",
            gettext_lazy("Birthday month"),
            CUSTOMER,
            "choice",
            column("birthday__month", int),
            choices=static_choices(*months),
            fixed=True,
        )
    )
    register(Field("vip", gettext_lazy("VIP"), CUSTOMER, "bool", column("vip")))
    register(Field("bad", gettext_lazy("Bad customer"), CUSTOMER, "bool", column("bad")))
    for name, label in (
        ("source", gettext_lazy("Source (utm_source)")),
        ("medium", gettext_lazy("Medium (utm_medium)")),
        ("campaign", gettext_lazy("Campaign (utm_campaign)")),
    ):
        register(Field(name, label, CUSTOMER, "string", column(name)))
    register(
        Field(
            "manager",
            gettext_lazy("Responsible manager"),
            CUSTOMER,
            "choice",
            _manager,
            choices=manager_choices,
            ids=True,
            keywords=("none",),
        )
    )
    register(Field("created_at", gettext_lazy("Created"), CUSTOMER, "date", column("created_at")))
    register(Field("city", gettext_lazy("City (main address)"), CUSTOMER, "string", _city))

    _metric("orders_count", gettext_lazy("Orders"), number="int")
    _metric("revenue", gettext_lazy("Revenue"))
    _metric("average_order", gettext_lazy("Average order"))
    _metric("first_order_at", gettext_lazy("First order"), "date", nullable=True)
    _metric("last_order_at", gettext_lazy("Last order"), "date", nullable=True)
    register(
        Field(
            "metrics.days_since_last_order",
            gettext_lazy("Days since the last order"),
            METRICS,
            "number",
            days_since("metrics__last_order_at"),
            nullable=True,
            number="int",
        )
    )
    _metric("days_between_orders", gettext_lazy("Days between orders"), nullable=True, number="float")
    _metric("returns_count", gettext_lazy("Returns"), number="int")
    _metric("complaints_count", gettext_lazy("Complaints"), number="int")
    for letter, label in (
        ("r", gettext_lazy("R score (1–5)")),
        ("f", gettext_lazy("F score (1–5)")),
        ("m", gettext_lazy("M score (1–5)")),
    ):
        _metric(f"{letter}_score", label, nullable=True, number="int")
    _metric("rfm_segment", gettext_lazy("RFM segment"), "choice", choices=rfm_choices)
    _metric("lifecycle", gettext_lazy("Lifecycle stage"), "choice", choices=lifecycle_choices, fixed=True)

    for name, label in (
        ("p_alive", gettext_lazy("P(alive), 0–1")),
        ("churn_risk", gettext_lazy("Churn risk, 0–1")),
        ("predicted_value", gettext_lazy("Predicted value")),
        ("expected_purchases_30", gettext_lazy("Expected purchases, 30 days")),
        ("expected_purchases_90", gettext_lazy("Expected purchases, 90 days")),
        ("expected_purchases_365", gettext_lazy("Expected purchases, 365 days")),
        ("expected_average_order", gettext_lazy("Expected average order")),
    ):
        _metric(name, label, group=SCORES, nullable=True, number="float")

    register(Field("tags", gettext_lazy("Tags"), TAGS, "tags", _tags, choices=tag_choices))
    for channel, purpose, label in channel_purposes():
        register(
            Field(
                f"consent.{channel}.{purpose}",
                format_lazy("{}: {}", gettext_lazy("Consent"), label),
                TAGS,
                "bool",
                consent(channel, purpose),
            )
        )

    register(
        Field(
            "orders.count",
            gettext_lazy("Number of orders"),
            HISTORY,
            "amount",
            aggregate(lambda: Count("*")),
            number="int",
            period=True,
        )
    )
    register(
        Field(
            "orders.revenue",
            gettext_lazy("Revenue of orders"),
            HISTORY,
            "amount",
            aggregate(lambda: Sum("total_summ")),
            period=True,
        )
    )
    register(
        Field(
            "orders.category",
            gettext_lazy("Bought from category"),
            HISTORY,
            "set",
            bought("items__offer__product__category_id", _with_subcategories),
            choices=site_scoped("catalog.Category", lambda c: f"{c.name} · {c.site.code}"),
            ids=True,
            period=True,
        )
    )
    register(
        Field(
            "orders.product",
            gettext_lazy("Bought product"),
            HISTORY,
            "set",
            bought("items__offer__product_id", _ids),
            choices=site_scoped("catalog.Product", lambda p: f"{p.name} · {p.site.code}"),
            ids=True,
            period=True,
        )
    )
    register(
        Field(
            "orders.method",
            gettext_lazy("Order method"),
            HISTORY,
            "set",
            bought("order_method__code"),
            choices=method_choices,
            period=True,
        )
    )
    register(
        Field(
            "orders.source",
            gettext_lazy("Order source (utm_source)"),
            HISTORY,
            "set",
            bought("source"),
            period=True,
        )
    )


_catalogue()
