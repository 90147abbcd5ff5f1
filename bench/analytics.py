"""Customer intelligence at scale on PostgreSQL: 1,000,000 customers and 10,000,000 orders.

    LAVKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_analytics \\
        .venv/bin/python bench/analytics.py --customers 1000000 --orders 10000000

Uses the database named by LAVKA_DATABASE_URL (create it first: `createdb … bench_analytics`), which
must hold no site other than the bench's own. It migrates it and, unless the dataset of the same size
and seed is there already (or with `--regenerate`), generates it:

- one site `bench` with the default reference books, 40 categories, 2,000 products and offers, and
  ad costs per source and month (about what each source's customers cost to acquire);
- customers acquired over `--years` (3) at a growing rate, each with an acquisition source, 5% of them
  never ordering; the buyers' orders follow BG/NBD (purchase rate ~ Gamma, dropout after each repeat
  purchase ~ Beta) with the rate scaled so that the orders add up to `--orders`, simulated in NumPy,
  and amounts from Gamma-Gamma (per-customer mean ~ 2,500 ₽);
- order statuses: the last three days' orders new, the rest complete, about 4.5% cancelled, 1%
  complaints and 1% returns; repeat orders from the customer's source or from e-mail; one or two lines
  per order (`--lines` 1.4 on average) whose totals add up to the order's;
- the customers' own order figures (count, revenue, first and last order) as the order desk keeps them.

The plan goes to PostgreSQL by binary COPY into two scratch tables, and the real tables are filled by
set-based INSERT … SELECT with the secondary indexes dropped and rebuilt afterwards (their definitions
are kept in `bench_saved_index` until they are back, so an interrupted run repairs itself) and foreign
key triggers off for the session (the data are consistent by construction). Then ANALYZE.

Measured, each against its target and against a baseline of the same run (a GROUP BY customer over
all orders, the least any per-customer figure costs):

  (a) the full `analytics refresh` (metrics, RFM, lifecycle, BG/NBD + Gamma-Gamma fits, scores written)
      ≤ 60 s, with the time of each step;
  (b) our BG/NBD + Gamma-Gamma fit against lifetimes 0.11.3 on the same buyers (bench/lifetime_fit.py):
      ≥ 10× faster, parameters equal to 1e-3;
  (c) a segment count with three conditions over the 1M customers < 0.5 s;
  (d) the owner's dashboard KPIs for the last 12 months < 1 s.

A part whose module is not there yet says so and is skipped. Exits 1 when a measured target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SITE = "bench"
REFRESH_TARGET = 60.0
SPEEDUP_TARGET = 10.0
PARAMETER_TOLERANCE = 1e-3
SEGMENT_TARGET = 0.5
DASHBOARD_TARGET = 1.0
NON_BUYERS = 0.05
CATEGORIES, PRODUCTS = 40, 2000
# source, share of new customers, cost of acquiring one (₽; 0: not paid for)
SOURCES = [
    ("", 0.30, 0),
    ("yandex", 0.25, 900),
    ("google", 0.15, 1100),
    ("vk", 0.15, 600),
    ("telegram", 0.10, 400),
    ("partner", 0.05, 1500),
]
# status code, share of the orders older than three days
STATUSES = [
    ("complete", 0.935),
    ("no-call", 0.015),
    ("no-product", 0.01),
    ("prices-did-not-suit", 0.01),
    ("cancel-other", 0.01),
    ("complaint", 0.01),
    ("return", 0.01),
]
OPEN_DAYS = 3  # orders of the last days are still new
# BG/NBD and Gamma-Gamma parameters of the simulation (the purchase rate is scaled to the order count)
R, A, B = 0.9, 2.0, 14.0
GG_P, GG_Q, GG_GAMMA = 6.0, 4.0, 1250.0
FIRST_NAMES = ["Анна", "Мария", "Елена", "Ольга", "Иван", "Сергей", "Дмитрий", "Алексей", "Наталья", "Павел"]
LAST_NAMES = ["Иванова", "Петрова", "Смирнова", "Кузнецов", "Попов", "Соколов", "Лебедев", "Новикова"]


STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {text}", flush=True)


def setup() -> None:
    if not os.environ.get("LAVKA_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("bench: set LAVKA_DATABASE_URL to a PostgreSQL database (…/bench_analytics), not SQLite")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    os.environ.setdefault("LAVKA_LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- SQL helpers --------------------------------------------------------------------------------------


def qn(name: str) -> str:
    from django.db import connection

    return connection.ops.quote_name(name)


def execute(sql: str, params: Iterable[Any] = ()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))


def scalar(sql: str, params: Iterable[Any] = ()) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return row[0] if row else None


def insert_select(model: Any, values: dict[str, str], source: str, params: Iterable[Any] = ()) -> None:
    """INSERT INTO the model's table SELECT …: `values` maps columns to SQL expressions over `source`;
    every other column gets the field's default (Django keeps defaults in Python, not in the table)."""
    from django.db import connection

    columns, expressions, defaults = [], [], []
    for f in model._meta.concrete_fields:
        columns.append(qn(f.column))
        if f.column in values:
            expressions.append(values[f.column])
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            expressions.append("now()")
        elif f.has_default() or (not f.null and f.empty_strings_allowed):  # CharField(blank=True): ""
            expressions.append(f"CAST(%s AS {f.db_type(connection)})")
            defaults.append(f.get_db_prep_save(f.get_default(), connection))
        elif f.null:
            expressions.append("NULL")
        else:
            raise ValueError(f"bench: no value for {model.__name__}.{f.name}")
    table = qn(model._meta.db_table)
    execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(expressions)} {source}",
        [*defaults, *params],
    )


