"""Segment definitions: checked, compiled into one query over customers, counted, tested for one customer.

    {"op": "and", "items": [
        {"field": "metrics.lifecycle", "operator": "in", "value": ["sleeping"]},
        {"op": "or", "items": [
            {"field": "orders.category", "operator": "any", "value": ["12"], "period": {"last_days": 90}},
            {"field": "tags", "operator": "any", "value": ["vip"]}]}]}

`compile(definition)` gives a `Q` over `Customer`; the customers of a segment are always one SQL
statement, with no loop over customers in Python. Merged customers (`merged_into` set) are never in a
segment. A mistake in a definition is a ValidationError keyed by its path: `items.1.items.0.value`.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.analytics.models import Segment, SegmentMember
from lavka.analytics.segments.fields import (
    FIELDS,
    NO_VALUE,
    OPERATOR_LABELS,
    Build,
    Condition,
)
from lavka.analytics.segments.values import clean_period
from lavka.customers.models import Customer

MAX_DEPTH = 5  # groups inside groups
MAX_CONDITIONS = 50
GROUP_OPS = ("and", "or")
MEMBERSHIP_CHUNK = 100  # segments tested per query (SQLite allows 2000 result columns)


@dataclass(frozen=True)
class Group:
    op: str
    items: tuple[Group | Condition, ...]


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Checker:
    """Walks a definition once, gathering every mistake (the builder shows them all at once)."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.conditions = 0

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def absorb(self, exc: ValidationError) -> None:
        for key, messages in exc.message_dict.items():
            for message in messages:
                self.fail(key, message)

    def group(self, raw: Any, path: str, depth: int) -> Group | None:
        if not isinstance(raw, dict):
            self.fail(path or "op", _("A group is an object with “op” and “items”."))
            return None
        unknown = sorted(set(raw) - {"op", "items"})
        if unknown:
            self.fail(_key(path, unknown[0]), _("Unknown key."))
        op = raw.get("op", "and")
        if op not in GROUP_OPS:
            self.fail(_key(path, "op"), _("Use “and” or “or”."))
        items = raw.get("items", [])
        if not isinstance(items, list):
            self.fail(_key(path, "items"), _("A list of conditions and groups."))
            return None
        if depth > MAX_DEPTH:
            self.fail(path or "items", _("Groups nest at most %(n)s deep.") % {"n": MAX_DEPTH})
            return None
        nodes: list[Group | Condition] = []
        for index, item in enumerate(items):
            item_path = _key(path, f"items.{index}")
            node = (
                self.group(item, item_path, depth + 1)
                if isinstance(item, dict) and ("items" in item or "op" in item)
                else self.condition(item, item_path)
            )
            if node is not None:
                nodes.append(node)
        return Group(op if op in GROUP_OPS else "and", tuple(nodes))

    def condition(self, raw: Any, path: str) -> Condition | None:
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail(path, _("At most %(n)s conditions in a segment.") % {"n": MAX_CONDITIONS})
        if not isinstance(raw, dict):
            self.fail(path, _("A condition is an object with “field”, “operator” and “value”."))
            return None
        unknown = sorted(set(raw) - {"field", "operator", "value", "period"})
        if unknown:
            self.fail(_key(path, unknown[0]), _("Unknown key."))
        name = raw.get("field")
        field = FIELDS.get(name) if isinstance(name, str) else None
        if field is None:
            self.fail(_key(path, "field"), _("Unknown field “%(name)s”.") % {"name": str(name)[:80]})
            return None
        op = raw.get("operator")
        if op not in field.operators:
            self.fail(
                _key(path, "operator"),
                _("“%(op)s” is not an operator of “%(field)s”; use one of: %(ops)s.")
                % {"op": str(op)[:40], "field": name, "ops": ", ".join(field.operators)},
            )
            return None
        try:
            value = field.clean(op, raw.get("value"), _key(path, "value"))
            period = clean_period(raw.get("period"), _key(path, "period")) if field.period else None
        except ValidationError as exc:
            self.absorb(exc)
            return None
        if raw.get("period") not in (None, {}) and not field.period:
            self.fail(_key(path, "period"), _("This field takes no period."))
            return None
        return Condition(field, op, value, period)


def parse(definition: Any) -> Group:
    """The checked tree of a definition, or a ValidationError naming every mistake by its path."""
    checker = _Checker()
    tree = checker.group(definition if definition not in (None, {}) else {"items": []}, "", 0)
    if checker.errors or tree is None:
        raise ValidationError(checker.errors or {"op": [_("Not a segment definition.")]})
    return tree


def normalize(definition: Any) -> dict[str, Any]:
    """The definition as it is stored: checked, values in their plain JSON form."""
    return _plain(parse(definition))


def _plain(node: Group | Condition) -> dict[str, Any]:
    if isinstance(node, Group):
        return {"op": node.op, "items": [_plain(item) for item in node.items]}
    found: dict[str, Any] = {"field": node.field.name, "operator": node.operator}
    if node.operator not in NO_VALUE:
        found["value"] = _json_value(node.value)
    if node.period is not None:
        found["period"] = node.period.as_json()
    return found


def _json_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bool, int, float, str)):
        return value
    number = value.normalize()  # Decimal: an int when whole, else a float for JSON
    return int(number) if number == number.to_integral_value() else float(number)


def compile(definition: Any, *, now: Any = None, correlated: bool = False) -> Q:  # noqa: A001
    """A `Q` over Customer that holds for the definition's customers (merged ones aside: see
    `base()`). `correlated`: tuned for testing one customer rather than counting many."""
    build = Build(now or timezone.now(), correlated)
    return _q(parse(definition), build) or Q()


