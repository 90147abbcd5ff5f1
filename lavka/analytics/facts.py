"""Order facts: what the shop KPIs need of each order, and their sums by day (docs/metrics.md, "Shop KPIs").

A year of a big shop's orders is millions of rows, and a KPI of a period must not read them all. So each
order has one row of facts (OrderFacts): its local day, cents, whether it counts, is delivered or is a
complaint, and where it stands among its customer's counted orders — its rank, the day of the previous
one, the month of the next one, the customer's cohort and acquisition source. The facts are summed by
site, day and kind into FactsCell (KINDS), and every KPI of a period is a sum over the cells of its days
(lavka.analytics.shop_kpi): the buyers of a period, for instance, are its first orders plus its repeat
orders whose previous order is before the period.

Who keeps them:
- the receiver of order and customer events (lavka.analytics.receivers) calls `refresh_customers` for
  the customers an event touched: their facts are recomputed from their orders, and the cells change by
  the difference between the rows deleted and the rows inserted, so a re-delivered event changes nothing;
- `sync` (every KPI read, and the receiver) catches up with orders written without events (the bulk
  import, the bench's SQL): the orders above the highest order that has facts;
- `rebuild` recomputes everything set-based: the migration that made the tables, `lavka analytics
  rebuild-facts`, the bench after loading its dataset. Needed after moving a status to another group;
  after a change of TIME_ZONE `sync` rebuilds by itself.

Days are dates in the installation's time zone, so that every period, month and churn window edge
(a local midnight) falls between two days.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from lavka.analytics import dialect
from lavka.analytics.models import FactsCell, FactsState, OrderFacts
from lavka.customers.models import Customer
from lavka.orders.choices import Group
from lavka.orders.models import Order, Status, StatusGroup

log = logging.getLogger(__name__)

NEVER_MONTH = datetime.date(9999, 12, 1)  # `next_month` of a customer's last counted order
# Above this many orders written without events, `sync` rebuilds everything rather than customer by
# customer (the set-based rebuild is far cheaper per order).
CATCH_UP_ORDERS = 20_000
REBUILD_WORK_MEM = "256MB"  # the rebuild sorts every order by customer

COLUMNS = tuple(f.column for f in OrderFacts._meta.concrete_fields)


@dataclass(frozen=True)
class Kind:
    """One kind of cell: the facts it sums (`flag` set, `rank` within `ranks`), keyed by their day and
    `key` (else the day again) and `label`; `n` counts them, `amount` sums their `amount` column, `extra`
    counts those with `extra` set."""

    code: str
    flag: str | None = None
    ranks: tuple[int, int | None] | None = None  # (lowest, highest or None)
    key: str | None = None
    label: str | None = None
    amount: str | None = None
    extra: str | None = None

    def sql(self, where: str) -> str:
        """The SELECT of this kind's cells, summed from the facts `f` that match `where`."""
        key = f"f.{self.key}" if self.key else "f.day"
        label = f"COALESCE(f.{self.label}, '')" if self.label else "''"
        amount = f"COALESCE(SUM(f.{self.amount}), 0)" if self.amount else "0"
        extra = f"COUNT(f.{self.extra})" if self.extra else "0"
        groups = ["f.site_id", "f.day", *([key] if self.key else []), *([label] if self.label else [])]
        return (
            f"SELECT f.site_id, '{self.code}', f.day, {key}, {label}, COUNT(*), {amount}, {extra}"
            f" FROM {_FACTS} f WHERE {' AND '.join([*self._conditions(), where])}"
            f" GROUP BY {', '.join(groups)}"
        )

    def _conditions(self) -> list[str]:
        found = []
        if self.flag:
            found.append(f"f.{self.flag}")
        if self.ranks:
            low, high = self.ranks
            found.append(f"f.rank >= {low}")
            if high is not None:
                found.append(f"f.rank <= {high}")
        return found

    def counts(self, fact: dict[str, Any]) -> bool:
        if self.flag and not fact[self.flag]:
            return False
        if self.ranks:
            low, high = self.ranks
            return fact["rank"] >= low and (high is None or fact["rank"] <= high)
        return True

    def cell(self, fact: dict[str, Any]) -> tuple[tuple, tuple[int, int, int]]:
        """This fact's cell key and its share of the cell's (n, amount, extra)."""
        key = fact[self.key] if self.key else fact["day"]
        label = (fact[self.label] or "") if self.label else ""
        amount = (fact[self.amount] or 0) if self.amount else 0
        extra = int(fact[self.extra] is not None) if self.extra else 0
        return (fact["site_id"], self.code, fact["day"], key, label), (1, amount, extra)


