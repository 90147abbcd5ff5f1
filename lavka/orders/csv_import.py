"""`lavka import orders FILE.csv`: a shop's past orders from a CSV file, written by the bulk import.

The file goes through `lavka.orders.bulk` (the write path for imports: rows cleaned like the actions,
COPY on PostgreSQL, one history record per object, **no domain events**), so an import never fires an
automation rule, a message or a webhook (DESIGN.md §6), and the customers' order figures are derived in
the same transactions. The analytics tables learn of the orders from `lavka analytics refresh`.

The file: UTF-8 (a BOM is fine), comma-, semicolon- or tab-separated (guessed from the header), with a
header row naming the columns (case-insensitive; the aliases in COLUMNS are accepted):

- `customer_id` — the shop's own id of the customer (`Customer.external_id`). A customer not known yet
  is created, as of the date of their earliest order in the file, with the contact columns below taken
  from that row;
- `order_id` — the shop's own id of the order (`Order.external_id`). An order already imported is
  skipped (so running the same file again creates nothing); the same id twice in a file is an error;
- `date` — when the order was placed, kept as its `created_at`: `YYYY-MM-DD`, `DD.MM.YYYY`, either with
  a time `HH:MM[:SS]`, or ISO 8601 with an offset. No offset means the site's time zone; a date alone
  means noon, so that the day stays the same in any time zone. Dates in the future are refused;
- `amount` — what the order came to (`1234.50`, `1 234,50`). Required unless `items` is given;
- `items` (optional) — `SKU:quantity:price` lines separated by `;` (quantity defaults to 1, price to the
  offer's). A SKU the catalog lacks gets a placeholder offer named after the SKU (catalog action
  `offer_from_order_line`, keyed by the SKU as its external id, so a later catalog import fills it in).
  When `amount` differs from the lines' total, the difference is recorded as the delivery cost (more)
  or as the order's discount (less), so that the order's total is the amount. An order without items
  gets one line of the placeholder offer ITEMLESS_SKU at the amount: every order line needs an offer,
  and the total is always derived from the lines;
- `status` (optional) — a status code, or a status group code (`cancel`: the group's first status);
  default `complete`. Open statuses other than "new" (and complaints) need a `manager`; complaints
  get the reason "other";
- `manager` (optional) — the username of the responsible manager;
- `source`, `medium`, `campaign` (optional) — the order's UTM source; a new customer takes the one of
  their earliest order as their acquisition source;
- `first_name`, `last_name`, `email`, `phone` (optional) — contact data for a new customer and the order.

Rows with errors are reported by line number and column and not imported; the others are. The file is
read twice: first to check every row and to collect the customers and SKUs, then to write the orders.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.accounts.models import User
from lavka.catalog.actions import offer_from_order_line
from lavka.catalog.models import Offer
from lavka.core.actor import Actor
from lavka.core.models import Site
from lavka.core.money import ZERO
from lavka.core.validation import clean_decimal, clean_email, clean_phone, clean_text
from lavka.customers.models import Customer
from lavka.orders import bulk, totals
from lavka.orders.actions import MAX_ITEMS, ItemData
from lavka.orders.choices import Group
from lavka.orders.models import Order, Status

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "customer", "customer_external_id", "client_id"),
    "order_id": ("order_id", "order", "order_external_id", "external_id"),
    "date": ("date", "created_at", "order_date"),
    "amount": ("amount", "total", "total_summ", "sum"),
    "items": ("items", "lines"),
    "status": ("status",),
    "manager": ("manager",),
    "source": ("source", "utm_source"),
    "medium": ("medium", "utm_medium"),
    "campaign": ("campaign", "utm_campaign"),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "email": ("email",),
    "phone": ("phone",),
}
REQUIRED = ("customer_id", "order_id", "date")
DEFAULT_STATUS = "complete"
ITEMLESS_SKU = "lavka-import-no-items"
CHUNK = 1000  # rows checked against the database at a time (known orders, customers)
DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


class FileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, a required column missing)."""


