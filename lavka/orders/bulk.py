"""Bulk import of customers and orders: the write path for imports, migrations and back-fills.

Rows are checked with the same cleaning helpers as the one-at-a-time actions (customers.actions,
orders.actions), then written batch by batch (bulk_create; COPY on PostgreSQL); each batch, with its
history records and the customers' figures, is one transaction. Orders are numbered from the site's
counter unless a row brings its own number (a migration keeps the old ones; the counter then moves past
them). Where this path departs from create_customer / create_order, on purpose:

- **No domain events.** DESIGN.md §6: imports and back-fills run with automation muted, so loading
  two years of old orders never messages a customer or fires a rule. Because no `orders.created`
  event reaches the `customers.refresh_stats` receiver, the import derives the customers' order
  figures itself, in the batch's transaction.
- **History** (source: the actor's, normally "import"): one `created` record per customer and one per
  order (its status, site and number), as retailCRM's history feed shows a created order as one
  record; the imported values themselves are in the rows. Field-by-field creation records, as the
  UI writes, would multiply a large import's time several times over.
- **Bad rows are skipped and reported** (row index, field, message) and never partly written; the
  good rows are imported. The import's own status and complaint fields may be set directly (an old
  order arrives complete), but a non-new open order still needs a responsible manager.
- Rows reference existing customers (`customer` or `customer_id`): import the customers first.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.catalog.models import Offer
from lavka.core import history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import HistoryRecord, Site
from lavka.core.money import ZERO, to_money
from lavka.core.validation import clean_text
from lavka.customers import actions as customer_actions
from lavka.customers.actions import CustomerData
from lavka.customers.choices import Channel, Purpose
from lavka.customers.models import Consent, Customer, CustomerAddress, CustomerPhone
from lavka.orders import actions as order_actions
from lavka.orders import numbering, totals
from lavka.orders.actions import OrderData
from lavka.orders.choices import ComplaintReason, Group
from lavka.orders.models import Order, OrderItem, OrderMethod, OrderType, Payment

BATCH_SIZE = 1000
COMPLAINT_REASONS = frozenset(ComplaintReason.values)
Row = TypeVar("Row")


@dataclass
class CustomerRow(CustomerData):
    """A customer as an import gives it: CustomerData plus when they became a customer."""

    created_at: datetime.datetime | None = None


@dataclass
class OrderRow(OrderData):
    """An order as an import gives it: OrderData plus what only a migration sets directly."""

    customer_id: int | None = None
    status_updated_at: datetime.datetime | None = None
    status_comment: str = ""
    complaint_reason: str = ""
    complaint_comment: str = ""


@dataclass
class RowError:
    index: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.index}: {self.field}: {self.message}"


@dataclass
class ImportResult:
    ids: list[int | None] = field(default_factory=list)  # per input row; None where rejected
    errors: list[RowError] = field(default_factory=list)

    @property
    def created(self) -> int:
        return len(self.ids) - len(self.errors)

    def reject(self, index: int, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            name, messages = next(iter(exc.message_dict.items()))
        else:
            name, messages = NON_FIELD_ERRORS, exc.messages
        self.errors.append(RowError(index, name, messages[0]))


def _insert(rows: Iterable[models.Model]) -> None:
    """bulk_create; on PostgreSQL, COPY with ids drawn from the table's sequence: several times faster."""
    objs = list(rows)
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    meta = model._meta
    fields = meta.concrete_fields
    relations = [f for f in fields if f.is_relation]
    stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    adapted = [(i, f) for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if isinstance(meta.pk, models.AutoField):
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(objs)],
            )
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
        with cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
        ) as copy:
            for obj in objs:
                for f in relations:  # a foreign key to an object that got its id just now
                    if getattr(obj, f.attname) is None and f.is_cached(obj):
                        related = f.get_cached_value(obj)
                        setattr(obj, f.attname, related.pk if related is not None else None)
                for f in stamped:
                    f.pre_save(obj, True)
                row = [getattr(obj, f.attname) for f in fields]
                for i, f in adapted:
                    row[i] = f.get_db_prep_save(row[i], connection)
                copy.write_row(row)
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