def copy_binary(table: str, columns: dict[str, np.ndarray], chunk: int = 1_000_000) -> None:
    """COPY integer columns into `table` in PostgreSQL's binary format, built by NumPy (no Python loop
    over rows): per row a field count, then per field its length and big-endian value."""
    from django.db import connection

    kinds = {np.dtype(t): f">i{np.dtype(t).itemsize}" for t in (np.int8, np.int16, np.int32, np.int64)}
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for n, array in enumerate(columns.values()):
        layout += [(f"l{n}", ">i4"), (f"v{n}", kinds[array.dtype])]
    rows = len(next(iter(columns.values())))
    names = ", ".join(columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            block = np.empty(stop - start, dtype=layout)
            block["count"] = len(columns)
            for n, array in enumerate(columns.values()):
                block[f"l{n}"] = array.dtype.itemsize
                block[f"v{n}"] = array[start:stop]
            copy.write(block.tobytes())
        copy.write((-1).to_bytes(2, "big", signed=True))


# --- indexes off during the load, and back ---------------------------------------------------------------

Saved = list[tuple[str, str, str, str]]  # table, name, "index" or "constraint", definition


def drop_indexes(models: list[Any]) -> Saved:
    """Drop the secondary indexes and unique constraints of these tables; their definitions.

    Called inside the load's transaction: if the load fails, the indexes come back with the rollback."""
    from django.db import connection

    saved: Saved = []
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype = 'u'",
                [table],
            )
            saved += [(table, name, "constraint", definition) for name, definition in cursor.fetchall()]
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN"
                " (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass"
                " AND contype IN ('p', 'u'))",
                [table, table],
            )
            saved += [(table, name, "index", definition) for name, definition in cursor.fetchall()]
        for table, name, kind, _definition in saved:
            if kind == "constraint":
                cursor.execute(f"ALTER TABLE {qn(table)} DROP CONSTRAINT {qn(name)}")
            else:
                cursor.execute(f"DROP INDEX {qn(name)}")
    return saved


def restore_indexes(saved: Saved) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table, name, kind, definition in saved:
            if kind == "constraint":
                cursor.execute(f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(name)} {definition}")
            else:
                cursor.execute(definition)


# --- the dataset ------------------------------------------------------------------------------------------


def marker(customers: int, orders: int, seed: int, years: int, lines: float) -> str:
    return (
        f"bench/analytics dataset: customers={customers} orders={orders} seed={seed} years={years}"
        f" lines={lines}"
    )