@dataclass
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class Report:
    rows: int = 0
    imported: int = 0
    already_imported: int = 0
    customers_created: int = 0
    offers_created: int = 0
    errors: list[LineError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return len({e.line for e in self.errors})


@dataclass
class _Line:
    """One row of the file, checked."""

    line: int
    customer: str
    order: str
    created_at: datetime.datetime
    amount: Decimal | None
    items: list[tuple[str, Decimal, Decimal | None]]  # SKU, quantity, price (None: the offer's)
    status: Status
    manager: User | None
    utm: dict[str, str]
    contact: dict[str, str]


@dataclass
class _NewCustomer:
    created_at: datetime.datetime
    contact: dict[str, str]
    utm: dict[str, str]


class Progress:
    """A progress bar on a terminal (redrawn in place); elsewhere a line every tenth of the way."""

    def __init__(self, total: int, label: str, out: TextIO | None) -> None:
        self.total, self.label, self.out = max(total, 1), label, out
        self.tty = bool(out is not None and getattr(out, "isatty", lambda: False)())
        self.shown = -1
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        if self.out is None:
            return
        share = min(done / self.total, 1.0)
        step = int(share * (100 if self.tty else 10))
        if step == self.shown:
            return
        self.shown = step
        elapsed = time.monotonic() - self.started
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {elapsed:5.1f} s")
        else:
            self.out.write(f"{self.label}: {done}/{self.total} ({share:.0%}) {elapsed:.1f} s\n")
        self.out.flush()

    def finish(self) -> None:
        if self.out is not None and self.tty:
            self.out.write("\n")
            self.out.flush()


@dataclass
class _Checked:
    """What the first pass learns: the rows in error, the customers and SKUs the file names."""

    bad_lines: set[int] = field(default_factory=set)
    customers: dict[str, _NewCustomer] = field(default_factory=dict)
    prices: dict[str, Decimal | None] = field(default_factory=dict)  # SKU → the first price given
    itemless: bool = False


def import_orders_csv(
    site: Site,
    path: str | Path,
    *,
    actor: Actor | None = None,
    encoding: str = "utf-8-sig",
    progress: TextIO | None = None,
) -> Report:
    """Import the orders of the CSV file at `path` into `site`; see the module docstring for the format.

    `progress`: where to draw the progress bars (the CLI passes stderr)."""
    started = time.monotonic()
    actor = actor or Actor.importer("csv import")
    report = Report()
    checker = _Checker(site)
    checked = _check(path, encoding, checker, report, Progress(_count_lines(path) - 1, "checking", progress))
    customer_ids = _customers(site, checked.customers, actor, report)
    offers = _offers(site, checked.prices, checked.itemless, actor, report)

    bar = Progress(report.rows, "importing", progress)
    lines: list[int] = []  # the file line of each row handed to the bulk import, by its index there
    passed = [len(checked.bad_lines)]  # rows not handed over: in error, or imported before

    def rows() -> Iterator[bulk.OrderRow]:
        good = (checker.line(n, v) for n, v in _rows(path, encoding) if n not in checked.bad_lines)
        for chunk in _chunks(good, CHUNK):
            known = set(
                Order.objects.filter(site=site, external_id__in=[p.order for p in chunk]).values_list(
                    "external_id", flat=True
                )
            )
            for parsed in chunk:
                customer_id = customer_ids.get(parsed.customer)
                if parsed.order in known:
                    report.already_imported += 1
                elif not isinstance(customer_id, int):
                    report.errors.append(LineError(parsed.line, "customer_id", str(customer_id)))
                else:
                    lines.append(parsed.line)
                    yield _order_row(parsed, customer_id, offers)
                    continue
                passed[0] += 1

    result = bulk.import_orders(site, rows(), actor=actor, progress=lambda n: bar.update(n + passed[0]))
    bar.update(report.rows)
    bar.finish()
    for error in result.errors:
        report.errors.append(LineError(lines[error.index], _column(error.field), error.message))
    report.imported = result.created
    report.errors.sort(key=lambda e: e.line)
    report.seconds = time.monotonic() - started
    return report


def _check(path: str | Path, encoding: str, checker: _Checker, report: Report, bar: Progress) -> _Checked:
    """The first pass: every row checked; the customers (with their earliest order) and SKUs gathered."""
    checked = _Checked()
    seen_orders: dict[str, int] = {}
    for number, values in _rows(path, encoding):
        report.rows += 1
        bar.update(report.rows)
        try:
            parsed = checker.line(number, values)
            if parsed.order in seen_orders:
                first = seen_orders[parsed.order]
                raise ValidationError({"order_id": _("Appears again (first on line %(n)s).") % {"n": first}})
        except ValidationError as exc:
            report.errors.append(_line_error(number, exc))
            checked.bad_lines.add(number)
            continue
        seen_orders[parsed.order] = number
        known = checked.customers.get(parsed.customer)
        if known is None or parsed.created_at < known.created_at:
            checked.customers[parsed.customer] = _NewCustomer(parsed.created_at, parsed.contact, parsed.utm)
        for sku, _quantity, price in parsed.items:
            if checked.prices.get(sku) is None:
                checked.prices[sku] = price
        checked.itemless = checked.itemless or not parsed.items
    bar.update(bar.total)
    bar.finish()
    return checked


# --- reading and checking --------------------------------------------------------------------


def _rows(path: str | Path, encoding: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) per data row; blank rows are left out."""
    try:
        source = open(path, newline="", encoding=encoding)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with source:
        try:
            head = source.readline()
        except UnicodeDecodeError as exc:
            raise FileError(f"{path} is not {encoding} text (try --encoding cp1251)") from exc
        delimiter = max(",;\t", key=head.count)
        reader = csv.reader(io.StringIO(head), delimiter=delimiter)
        header = next(reader, [])
        columns = _columns(header)
        reader = csv.reader(source, delimiter=delimiter)
        line = 2  # where the next record starts: a quoted value may span lines
        try:
            for record in reader:
                number, line = line, 2 + reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                yield number, {name: record[i] if i < len(record) else "" for name, i in columns.items()}
        except UnicodeDecodeError as exc:
            raise FileError(
                f"{path} is not {encoding} text after line {line} (try --encoding cp1251)"
            ) from exc
        except csv.Error as exc:
            raise FileError(f"{path}, line {line}: {exc}") from exc


def _count_lines(path: str | Path) -> int:
    """Lines in the file (the rows, give or take blank ones and values over several lines)."""
    try:
        with open(path, "rb") as source:
            return sum(block.count(b"\n") for block in iter(functools.partial(source.read, 1 << 20), b""))
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _columns(header: list[str]) -> dict[str, int]:
    """Our column name → its position in the file."""
    names = [cell.strip().lower().replace(" ", "_") for cell in header]
    found: dict[str, int] = {}
    for column, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in names:
                found[column] = names.index(alias)
                break
    missing = [c for c in REQUIRED if c not in found]
    if "amount" not in found and "items" not in found:
        missing.append("amount (or items)")
    if missing:
        raise FileError(
            "the header row lacks the column(s) " + ", ".join(missing) + f"; it has: {', '.join(header)}"
        )
    return found


class _Checker:
    """Checks one row at a time; reference books are looked up once."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.zone = ZoneInfo(site.time_zone)
        self.now = timezone.now()
        statuses = list(
            Status.objects.filter(is_active=True).select_related("group").order_by("ordering", "id")
        )
        self.statuses = {s.code: s for s in statuses}
        for status in statuses:
            self.statuses.setdefault(status.group.code, status)
        self.managers: dict[str, User | None] = {}
        # A customer's e-mail and phone come again on each of their rows: check each value once.
        self.email = functools.lru_cache(maxsize=65536)(clean_email)
        self.phone = functools.lru_cache(maxsize=65536)(functools.partial(clean_phone, site=site))

    def line(self, number: int, values: dict[str, str]) -> _Line:
        customer = clean_text(values.get("customer_id"), "customer_id", 100)
        order = clean_text(values.get("order_id"), "order_id", 100)
        if not customer:
            raise ValidationError({"customer_id": _("This field is required.")})
        if not order:
            raise ValidationError({"order_id": _("This field is required.")})
        created_at = self.date(values.get("date", ""))
        items = self.items(values.get("items", ""))
        amount_text = _number_text(values.get("amount", ""))
        if amount_text:
            amount: Decimal | None = clean_decimal(amount_text, "amount")
        elif items:
            amount = None
        else:
            raise ValidationError({"amount": _("Give the amount or the items.")})
        contact = {
            name: clean_text(values.get(name), name, 150)
            for name in ("first_name", "last_name")
            if values.get(name, "").strip()
        }
        if values.get("email", "").strip():
            contact["email"] = self.email(values["email"])
        if values.get("phone", "").strip():
            contact["phone"] = self.phone(values["phone"])
        utm = {
            name: clean_text(values.get(name), name, 255)
            for name in ("source", "medium", "campaign")
            if values.get(name, "").strip()
        }
        return _Line(
            number,
            customer,
            order,
            created_at,
            amount,
            items,
            self.status(values.get("status", "")),
            self.manager(values.get("manager", "")),
            utm,
            contact,
        )

    def date(self, raw: str) -> datetime.datetime:
        text = raw.strip()
        if not text:
            raise ValidationError({"date": _("This field is required.")})
        value = _parse_when(text)
        if value is None:
            raise ValidationError({"date": _("Enter a date: YYYY-MM-DD or DD.MM.YYYY, with HH:MM if known.")})
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            value = datetime.datetime.combine(value, datetime.time(12))  # noon: the same day everywhere
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        if value > self.now:
            raise ValidationError({"date": _("The date is in the future.")})
        if value.year < 1990:
            raise ValidationError({"date": _("Enter a valid date.")})
        return value

    def items(self, raw: str) -> list[tuple[str, Decimal, Decimal | None]]:
        lines = []
        for part in raw.split(";"):
            if not part.strip():
                continue
            sku, quantity, price = (p.strip() for p in (part.split(":") + ["", ""])[:3])
            if not sku or len(sku) > 100:
                raise ValidationError(
                    {"items": _("“%(part)s”: give the SKU first.") % {"part": part.strip()}}
                )
            try:
                lines.append(
                    (
                        sku,
                        clean_decimal(
                            _number_text(quantity) or "1",
                            "items",
                            minimum=Decimal("0.001"),
                            maximum=Decimal(100000),
                            places=3,
                        ),
                        clean_decimal(_number_text(price), "items") if price else None,
                    )
                )
            except ValidationError as exc:
                message = exc.message_dict["items"][0]
                raise ValidationError({"items": f"“{part.strip()}”: {message}"}) from exc
        if len(lines) > MAX_ITEMS:
            raise ValidationError({"items": _("At most %(n)s lines.") % {"n": MAX_ITEMS}})
        return lines

    def status(self, raw: str) -> Status:
        code = raw.strip() or DEFAULT_STATUS
        status = self.statuses.get(code)
        if status is None:
            raise ValidationError({"status": _("Unknown value “%(code)s”.") % {"code": code}})
        return status

    def manager(self, raw: str) -> User | None:
        username = raw.strip()
        if not username:
            return None
        if username not in self.managers:
            self.managers[username] = User.objects.filter(username=username).first()
        if self.managers[username] is None:
            raise ValidationError({"manager": _("Unknown user “%(name)s”.") % {"name": username}})
        return self.managers[username]


def _parse_when(text: str) -> datetime.date | datetime.datetime | None:
    """ISO 8601 (a date alone is a date), or DD.MM.YYYY with an optional HH:MM[:SS]."""
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        match = DOTTED.fullmatch(text)
        if match is None:
            return None
        day, month, year, hour, minute, second = match.groups()
        try:
            value = datetime.datetime(
                int(year) + (2000 if len(year) == 2 else 0),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
            )
        except ValueError:
            return None
        return value if hour else value.date()
    return value.date() if len(text) <= 10 else value


def _number_text(raw: str) -> str:
    """ "1 234,50" → "1234,50": thousands separated by spaces, as spreadsheets write them."""
    return "".join(raw.split()).replace("\u202f", "")


def _line_error(number: int, exc: ValidationError) -> LineError:
    if hasattr(exc, "error_dict"):
        name, messages = next(iter(exc.message_dict.items()))
        return LineError(number, _column(name), messages[0])
    return LineError(number, "row", exc.messages[0])


def _column(name: str) -> str:
    """The bulk import's field name as the file's column."""
    if name == "external_id":
        return "order_id"
    if name.startswith("items."):
        return "items"
    if name in ("customer", "__all__"):
        return "customer_id" if name == "customer" else "row"
    return name


def _chunks(rows: Iterator[_Line], size: int) -> Iterator[list[_Line]]:
    chunk: list[_Line] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- customers and offers --------------------------------------------------------------------


def _customers(
    site: Site, wanted: dict[str, _NewCustomer], actor: Actor, report: Report
) -> dict[str, int | str]:
    """The customer id for each external id of the file: found (a merged one: the customer it went
    into), else created through the bulk import; where that failed, why."""
    found: dict[str, int | str] = {}
    keys = list(wanted)
    for start in range(0, len(keys), CHUNK):
        for external_id, pk, merged_into in Customer.objects.filter(
            site=site, external_id__in=keys[start : start + CHUNK]
        ).values_list("external_id", "pk", "merged_into_id"):
            found[external_id] = merged_into or pk
    missing = [k for k in keys if k not in found]
    rows = []
    for key in missing:
        new = wanted[key]
        contact = dict(new.contact)
        phone = contact.pop("phone", None)
        rows.append(
            bulk.CustomerRow(
                external_id=key,
                created_at=new.created_at,
                phones=[phone] if phone else None,
                **contact,
                **new.utm,
            )
        )
    result = bulk.import_customers(site, rows, actor=actor)
    for key, pk in zip(missing, result.ids, strict=True):
        if pk is not None:
            found[key] = pk
    for error in result.errors:
        found[missing[error.index]] = _("The customer could not be created: %(why)s") % {
            "why": f"{error.field}: {error.message}"
        }
    report.customers_created = result.created
    return found


def _offers(
    site: Site, prices: dict[str, Decimal | None], itemless: bool, actor: Actor, report: Report
) -> dict[str, Offer]:
    """The offer for each SKU of the file (the site's active one with that SKU, the oldest if several),
    placeholders made for the unknown ones, and the placeholder for orders without items."""
    offers: dict[str, Offer] = {}
    skus = list(prices)
    for start in range(0, len(skus), CHUNK):
        for offer in (
            Offer.objects.for_site(site.pk)
            .filter(sku__in=skus[start : start + CHUNK])
            .select_related("product")
            .order_by("-id")
        ):
            offers[offer.sku] = offer
    made = [(sku, prices[sku]) for sku in skus if sku not in offers]
    if itemless:
        made.append((ITEMLESS_SKU, ZERO))
    before = Offer.objects.filter(product__site=site).count()
    for sku, price in made:
        name = _("Order imported without items") if sku == ITEMLESS_SKU else sku
        offer = offer_from_order_line(site, name=name, price=price or ZERO, actor=actor, external_id=sku)
        offers[sku] = Offer.objects.select_related("product").get(pk=offer.pk)
    report.offers_created = Offer.objects.filter(product__site=site).count() - before
    return offers


def _order_row(parsed: _Line, customer_id: int, offers: dict[str, Offer]) -> bulk.OrderRow:
    if parsed.items:
        items = [
            ItemData(offer_id=offers[sku].pk, quantity=quantity, initial_price=price)
            for sku, quantity, price in parsed.items
        ]
        lines_total = sum(
            (
                totals.line_total(offers[sku].price if price is None else price, quantity)
                for sku, quantity, price in parsed.items
            ),
            ZERO,
        )
    else:
        items = [ItemData(offer_id=offers[ITEMLESS_SKU].pk, quantity=1, initial_price=parsed.amount)]
        lines_total = parsed.amount or ZERO
    gap = ZERO if parsed.amount is None else parsed.amount - lines_total
    return bulk.OrderRow(
        customer_id=customer_id,
        external_id=parsed.order,
        created_at=parsed.created_at,
        status=parsed.status.code,
        status_updated_at=parsed.created_at,
        complaint_reason="other" if parsed.status.group.code == Group.COMPLAINT else "",
        manager=parsed.manager,
        manager_set=parsed.manager is not None,
        items=items,
        delivery_cost=gap if gap > 0 else None,
        discount_manual_amount=-gap if gap < 0 else None,
        **parsed.utm,
        **parsed.contact,
    )


def print_report(report: Report, out: TextIO | None = None, limit: int = 50) -> None:
    """The first `limit` errors and the summary."""
    out = out or sys.stdout
    for error in report.errors[:limit]:
        print(f"error: {error}", file=out)
    if len(report.errors) > limit:
        print(f"… and {len(report.errors) - limit} more errors", file=out)
    rate = report.rows / report.seconds if report.seconds else 0.0
    print(
        f"{report.rows} rows: {report.imported} orders imported, {report.already_imported} already there, "
        f"{report.rejected} rejected; {report.customers_created} customers and "
        f"{report.offers_created} placeholder offers created; {report.seconds:.1f} s ({rate:.0f} rows/s)",
        file=out,
    )