class _Statistics:
    """Keeps PostgreSQL's planner statistics in step with a large import.

    Each batch looks rows up (numbers taken, customers' figures); the planner picks index plans for that
    only once its statistics know how far the tables grew, and autovacuum may be off or lag behind a bulk
    load. So: ANALYZE the tables whenever the import has added as many rows as the planner thought the
    main one had (at least 5,000), and once more at the end if it did. The history table is among them:
    the API's feed reads it by id right after an import, and a plan made for an empty table sorts it.
    """

    def __init__(self, *models: type[models.Model]) -> None:
        self.tables = [m._meta.db_table for m in models]
        self.known, self.added, self.analyzed = self.planned_rows(), 0, False

    def step(self, added: int) -> None:
        self.added += added
        if self.added >= max(5000, self.known):
            self.analyze()

    def finish(self) -> None:
        if self.analyzed and self.added:
            self.analyze()

    def planned_rows(self) -> int:
        if connection.vendor != "postgresql":
            return 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [self.tables[0]])
            return max(int(cursor.fetchone()[0]), 0)  # -1: never analyzed

    def analyze(self) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in self.tables))
            self.known, self.added, self.analyzed = self.planned_rows(), 0, True


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[tuple[int, Row]]]:
    numbered = enumerate(rows)
    while batch := list(islice(numbered, size)):
        yield batch


# --- customers -------------------------------------------------------------------------------


@dataclass
class _NewCustomer:
    customer: Customer
    phones: list[str]
    address: dict[str, str] | None
    tags: list[str]
    consents: dict[tuple[str, str], bool]
    consent_source: str


def _prepare_customer(site: Site, row: CustomerRow, actor: Actor) -> _NewCustomer:
    values = customer_actions._clean(site, row)
    phones = customer_actions._clean_phones(site, row.phones or [])
    address = customer_actions._clean_address(row.address) if row.address else None
    consents = dict(row.consents or {})
    if any(c not in Channel.values or p not in Purpose.values for c, p in consents):
        raise ValidationError({"consents": _("Unknown channel or purpose.")})
    tags = sorted({clean_text(name, "tags", 100) for name in row.tags or () if str(name).strip()})
    customer = Customer(
        site=site, created_at=row.created_at or timezone.now(), created_by=actor.user, **values
    )
    source = (row.consent_source or actor.source)[:100]
    return _NewCustomer(
        customer, phones, address if address and any(address.values()) else None, tags, consents, source
    )


def _write_customers(site: Site, new: list[_NewCustomer], actor: Actor) -> None:
    _insert([n.customer for n in new])
    _insert(
        CustomerPhone(customer=n.customer, number=number, position=i)
        for n in new
        for i, number in enumerate(n.phones)
    )
    _insert(CustomerAddress(customer=n.customer, is_main=True, **n.address) for n in new if n.address)
    _insert(
        Consent(
            customer=n.customer,
            channel=channel,
            purpose=purpose,
            granted=bool(granted),
            changed_at=n.customer.created_at,
            source=n.consent_source,
        )
        for n in new
        for (channel, purpose), granted in n.consents.items()
    )
    tag_names = sorted({name for n in new for name in n.tags})
    if tag_names:
        tags = {tag.name: tag for tag in customer_actions._tags(tag_names)}
        _insert(
            Customer.tags.through(customer_id=n.customer.pk, tag_id=tags[name].pk)
            for n in new
            for name in n.tags
        )
    history.write(
        (
            Change(
                customer_actions.ENTITY,
                n.customer.pk,
                "id",
                None,
                n.customer.pk,
                created=True,
                context={"site": site.code},
            )
            for n in new
        ),
        actor,
        insert=_insert,
    )