def simulate(rng: np.random.Generator, buyers: int, orders: int, days: float) -> dict[str, np.ndarray]:
    """BG/NBD purchases of `buyers` customers born over `days` (growing: birth density rises
    linearly), the rate scaled so that all purchases (first ones included) come to about `orders`."""
    birth = days * np.sqrt(rng.random(buyers))  # days from the start to the first purchase
    rate = rng.gamma(R, 1.0, buyers)  # Gamma(r, 1): scaled below
    dropout = rng.beta(A, B, buyers)
    pilot = min(buyers, 100_000)  # the scale that gives the wanted orders, found on a sample

    def repeats(scale: float, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        customer, when = [], []
        t = birth[idx].copy()
        alive = np.ones(idx.size, dtype=bool)
        lam = rate[idx] * scale
        while True:
            active = np.flatnonzero(alive)
            if active.size == 0:
                break
            t[active] += rng.exponential(1.0, active.size) / lam[active]
            inside = t[active] <= days
            alive[active[~inside]] = False
            bought = active[inside]
            customer.append(idx[bought])
            when.append(t[bought])
            alive[bought[rng.random(bought.size) < dropout[idx[bought]]]] = False
        return np.concatenate(customer), np.concatenate(when)

    wanted = orders / buyers - 1  # repeat purchases per buyer
    sample = rng.choice(buyers, pilot, replace=False)
    # Without dropout a buyer would make scale · E[rate] · exposure repeat purchases: a lower bound.
    low = wanted / (R * float(np.mean(days - birth)))
    high = low * 100
    for _ in range(12):  # bisection on the log scale
        scale = (low * high) ** 0.5
        got = repeats(scale, sample)[0].size / pilot
        low, high = (scale, high) if got < wanted else (low, scale)
    scale = high * 1.01
    while True:  # a little too many, then trimmed to the count
        customer, when = repeats(scale, np.arange(buyers))
        if customer.size >= orders - buyers:
            break
        scale *= 1.02 * (orders - buyers) / max(customer.size, 1)
    extra = customer.size + buyers - orders
    keep = np.ones(customer.size, dtype=bool)
    keep[rng.choice(customer.size, extra, replace=False)] = False
    customer, when = customer[keep], when[keep]
    customer = np.concatenate([np.arange(buyers), customer])
    when = np.concatenate([birth, when])
    order = np.argsort(when, kind="stable")
    customer, when = customer[order], when[order]
    first = np.zeros(customer.size, dtype=bool)
    first[:buyers] = True
    first = first[order]
    # Gamma-Gamma amounts: a customer's mean spend ν⁻¹·p varies across customers.
    nu = rng.gamma(GG_Q, 1.0 / GG_GAMMA, buyers)
    amount = rng.gamma(GG_P, 1.0, customer.size) / nu[customer]
    cents = np.clip(np.round(amount * 100), 5000, 2_000_000_00).astype(np.int64)
    return {
        "customer": customer.astype(np.int32),
        "when": when,
        "cents": cents,
        "first": first,
        "birth": birth,
    }


def generate(site: Any, customers: int, orders: int, seed: int, years: int, lines: float) -> None:
    from django.db import connection, transaction

    from lavka.analytics.models import Cost, CostGroup, CostItem
    from lavka.customers.models import Customer
    from lavka.orders.models import Order, OrderItem, OrderMethod, OrderType, Status

    rng = np.random.default_rng(seed)
    end = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    days = years * 365.0
    start = end - datetime.timedelta(days=days)
    buyers = int(round(customers * (1 - NON_BUYERS)))
    say(f"generating {customers} customers ({buyers} buyers) and {orders} orders over {years} years")
    began = time.monotonic()
    plan = simulate(rng, buyers, orders, days)
    n = plan["customer"].size
    say(f"simulated {n} purchases in NumPy in {time.monotonic() - began:.1f} s")

    with transaction.atomic():
        offers = _catalog(site)
        customer_base = 1 + scalar(f"SELECT coalesce(max(id), 0) FROM {qn(Customer._meta.db_table)}")
        order_base = 1 + scalar(f"SELECT coalesce(max(id), 0) FROM {qn(Order._meta.db_table)}")
        item_base = 1 + scalar(f"SELECT coalesce(max(id), 0) FROM {qn(OrderItem._meta.db_table)}")
        status_ids = dict(Status.objects.values_list("code", "id"))

    # Per order: status, source, when it was closed, its lines.
    epoch_us = int((start - POSTGRES_EPOCH).total_seconds()) * 1_000_000
    created = epoch_us + np.floor(plan["when"] * 86400).astype(np.int64) * 1_000_000
    weights = np.array([w for _c, w in STATUSES])
    status = rng.choice(len(STATUSES), n, p=weights / weights.sum())
    status[plan["when"] > days - OPEN_DAYS] = len(STATUSES)  # the last days' orders: new
    codes = [c for c, _w in STATUSES] + ["new"]
    cancelled = np.isin(status, [codes.index(c) for c in CANCEL_CODES])
    closed_after = (rng.integers(1, 6, n) * 86400 + rng.integers(0, 86400, n)) * 1_000_000
    shares = np.array([s for _c, s, _cost in SOURCES])
    customer_source = rng.choice(len(SOURCES), customers, p=shares / shares.sum()).astype(np.int16)
    from_email = ~plan["first"] & (rng.random(n) < 0.4)
    order_source = np.where(from_email, len(SOURCES), customer_source[plan["customer"]]).astype(np.int16)
    two_lines = rng.random(n) < max(0.0, min(lines - 1.0, 1.0))
    # A line's product: two times in three from the customer's favourite category, else any.
    favourite = rng.integers(0, CATEGORIES, customers)[plan["customer"]]
    per_category = PRODUCTS // CATEGORIES

    def product() -> np.ndarray:
        liked = favourite * per_category + rng.integers(0, per_category, n)
        return np.where(rng.random(n) < 2 / 3, liked, rng.integers(0, PRODUCTS, n)).astype(np.int32)

    first_line = np.where(two_lines, plan["cents"] * 6 // 10, plan["cents"])

    # The customers' own figures over their counted orders, as the order desk keeps them.
    counted = ~cancelled
    who = plan["customer"][counted]
    count = np.bincount(who, minlength=customers).astype(np.int32)
    revenue = np.bincount(who, weights=plan["cents"][counted], minlength=customers).astype(np.int64)
    first_at = np.full(customers, np.iinfo(np.int64).max, dtype=np.int64)
    last_at = np.full(customers, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first_at, who, created[counted])
    np.maximum.at(last_at, who, created[counted])
    born = np.empty(customers, dtype=np.int64)
    born[:buyers] = epoch_us + np.floor(plan["birth"] * 86400).astype(np.int64) * 1_000_000
    born[buyers:] = epoch_us + rng.integers(0, int(days * 86400), customers - buyers) * 1_000_000

    began = time.monotonic()
    with transaction.atomic():
        execute("SET LOCAL session_replication_role = replica")  # no FK triggers: consistent by construction
        execute("SET LOCAL synchronous_commit = off")
        execute("SET LOCAL maintenance_work_mem = '512MB'")
        saved = drop_indexes([Order, OrderItem, Customer])
        execute("DROP TABLE IF EXISTS bench_people, bench_orders")
        execute(
            "CREATE UNLOGGED TABLE bench_people (id int4, born timestamptz, source int2, n int4,"
            " revenue int8, first_at timestamptz, last_at timestamptz)"
        )
        execute(
            "CREATE UNLOGGED TABLE bench_orders (id int4, customer int4, created timestamptz,"
            " closed timestamptz, cents int8, status int4, complaint bool, source int2, lines int2,"
            " offer0 int4, offer1 int4, cents0 int8)"
        )
        buyer = count > 0
        copy_binary(
            "bench_people",
            {
                "id": (customer_base + np.arange(customers)).astype(np.int32),
                "born": born,
                "source": customer_source,
                "n": count,
                "revenue": revenue,
                "first_at": np.where(buyer, first_at, born),  # born: a placeholder, nulled below
                "last_at": np.where(buyer, last_at, born),
            },
        )
        status_of = np.array([status_ids[c] for c in codes], dtype=np.int32)
        copy_binary(
            "bench_orders",
            {
                "id": (order_base + np.arange(n)).astype(np.int32),
                "customer": (customer_base + plan["customer"]).astype(np.int32),
                "created": created,
                "closed": np.where(status < len(STATUSES), created + closed_after, created),
                "cents": plan["cents"],
                "status": status_of[status],
                "complaint": (status == codes.index("complaint")).astype(np.int8),
                "source": order_source,
                "lines": (1 + two_lines).astype(np.int16),
                "offer0": offers[product()],
                "offer1": offers[product()],
                "cents0": first_line,
            },
        )
        execute("ANALYZE bench_people, bench_orders")
        say(f"plan copied to PostgreSQL in {time.monotonic() - began:.1f} s")
        del plan, created, first_line

        sources = "ARRAY[" + ", ".join(f"'{s}'" for s, _w, _c in SOURCES) + ", 'email']"
        names_first = "ARRAY[" + ", ".join(f"'{x}'" for x in FIRST_NAMES) + "]"
        names_last = "ARRAY[" + ", ".join(f"'{x}'" for x in LAST_NAMES) + "]"
        step = time.monotonic()
        insert_select(
            Customer,
            {
                "id": "p.id",
                "site_id": str(site.pk),
                "first_name": f"({names_first})[1 + mod(p.id, {len(FIRST_NAMES)})]",
                "last_name": f"({names_last})[1 + mod(p.id / 7, {len(LAST_NAMES)})]",
                "email": "'c' || p.id || '@example.com'",
                "source": f"({sources})[1 + p.source]",
                "orders_count": "p.n",
                "total_summ": "p.revenue / 100.0",
                "first_order_at": "CASE WHEN p.n > 0 THEN p.first_at END",
                "last_order_at": "CASE WHEN p.n > 0 THEN p.last_at END",
                "created_at": "p.born",
            },
            "FROM bench_people p",
        )
        say(f"customers inserted in {time.monotonic() - step:.1f} s")

        step = time.monotonic()
        order_type = OrderType.objects.order_by("-default_for_crm", "ordering").first()
        method = OrderMethod.objects.order_by("-default_for_crm", "ordering").first()
        insert_select(
            Order,
            {
                "id": "o.id",
                "site_id": str(site.pk),
                "number": f"o.id::text || '{site.order_suffix}'",
                "order_type_id": str(order_type.pk),
                "order_method_id": str(method.pk),
                "status_id": "o.status",
                "status_updated_at": "o.closed",
                "customer_id": "o.customer",
                "summ": "o.cents / 100.0",
                "total_summ": "o.cents / 100.0",
                "purchase_summ": "o.cents * 6 / 1000 / 100.0",
                "source": f"({sources})[1 + o.source]",
                "complaint_reason": "CASE WHEN o.complaint THEN 'other' ELSE '' END",
                "created_at": "o.created",
            },
            "FROM bench_orders o",
        )
        say(f"orders inserted in {time.monotonic() - step:.1f} s")

        step = time.monotonic()
        for k, offer, cents, where in (
            (0, "o.offer0", "o.cents0", ""),
            (1, "o.offer1", "o.cents - o.cents0", " WHERE o.lines = 2"),
        ):
            insert_select(
                OrderItem,
                {
                    "id": f"{item_base} + 2 * (o.id - {order_base}) + {k}",
                    "order_id": "o.id",
                    "offer_id": offer,
                    "product_name": f"'Товар ' || ({offer} - {int(offers[0])})",
                    "sku": f"'SKU-' || ({offer} - {int(offers[0])})",
                    "initial_price": f"({cents}) / 100.0",
                    "quantity": "1",
                    "purchase_price": f"({cents}) * 6 / 1000 / 100.0",
                    "summ": f"({cents}) / 100.0",
                },
                "FROM bench_orders o" + where,
            )
        say(f"order lines inserted in {time.monotonic() - step:.1f} s")

        for model in (Customer, Order, OrderItem):
            table = model._meta.db_table
            execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {qn(table)}))"
            )
        _costs(site, end, born, customer_source, Cost, CostGroup, CostItem)
        execute("DROP TABLE bench_people, bench_orders")
        site.description = marker(customers, orders, seed, years, lines)
        site.save(update_fields=["description"])
        step = time.monotonic()
        restore_indexes(saved)
        say(f"{len(saved)} indexes and unique constraints rebuilt in {time.monotonic() - step:.1f} s")
    step = time.monotonic()
    connection.close()
    execute("ANALYZE")
    say(f"ANALYZE in {time.monotonic() - step:.1f} s; written in {time.monotonic() - began:.1f} s")