KINDS = (
    Kind("o", flag="counted", amount="cents"),  # counted orders, revenue
    Kind("n", ranks=(1, 1), amount="cents"),  # first counted orders (new customers), their revenue
    Kind("d", flag="complete", amount="delivery_us", extra="delivery_us"),  # delivered; time to it
    Kind("c", flag="complaint"),  # complaints
    Kind("p", ranks=(2, None), key="prev_day"),  # repeat orders by the day of the previous counted one
    Kind("s", ranks=(2, 2), key="prev_day", amount="prev_cents"),  # 2nd orders; the 1st one's revenue
    Kind("x", flag="counted", key="next_month"),  # counted orders by the month of the next (churn)
    Kind("h", flag="month_first", key="cohort"),  # a customer's first order of a month, by cohort
    Kind("a", ranks=(1, 1), label="source", amount="customer_cents"),  # acquisitions: revenue to date
)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_FACTS = _table(OrderFacts)
_CELLS = _table(FactsCell)


def month_sql(day: str) -> str:
    """The first day of the month of a date expression."""
    if dialect.postgres():
        return f"make_date(CAST(EXTRACT(YEAR FROM {day}) AS int), CAST(EXTRACT(MONTH FROM {day}) AS int), 1)"
    return f"date({day}, 'start of month')"


def _micros_between(later: str, earlier: str) -> str:
    if dialect.postgres():
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) * 1000000 AS bigint)"
    return f"django_timestamp_diff({later}, {earlier})"  # Django's SQLite function: microseconds


def zone() -> str:
    return timezone.get_default_timezone_name()