def _q(node: Group | Condition, b: Build) -> Q | None:
    """None stands for "everyone" (an empty group), so that an OR with it stays everyone."""
    if isinstance(node, Condition):
        q = node.field.build(node, b)
        return q if isinstance(q, Q) else Q(q)
    parts = [_q(item, b) for item in node.items]
    if node.op == "or":
        if not parts or any(p is None for p in parts):
            return None
        return functools.reduce(operator.or_, parts)  # type: ignore[arg-type]
    present = [p for p in parts if p is not None]
    return functools.reduce(operator.and_, present) if present else None


def base(site_id: int | None = None) -> QuerySet[Customer]:
    customers = Customer.objects.filter(merged_into__isnull=True)
    return customers.filter(site_id=site_id) if site_id is not None else customers


def matching(definition: Any, *, site_id: int | None = None, correlated: bool = False) -> QuerySet[Customer]:
    """The customers a definition selects now (on one site, if given)."""
    return base(site_id).filter(compile(definition, correlated=correlated))


def customers(segment: Segment, *, correlated: bool = False) -> QuerySet[Customer]:
    """A dynamic segment's customers as of now; a frozen one's as snapshotted (still without merged)."""
    if segment.kind == Segment.Kind.FROZEN:
        members = SegmentMember.objects.filter(segment_id=segment.pk).values("customer_id")
        return base().filter(pk__in=members)
    return matching(segment.definition, site_id=segment.site_id, correlated=correlated)


def count(segment_or_definition: Segment | Any, *, site_id: int | None = None) -> int:
    if isinstance(segment_or_definition, Segment):
        return count_of(customers(segment_or_definition))
    return count_of(matching(segment_or_definition, site_id=site_id))


def count_of(found: QuerySet[Customer]) -> int:
    """How many customers a segment query (perhaps narrowed further) holds."""
    if connection.vendor != "postgresql":
        return found.count()
    # PostgreSQL would first compile a query this costly to machine code (JIT), which takes longer
    # (~150 ms) than the count itself. SET LOCAL ends with the transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        return found.count()


def contains(segment: Segment, customer_id: int) -> bool:
    """Whether the customer is in the segment now (false for a definition that no longer checks)."""
    try:
        return customers(segment, correlated=True).filter(pk=customer_id).exists()
    except ValidationError:
        return False


SEGMENTS_SECONDS = 30.0
_segments: list[tuple[float, list[Segment]]] = []
_segments_lock = threading.Lock()


def all_segments() -> list[Segment]:
    """Every segment, from a short per-process cache (automation reads it for each event). Saving or
    deleting a segment clears it in this process; other processes catch up within SEGMENTS_SECONDS."""
    now = time.monotonic()
    with _segments_lock:
        if _segments and now - _segments[0][0] < SEGMENTS_SECONDS:
            return _segments[0][1]
    _watch_segments()
    found = list(Segment.objects.order_by("code"))
    with _segments_lock:
        _segments[:] = [(now, found)]
    return found


def forget_segments(**kwargs: Any) -> None:
    with _segments_lock:
        _segments.clear()


@functools.cache
def _watch_segments() -> None:
    for signal in (post_save, post_delete):
        signal.connect(forget_segments, sender=Segment, dispatch_uid=f"segments-cache-{signal}")


def memberships(customer_id: int, segments: list[Segment] | None = None) -> list[str]:
    """Codes of the segments the customer is in, tested in one query per 100 segments (no query at all
    while there are no segments)."""
    segments = all_segments() if segments is None else segments
    found: list[str] = []
    for start in range(0, len(segments), MEMBERSHIP_CHUNK):
        tests: dict[str, Exists] = {}
        codes: dict[str, str] = {}
        for index, segment in enumerate(segments[start : start + MEMBERSHIP_CHUNK]):
            try:
                members = customers(segment, correlated=True)
            except ValidationError:  # a field that has since gone away: it matches nobody
                continue
            alias = f"segment_{index}"
            tests[alias] = Exists(members.filter(pk=OuterRef("pk")))
            codes[alias] = segment.code
        if not tests:
            continue
        row = Customer.objects.filter(pk=customer_id).annotate(**tests).values(*tests).first()
        if row is not None:
            found += [codes[alias] for alias, held in row.items() if held]
    return found


def describe(definition: Any) -> str:
    """The definition in words: `Revenue ≥ 5000 and (Tags any of vip or Orders ≥ 3)`."""
    try:
        tree = parse(definition)
    except ValidationError:
        return _("(a definition with mistakes)")
    text = _words(tree, top=True)
    return text or _("all customers")


def _words(node: Group | Condition, *, top: bool = False) -> str:
    if isinstance(node, Condition):
        return _condition_words(node)
    joiner = f" {_('and') if node.op == 'and' else _('or')} "
    text = joiner.join(w for w in (_words(item) for item in node.items) if w)
    return text if top or len(node.items) < 2 else f"({text})"


def _condition_words(c: Condition) -> str:
    words = [str(c.field.label), str(OPERATOR_LABELS[c.operator])]
    value = c.value
    if isinstance(value, list) and c.field.choices is not None:
        labels = dict(c.field.choices(None))
        value = [labels.get(str(v), str(v)) for v in value]
    if c.operator == "between":
        words.append(f"{value[0]} … {value[1]}")
    elif isinstance(value, list):
        words.append(", ".join(str(v) for v in value))
    elif isinstance(value, bool):
        words.append(_("yes") if value else _("no"))
    elif value is not None:
        words.append(str(value))
    if c.period is not None:
        period = c.period.as_json()
        if "last_days" in period:
            words.append(_("in the last %(n)s days") % {"n": period["last_days"]})
        else:
            words.append(f"{period.get('from', '…')} — {period.get('to', '…')}")
    return " ".join(words)