def import_customers(
    site: Site,
    rows: Iterable[CustomerRow],
    *,
    actor: Actor,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create customers from `rows`; returns their ids (None for a rejected row) and the errors."""
    result = ImportResult()
    statistics = _Statistics(Customer, CustomerPhone, CustomerAddress, Consent, HistoryRecord)
    for batch in _batches(rows, batch_size):
        prepared: list[tuple[int, _NewCustomer]] = []
        for index, row in batch:
            try:
                prepared.append((index, _prepare_customer(site, row, actor)))
            except ValidationError as exc:
                result.reject(index, exc)
        prepared = _unique_external_ids(
            site, Customer, prepared, lambda n: n.customer.external_id, result, _("Customer already exists.")
        )
        with transaction.atomic():
            _write_customers(site, [n for _i, n in prepared], actor)
        _collect_ids(result, batch, {i: n.customer.pk for i, n in prepared})
        statistics.step(len(prepared))
        if progress:
            progress(len(result.ids))
    statistics.finish()
    return result


def _unique_external_ids(
    site: Site,
    model: Any,
    prepared: list[tuple[int, Row]],
    external_id: Callable[[Row], str | None],
    result: ImportResult,
    message: str,
) -> list[tuple[int, Row]]:
    """Drop rows whose external ID is already taken, in the database or earlier in the batch."""
    wanted = [external_id(p) for _i, p in prepared if external_id(p)]
    seen = set(model.objects.filter(site=site, external_id__in=wanted).values_list("external_id", flat=True))
    kept = []
    for index, item in prepared:
        key = external_id(item)
        if key and key in seen:
            result.reject(index, ValidationError({"external_id": message}))
            continue
        if key:
            seen.add(key)
        kept.append((index, item))
    return kept


def _collect_ids(result: ImportResult, batch: list[tuple[int, Any]], ids: dict[int, int]) -> None:
    result.ids.extend(ids.get(index) for index, _row in batch)


# --- orders ----------------------------------------------------------------------------------


@dataclass
class _NewOrder:
    order: Order
    items: list[OrderItem]
    payments: list[Payment]


class _Lookups:
    """Reference books and offers, looked up once per import instead of once per row."""

    def __init__(self) -> None:
        self.ref = functools.lru_cache(maxsize=None)(order_actions._ref)
        self.initial_status = functools.lru_cache(maxsize=None)(order_actions._initial_status)

    @staticmethod
    def offers(rows: Iterable[OrderRow]) -> dict[int, Offer]:
        ids = set()
        for row in rows:
            for item in row.items or ():
                try:
                    offer_id = int(item.offer_id)
                except (TypeError, ValueError):
                    continue  # _clean_items names the bad line
                if 0 < offer_id < 2**63:
                    ids.add(offer_id)
        return Offer.objects.select_related("product").in_bulk(ids)


def _prepare_order(
    site: Site,
    row: OrderRow,
    customers: dict[int, dict[str, Any]],
    offers: dict[int, Offer],
    lookups: _Lookups,
    actor: Actor,
) -> _NewOrder:
    values = order_actions._clean_fields(site, row, lookups.ref)
    order_type = lookups.ref(
        OrderType,
        row.order_type,
        "order_type",
        default="default_for_api" if actor.source == "api" else "default_for_crm",
    )
    if "order_method" not in values:
        values["order_method"] = lookups.ref(OrderMethod, None, "order_method")
    status = lookups.initial_status(order_type, row.status)
    if status.group.code not in (Group.NEW, *Group.CLOSED) and not values.get("manager"):
        raise ValidationError({"manager": _("An order in this status needs a responsible manager.")})
    if (row.complaint_reason and row.complaint_reason not in COMPLAINT_REASONS) or (
        status.group.code == Group.COMPLAINT and not row.complaint_reason
    ):
        raise ValidationError({"complaint_reason": _("Choose the reason of the complaint.")})
    customer_id = row.customer.pk if row.customer is not None else row.customer_id
    if customer_id is None:
        raise ValidationError({"customer": _("Choose a customer or enter a new one.")})
    contact = customers.get(customer_id)
    if contact is None:
        raise ValidationError({"customer": _("Unknown customer.")})
    for name, value in contact.items():
        if not values.get(name):
            values[name] = value
    lines = order_actions._clean_items(site, row.items or [], offers)
    payments = [
        Payment(**order_actions._clean_payment(p, f"payments.{i}", lookups.ref))
        for i, p in enumerate(row.payments or [])
    ]
    created_at = values.pop("created_at", None) or timezone.now()
    order = Order(
        site=site,
        number=clean_text(row.number, "number", 64) if row.number else "",
        order_type=order_type,
        status=status,
        created_by=actor.user,
        customer_id=customer_id,
        created_at=created_at,
        status_updated_at=row.status_updated_at or created_at,
        status_comment=clean_text(row.status_comment, "status_comment", 1000),
        complaint_reason=row.complaint_reason or "",
        complaint_comment=clean_text(row.complaint_comment, "complaint_comment", 5000),
        **values,
    )
    items = []
    for _data, offer, item_values in lines:
        item = OrderItem(order=order)
        order_actions._apply_item(item, offer, item_values)
        items.append(item)
    for payment in payments:
        payment.order = order
    _derive_totals(order, items, payments)
    return _NewOrder(order, items, payments)


def _derive_totals(order: Order, items: list[OrderItem], payments: list[Payment]) -> None:
    """As orders.actions.recalculate, from the lines in hand; fully paid when the last payment was."""
    order.summ, order.purchase_summ, order.total_summ = totals.order_totals(
        [(i.summ, to_money(i.purchase_price * i.quantity)) for i in items],
        delivery_cost=order.delivery_cost,
        discount_amount=order.discount_manual_amount,
        discount_percent=order.discount_manual_percent,
    )
    paid = [p for p in payments if p.status.payment_complete]
    order.prepay_sum = to_money(sum((p.amount for p in paid), ZERO))
    if order.total_summ > 0 and order.prepay_sum >= order.total_summ:
        order.full_paid_at = max((p.paid_at for p in paid if p.paid_at), default=order.created_at)


def _contacts(site: Site, rows: Iterable[OrderRow]) -> dict[int, dict[str, Any]]:
    """The order's contact snapshot defaults, for the customers of the site the rows refer to."""
    ids = {row.customer.pk if row.customer is not None else row.customer_id for row in rows}
    ids = {pk for pk in ids if isinstance(pk, int) and 0 < pk < 2**63}  # anything else: "Unknown customer."
    found = {
        c["id"]: c
        for c in Customer.objects.active()
        .filter(site=site, pk__in=ids)
        .values("id", "first_name", "last_name", "patronymic", "email")
    }
    for phone in CustomerPhone.objects.filter(customer_id__in=found, position=0).values(
        "customer_id", "number"
    ):
        found[phone["customer_id"]]["phone"] = phone["number"]
    return {pk: {k: v for k, v in c.items() if k != "id"} for pk, c in found.items()}


def _take_numbers(site: Site, count: int, reserved: set[str]) -> list[str]:
    """`count` free order numbers from the site's count, asked for in as few statements as may be."""
    numbers: list[str] = []
    while len(numbers) < count:
        candidates = [f"{n}{site.order_suffix}" for n in numbering.take(site, count - len(numbers))]
        taken = reserved | set(
            Order.objects.filter(site=site, number__in=candidates).values_list("number", flat=True)
        )
        numbers += [c for c in candidates if c not in taken]
    return numbers


def _raise_counter(site: Site, numbers: Iterable[str]) -> None:
    """Imported numbers of the site's own form ("123T") move its count past them, so that new orders
    continue after the highest."""
    form = re.compile(rf"(\d{{1,18}}){re.escape(site.order_suffix)}")
    numbering.raise_to(site, max((int(m.group(1)) for m in map(form.fullmatch, numbers) if m), default=0))


def _unique_numbers(
    site: Site, prepared: list[tuple[int, _NewOrder]], result: ImportResult
) -> list[tuple[int, _NewOrder]]:
    given = [n.order.number for _i, n in prepared if n.order.number]
    seen = set(Order.objects.filter(site=site, number__in=given).values_list("number", flat=True))
    kept = []
    for index, new in prepared:
        number = new.order.number
        if number and number in seen:
            result.reject(index, ValidationError({"number": _("Order already exists.")}))
            continue
        if number:
            seen.add(number)
        kept.append((index, new))
    return kept


def _add_to_figures(order_ids: list[int]) -> None:
    """Add these new orders to their customers' figures (what customers.actions.refresh_stats derives),
    in one statement. Adding rather than recounting keeps a batch's cost flat however many orders the
    customers already have."""
    new = (
        Order.objects.filter(pk__in=order_ids)
        .counted()
        .order_by()
        .values("customer_id")
        .annotate(n=Count("id"), total=Sum("total_summ"), first=Min("created_at"), last=Max("created_at"))
    )
    sql, params = new.query.sql_with_params()
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:  # the ORM has no UPDATE … FROM; SQLite and PostgreSQL both do
        cursor.execute(
            f"UPDATE {table} SET orders_count = orders_count + f.n, total_summ = total_summ + f.total, "
            "first_order_at = CASE WHEN first_order_at <= f.first THEN first_order_at ELSE f.first END, "
            "last_order_at = CASE WHEN last_order_at >= f.last THEN last_order_at ELSE f.last END "
            f"FROM ({sql}) AS f WHERE {table}.id = f.customer_id",
            params,
        )


def _write_orders(site: Site, new: list[_NewOrder], actor: Actor) -> None:
    given = {n.order.number for n in new if n.order.number}
    if given:
        _raise_counter(site, given)
    numbers = iter(_take_numbers(site, len(new) - len(given), given) if len(given) < len(new) else ())
    for n in new:
        n.order.number = n.order.number or next(numbers)
    _insert([n.order for n in new])
    _insert([item for n in new for item in n.items])
    _insert([payment for n in new for payment in n.payments])
    changes = [
        Change(
            order_actions.ENTITY,
            n.order.pk,
            "status",
            None,
            {"code": n.order.status.code},
            created=True,
            context={"site": site.code, "number": n.order.number},
        )
        for n in new
    ]
    _add_to_figures([n.order.pk for n in new])
    history.write(changes, actor, insert=_insert)  # last: it holds the chain's lock until the commit


def import_orders(
    site: Site,
    rows: Iterable[OrderRow],
    *,
    actor: Actor,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create orders from `rows` (numbered from the site's counter unless a row gives its number)."""
    result = ImportResult()
    lookups = _Lookups()
    statistics = _Statistics(Order, OrderItem, Payment, Customer, HistoryRecord)
    for batch in _batches(rows, batch_size):
        batch_rows = [row for _i, row in batch]
        customers, offers = _contacts(site, batch_rows), lookups.offers(batch_rows)
        prepared: list[tuple[int, _NewOrder]] = []
        for index, row in batch:
            try:
                prepared.append((index, _prepare_order(site, row, customers, offers, lookups, actor)))
            except ValidationError as exc:
                result.reject(index, exc)
        prepared = _unique_external_ids(
            site, Order, prepared, lambda n: n.order.external_id, result, _("Order already exists.")
        )
        prepared = _unique_numbers(site, prepared, result)
        with transaction.atomic():
            _write_orders(site, [n for _i, n in prepared], actor)
        _collect_ids(result, batch, {i: n.order.pk for i, n in prepared})
        statistics.step(len(prepared))
        if progress:
            progress(len(result.ids))
    statistics.finish()
    return result