def _facts_select(where: str) -> tuple[str, list[Any]]:
    """SELECT of the facts (in COLUMNS order) of the orders matching `where` (on `o`, the orders table),
    and its parameters. The window over a customer's counted orders needs all of them: `where` must take
    a customer's orders all or none."""
    day, day_params = connection.ops.datetime_cast_date_sql("o.created_at", (), zone())
    base = (
        f"SELECT o.id, o.site_id, o.customer_id, o.created_at, {day} AS day,"
        " CAST(ROUND(o.total_summ * 100) AS bigint) AS cents,"
        " g.code <> %s AS counted, g.code = %s AS complete,"
        " (g.code = %s OR o.complaint_reason <> '') AS complaint,"
        " CASE WHEN g.code = %s AND o.status_updated_at >= o.created_at"
        f" THEN {_micros_between('o.status_updated_at', 'o.created_at')} END AS delivery_us,"
        " CASE WHEN c.source <> '' THEN c.source ELSE o.source END AS source"
        f" FROM {_table(Order)} o JOIN {_table(Status)} s ON s.id = o.status_id"
        f" JOIN {_table(StatusGroup)} g ON g.id = s.group_id"
        f" JOIN {_table(Customer)} c ON c.id = o.customer_id WHERE {where}"
    )
    params = [*day_params, Group.CANCEL, Group.COMPLETE, Group.COMPLAINT, Group.COMPLETE]
    with_month = f"SELECT b.*, {month_sql('b.day')} AS month FROM ({base}) b"
    rank = "ROW_NUMBER() OVER w"

    def counted(expression: str) -> str:
        return f"CASE WHEN o.counted THEN {expression} END"

    values = {
        "order_id": "o.id",
        "site_id": "o.site_id",
        "customer_id": "o.customer_id",
        "day": "o.day",
        "cents": "o.cents",
        "counted": "o.counted",
        "complete": "o.complete",
        "complaint": "o.complaint",
        "delivery_us": "o.delivery_us",
        "rank": f"CASE WHEN o.counted THEN {rank} ELSE 0 END",
        "prev_day": counted("LAG(o.day) OVER w"),
        "prev_cents": f"CASE WHEN o.counted AND {rank} = 2 THEN LAG(o.cents) OVER w END",
        "next_month": counted("COALESCE(LEAD(o.month) OVER w, %s)"),
        "month_first": "o.counted AND (LAG(o.month) OVER w IS NULL OR LAG(o.month) OVER w <> o.month)",
        "cohort": counted("FIRST_VALUE(o.month) OVER w"),
        "source": f"CASE WHEN o.counted AND {rank} = 1 THEN o.source END",
        "customer_cents": f"CASE WHEN o.counted AND {rank} = 1"
        " THEN SUM(o.cents) OVER (PARTITION BY o.customer_id, o.counted) END",
    }
    # `WHERE 1 = 1`: SQLite needs a WHERE before an upsert's ON CONFLICT in INSERT … SELECT.
    sql = (
        f"SELECT {', '.join(values[c] for c in COLUMNS)} FROM ({with_month}) o WHERE 1 = 1"
        " WINDOW w AS (PARTITION BY o.customer_id, o.counted ORDER BY o.created_at, o.id)"
    )
    # The outer SELECT's parameter (in next_month) stands before the subquery's in the text.
    return sql, [dialect_date(NEVER_MONTH), *params]


def dialect_date(day: datetime.date) -> Any:
    """A date as a query parameter compared with DateField columns."""
    return connection.ops.adapt_datefield_value(day)


def _insert_facts(cursor: Any, where: str, *, returning: bool) -> list[dict[str, Any]]:
    select, params = _facts_select(where)
    names = ", ".join(COLUMNS)
    sql = f"INSERT INTO {_FACTS} ({names}) {select} ON CONFLICT (order_id) DO NOTHING"
    if not returning:
        cursor.execute(sql, params)
        return []
    cursor.execute(f"{sql} RETURNING {names}", params)
    return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def _sums(facts: Iterable[dict[str, Any]], sign: int, into: dict[tuple, list[int]]) -> None:
    for fact in facts:
        for kind in KINDS:
            if kind.counts(fact):
                key, (n, amount, extra) = kind.cell(fact)
                total = into[key]
                total[0] += sign * n
                total[1] += sign * amount
                total[2] += sign * extra


def _add_to_cells(cursor: Any, changes: dict[tuple, list[int]]) -> None:
    rows = [(*key, *values) for key, values in changes.items() if any(values)]
    if not rows:
        return
    cursor.executemany(
        f"INSERT INTO {_CELLS} (site_id, kind, day, key, label, n, amount, extra)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (site_id, kind, day, key, label) DO UPDATE SET"
        f" n = {_CELLS}.n + excluded.n, amount = {_CELLS}.amount + excluded.amount,"
        f" extra = {_CELLS}.extra + excluded.extra",
        rows,
    )