POSTGRES_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # binary timestamps count from here


CANCEL_CODES = ("no-call", "no-product", "prices-did-not-suit", "cancel-other")
COMPLAINT_INDEX = [c for c, _w in STATUSES].index("complaint")


def _catalog(site: Any) -> np.ndarray:
    """Categories, products and their offers; the offer ids by product number (category by category)."""
    from lavka.catalog.models import Category, Offer, Product

    categories = Category.objects.bulk_create(
        Category(site=site, name=f"Категория {n + 1}") for n in range(CATEGORIES)
    )
    per_category = PRODUCTS // CATEGORIES
    products = Product.objects.bulk_create(
        Product(site=site, category=categories[n // per_category], name=f"Товар {n}", article=f"A-{n}")
        for n in range(PRODUCTS)
    )
    offers = Offer.objects.bulk_create(
        Offer(product=p, sku=f"SKU-{n}", name=p.name, price=100 + (n * 37) % 5000, purchase_price=60)
        for n, p in enumerate(products)
    )
    ids = np.array([o.pk for o in offers], dtype=np.int32)
    assert (np.diff(ids) == 1).all(), "the offers' names and SKUs are derived from consecutive ids"
    return ids


def _costs(
    site: Any,
    end: datetime.datetime,
    born: np.ndarray,
    source: np.ndarray,
    *models: Any,
) -> None:
    """Ad spend per paid source and month: that month's new customers from the source × its price."""
    Cost, CostGroup, CostItem = models
    group, _created = CostGroup.objects.get_or_create(code="marketing", defaults={"name": "Маркетинг"})
    item, _created = CostItem.objects.get_or_create(code="ads", defaults={"name": "Реклама", "group": group})
    month = np.array(
        [
            (POSTGRES_EPOCH + datetime.timedelta(microseconds=int(s))).strftime("%Y-%m")
            for s in born[:: max(1, born.size // 200_000)]
        ]
    )
    picked = source[:: max(1, born.size // 200_000)]
    scale = born.size / max(picked.size, 1)
    costs = []
    for index, (code, _share, price) in enumerate(SOURCES):
        if not price:
            continue
        months, counts = np.unique(month[picked == index], return_counts=True)
        for label, found in zip(months, counts, strict=True):
            first = datetime.date.fromisoformat(label + "-01")
            last = (first + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
            costs.append(
                Cost(
                    date_from=first,
                    date_to=last,
                    summ=round(float(found) * scale * price, 2),
                    cost_item=item,
                    source=code,
                    comment="bench",
                    created_at=end,
                )
            )
    for cost in Cost.objects.bulk_create(costs):
        cost.sites.add(site)


def prepare(args: argparse.Namespace) -> Any:
    """Migrate, and generate the dataset unless it is there already; the bench site."""
    from django.core.management import call_command

    from lavka.analytics import facts
    from lavka.core.models import Site

    step = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    if time.monotonic() - step > 5:  # a migration that back-fills (the order facts) on 10M orders
        say(f"migrated in {time.monotonic() - step:.1f} s")
    if Site.objects.exclude(code=SITE).exists():
        sys.exit("bench: this database holds other sites; use a database of its own (…/bench_analytics)")
    site, _created = Site.objects.get_or_create(code=SITE, defaults={"name": "Bench", "order_suffix": "B"})
    wanted = marker(args.customers, args.orders, args.seed, args.years, args.lines)
    if site.description == wanted and not args.regenerate:
        say(f"the dataset is there already ({wanted}); --regenerate to make it again")
        facts.sync()  # orders written without events since get their facts (none, normally)
        return site
    _empty()
    generate(site, args.customers, args.orders, args.seed, args.years, args.lines)
    # The orders went in by SQL, without events: the shop KPIs' order facts are rebuilt from them.
    step = time.monotonic()
    rebuilt = facts.rebuild()
    seconds = time.monotonic() - step
    say(f"order facts rebuilt in {seconds:.1f} s: {rebuilt.facts} orders, {rebuilt.cells} cells")
    return site


def _empty() -> None:
    """Remove a previous dataset (the database holds only the bench site: checked by the caller)."""
    from lavka.analytics.models import Cost, CostGroup, CostItem
    from lavka.catalog.models import Category, Offer, Product
    from lavka.customers.models import Customer
    from lavka.orders.models import Order, OrderItem

    tables = [
        m._meta.db_table
        for m in (OrderItem, Order, Customer, Offer, Product, Category, Cost, CostItem, CostGroup)
    ]
    execute("TRUNCATE " + ", ".join(qn(t) for t in tables) + " RESTART IDENTITY CASCADE")
    execute("UPDATE core_site SET description = '' WHERE code = %s", [SITE])


# --- the measurements -------------------------------------------------------------------------------------


def timed(call: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The median seconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class Table:
    def __init__(self, baseline: float) -> None:
        self.baseline = baseline
        self.missed: list[str] = []
        self.skipped: list[str] = []
        print(f"\n{'measure':<46}{'value':>10}{'target':>10}{'ratio':>8}{'vs base':>9}")

    def row(
        self, name: str, value: float, target: float | None = None, *, unit: str = "s", below: bool = True
    ) -> None:
        ratio = "" if target is None else f"{value / target:.2f}"
        base = f"{value / self.baseline:.1f}" if unit == "s" and self.baseline else ""
        shown = f"{value:.3f}" if unit == "s" else f"{value:.3g}"
        print(f"{name:<46}{shown:>10}{'' if target is None else f'{target:g}':>10}{ratio:>8}{base:>9}")
        if target is not None and not (value <= target if below else value >= target):
            self.missed.append(name.strip())

    def skip(self, name: str, why: str) -> None:
        print(f"{name:<46}  not available yet ({why})")
        self.skipped.append(name)


def measure_baseline(site: Any) -> float:
    from lavka.orders.models import Order

    table = qn(Order._meta.db_table)
    seconds, _rows = timed(
        lambda: scalar(
            f"SELECT count(*) FROM (SELECT customer_id, count(*), sum(total_summ) FROM {table}"
            " WHERE site_id = %s GROUP BY customer_id) s",
            [site.pk],
        ),
        repeat=3,
    )
    return seconds


def measure_refresh(site: Any, table: Table) -> None:
    metrics = module("lavka.analytics.metrics")
    if metrics is None or not hasattr(metrics, "refresh_site"):
        table.skip("(a) analytics refresh", "lavka.analytics.metrics.refresh_site")
        return
    seconds, report = timed(lambda: metrics.refresh_site(site))
    table.row("(a) analytics refresh, total", seconds, REFRESH_TARGET)
    for step, spent in getattr(report, "steps", {}).items():
        table.row(f"      {step}", spent)
    # A refresh writes only the rows whose figures changed: say how many, since a rerun on the same day
    # writes few and the first one (or the next day's) writes nearly all of them.
    if hasattr(report, "written"):
        print(f"      rows written: {report.written} of {report.customers} customers")
    fit = getattr(report, "fit", None)
    if fit is not None:
        print(f"      fit: sufficient={fit.sufficient} customers={fit.customers} bgnbd={fit.bgnbd}")


def measure_fit(site: Any, table: Table, raw: bool = True) -> None:
    """Our fit and lifetimes' on the buyers the refresh just scored (bench/lifetime_fit.compare)."""
    path = Path(__file__).resolve().parent / "lifetime_fit.py"
    scoring = module("lavka.analytics.scoring")
    if not path.exists() or scoring is None or not hasattr(scoring, "load"):
        table.skip("(b) BG/NBD + Gamma-Gamma vs lifetimes", "bench/lifetime_fit.py or scoring.load")
        return
    spec = importlib.util.spec_from_file_location("bench_lifetime_fit", path)
    fit_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_module)
    if not hasattr(fit_module, "compare"):
        table.skip("(b) BG/NBD + Gamma-Gamma vs lifetimes", "compare() in bench/lifetime_fit.py")
        return
    from django.utils import timezone

    buyers = scoring.load(site.pk, timezone.now())
    result = fit_module.compare(buyers.x, buyers.t_x, buyers.T, buyers.mean_value, raw=raw)
    ours, theirs = result["ours"], result["lifetimes"]
    speedup, difference = result["speedup"], result["max_rel_diff"]
    print(f"      {result['customers']} buyers, {result['unique_rows']} distinct (x, t_x, T)")
    table.row("(b) our BG/NBD fit", ours["bgnbd_seconds"])
    if "bgnbd_seconds" in theirs:
        table.row("    lifetimes BG/NBD, raw rows", theirs["bgnbd_seconds"])
        table.row("    speed-up, raw rows (×)", speedup["bgnbd"], SPEEDUP_TARGET, unit="x", below=False)
    if "bgnbd_weighted_seconds" in theirs:
        table.row("    lifetimes BG/NBD, our weights", theirs["bgnbd_weighted_seconds"])
        # The target is on lifetimes as normally called (raw rows); weighted is for reference.
        target = None if raw else SPEEDUP_TARGET
        table.row("    speed-up, weighted (×)", speedup["bgnbd_weighted"], target, unit="x", below=False)
    if "gamma_gamma_seconds" in ours:
        table.row("    our Gamma-Gamma fit", ours["gamma_gamma_seconds"])
    if "gamma_gamma_seconds" in theirs:
        table.row("    lifetimes Gamma-Gamma", theirs["gamma_gamma_seconds"])
    for model, diff in difference.items():
        if diff is None:
            table.missed.append(f"{model}: no lifetimes fit to compare with")
        else:
            table.row(f"    largest relative difference, {model}", diff, PARAMETER_TOLERANCE, unit="x")
    p = ours["bgnbd"]
    shown = f"ours: r={p['r']:.5g} alpha={p['alpha']:.5g} a={p['a']:.5g} b={p['b']:.5g}"
    if "gamma_gamma" in ours:
        g = ours["gamma_gamma"]
        shown += f"; p={g['p']:.5g} q={g['q']:.5g} gamma={g['gamma']:.5g}"
    print(f"      {shown}")
    for note in result.get("notes", []):
        print(f"      note: {note}")


SEGMENT = {
    "op": "and",
    "items": [
        {"field": "metrics.lifecycle", "operator": "in", "value": ["sleeping", "churned"]},
        {"field": "metrics.orders_count", "operator": "gte", "value": 3},
        {"field": "source", "operator": "eq", "value": "yandex"},
    ],
}


def measure_segment(site: Any, table: Table) -> None:
    compiler = module("lavka.analytics.segments.compiler")
    if compiler is None or not hasattr(compiler, "count"):
        table.skip("(c) segment count, 3 conditions", "lavka.analytics.segments.compiler.count")
        return
    first, found = timed(lambda: compiler.count(SEGMENT, site_id=site.pk))
    seconds, _found = timed(lambda: compiler.count(SEGMENT, site_id=site.pk), repeat=5)
    table.row("(c) segment count, 3 conditions (median of 5)", seconds, SEGMENT_TARGET)
    table.row("    first call", first)
    print(f"      {found} customers: sleeping or churned, 3+ orders, from yandex")


def measure_dashboard(site: Any, table: Table) -> None:
    """The KPIs of the last twelve months and the dashboard's other panels (RFM grid, lifecycle counts),
    each part's share shown below the total: the KPIs read the order facts' day cells, the panels every
    customer's metrics."""
    kpi = module("lavka.analytics.shop_kpi")
    if kpi is None or not hasattr(kpi, "shop_kpis"):
        table.skip("(d) dashboard KPIs, 12 months", "lavka.analytics.shop_kpi.shop_kpis")
        return
    period = kpi.last_months(12)
    parts: dict[str, list[float]] = {}

    def part(name: str, call: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        result = call()
        parts.setdefault(name, []).append(time.perf_counter() - began)
        return result

    def dashboard() -> Any:
        figures = part("shop KPIs", lambda: kpi.shop_kpis([site.pk], period))
        part("RFM grid and lifecycle", lambda: kpi.customer_panels([site.pk]))  # the other panels
        return figures

    first, figures = timed(dashboard)
    firsts = {name: spent[0] for name, spent in parts.items()}
    parts.clear()
    seconds, _figures = timed(dashboard, repeat=3)
    table.row("(d) dashboard KPIs, 12 months (median of 3)", seconds, DASHBOARD_TARGET)
    for name, spent in parts.items():
        table.row(f"      {name} (median of 3)", statistics.median(spent))
    table.row("    first call", first)
    for name, spent in firsts.items():
        table.row(f"      {name}", spent)
    current = getattr(figures, "current", None)
    if current is not None:
        print(f"      revenue {getattr(current, 'revenue', '?')}, orders {getattr(current, 'orders', '?')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--lines", type=float, default=1.4, help="order lines per order on average (1–2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--regenerate", action="store_true", help="make the dataset again even if it is there"
    )
    parser.add_argument(
        "--weighted-only", action="store_true", help="(b): skip lifetimes on the raw rows (slow at 1M)"
    )
    parser.add_argument("--generate-only", action="store_true", help="make the dataset, measure nothing")
    parser.add_argument("--parts", default="abcd", help="which of the measures (a)-(d) to run, e.g. `ad`")
    args = parser.parse_args()
    if args.orders < args.customers:
        sys.exit("bench: --orders must be at least --customers")
    setup()
    from django.db import connection

    say(f"bench: database {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    site = prepare(args)
    if args.generate_only:
        return 0
    baseline = measure_baseline(site)
    table = Table(baseline)
    table.row("baseline: GROUP BY customer over orders", baseline)
    count_seconds, _n = timed(
        lambda: scalar("SELECT count(*) FROM orders_order WHERE site_id = %s", [site.pk])
    )
    table.row("  (count(*) of the orders)", count_seconds)
    if "a" in args.parts:
        measure_refresh(site, table)
    if "b" in args.parts:
        measure_fit(site, table, raw=not args.weighted_only)
    if "c" in args.parts:
        measure_segment(site, table)
    if "d" in args.parts:
        measure_dashboard(site, table)
    print()
    if table.skipped:
        print(f"bench: {len(table.skipped)} part(s) not available yet: " + "; ".join(table.skipped))
    if table.missed:
        print("bench: TARGET MISSED: " + "; ".join(table.missed))
        return 1
    print("bench: all measured targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