def refresh_customers(customer_ids: Iterable[int]) -> None:
    """Recompute the facts of these customers' orders, and of the customers who had facts of one of them
    (an order that moved), and move the cells by the difference. Idempotent; safe beside another
    refresh of the same customers (a fact row deleted or inserted by one is not by the other)."""
    todo = sorted({int(pk) for pk in customer_ids if pk})
    if not todo:
        return
    orders = _table(Order)
    done: set[int] = set()
    old: list[dict[str, Any]] = []
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        while todo:
            done.update(todo)
            mine = dialect.in_ids("customer_id", todo)
            cursor.execute(
                f"DELETE FROM {_FACTS} WHERE order_id IN (SELECT id FROM {orders} WHERE {mine}"
                f" UNION ALL SELECT order_id FROM {_FACTS} WHERE {mine}) RETURNING {', '.join(COLUMNS)}",
            )
            deleted = [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
            old += deleted
            todo = sorted({f["customer_id"] for f in deleted} - done)
        new = _insert_facts(cursor, dialect.in_ids("o.customer_id", sorted(done)), returning=True)
        changes: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        _sums(old, -1, changes)
        _sums(new, 1, changes)
        _add_to_cells(cursor, changes)


def sync() -> None:
    """Give facts to the orders written without events since the last order that has them (one query
    when there are none); rebuild everything when the facts' days are in another time zone."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.zone, o.id, o.customer_id FROM (SELECT MAX(zone) AS zone FROM {_table(FactsState)}) s"
            f" LEFT JOIN {_table(Order)} o ON o.id > (SELECT COALESCE(MAX(order_id), 0) FROM {_FACTS})"
        )
        rows = cursor.fetchall()
        built_in = rows[0][0]
        if built_in is not None and built_in != zone():
            log.warning("order facts: days in %s, the time zone is now %s; rebuilding", built_in, zone())
            rebuild()
            return
        customers = {customer_id for _zone, order_id, customer_id in rows if order_id is not None}
        if len(rows) > CATCH_UP_ORDERS:
            log.warning("order facts: %s orders without facts; rebuilding", len(rows))
            rebuild()
        elif customers:
            refresh_customers(customers)


@dataclass
class Rebuilt:
    facts: int
    cells: int
    seconds: dict[str, float]


def rebuild() -> Rebuilt:
    """Recompute every order's facts and every cell, set-based, in one transaction (about 6 minutes for
    10 million orders on a busy 2-core machine with PostgreSQL)."""
    seconds: dict[str, float] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        began = time.monotonic()
        if dialect.postgres():
            # TRUNCATE locks both tables until the commit: the KPI reads and the receiver wait for the
            # rebuild rather than see half of it. Then room for the sort of every order by customer.
            cursor.execute(f"TRUNCATE {_FACTS}, {_CELLS}")
            cursor.execute(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'")
        else:
            cursor.execute(f"DELETE FROM {_CELLS}")
            cursor.execute(f"DELETE FROM {_FACTS}")
        _insert_facts(cursor, "1 = 1", returning=False)
        seconds["facts"] = time.monotonic() - began
        step = time.monotonic()
        if dialect.postgres():
            cursor.execute(f"ANALYZE {_FACTS}")
        # In the order of the unique index, which the KPIs read ranges of: a range is then a few
        # consecutive pages, not a page per row.
        cursor.execute(
            f"INSERT INTO {_CELLS} (site_id, kind, day, key, label, n, amount, extra) SELECT * FROM ("
            + " UNION ALL ".join(kind.sql("1 = 1") for kind in KINDS)
            + ") cells ORDER BY 1, 2, 3, 4, 5"
        )
        if dialect.postgres():
            cursor.execute(f"ANALYZE {_CELLS}")
        seconds["cells"] = time.monotonic() - step
        FactsState.objects.all().delete()
        FactsState.objects.create(zone=zone(), rebuilt_at=timezone.now())
        cursor.execute(f"SELECT (SELECT COUNT(*) FROM {_FACTS}), (SELECT COUNT(*) FROM {_CELLS})")
        facts, cells = cursor.fetchone()
    return Rebuilt(facts, cells, seconds)


def cells_of(kinds: Sequence[str], column: str = "kind") -> str:
    """`kind IN (…)` for these kind codes (constants of this module, never input)."""
    known = {kind.code for kind in KINDS}
    if not set(kinds) <= known:
        raise ValueError(f"unknown cell kinds {set(kinds) - known}")
    return f"{column} IN (" + ", ".join(f"'{code}'" for code in kinds) + ")"
