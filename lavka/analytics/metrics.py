"""Customer metrics: the full set-based refresh of a site and the incremental refresh of one customer.

Definitions (one row per active customer of the site; merged duplicates have none):

- counted orders: the customer's orders not in a *cancel*-group status (`Order.objects.counted()`);
- orders_count, revenue (sum of `total_summ`), average_order (revenue / orders, to kopecks),
  first/last_order_at: over the counted orders;
- days_between_orders: (last − first) in days / (orders − 1); null below two orders;
- favourite_categories: up to three category ids, most revenue first (line totals of the counted orders'
  items, ties by the smaller id); products without a category are left out;
- complaints_count: orders (any status) in a *complaint*-group status or with a complaint reason;
- returns_count: orders whose current status is a return (code `return` or starting with `return-`,
  retailCRM's "Возврат" in the complaint group); a refunded payment alone is not a return (a
  prepaid order that is cancelled is refunded too);
- R/F/M scores and segment: lavka.analytics.rfm; lifecycle: lavka.analytics.lifecycle;
- model scores (P(alive) … churn risk): lavka.analytics.scoring.

A customer without counted orders gets a row with zeros, no scores and a blank lifecycle, so that every
customer can be filtered on its metrics.

The full refresh is a handful of statements whatever the number of customers, in one transaction:
temporary tables for the per-customer aggregates, the favourite categories, the RFM scores (window
functions), the model outputs (lavka.analytics.scoring) and the new rows; then one UPDATE … FROM of the
site's rows whose figures changed and one INSERT of the missing ones. The same SQL runs on SQLite and
PostgreSQL (see lavka.analytics.dialect for the differences). A row that an incremental update wrote
after the refresh began is left alone: it is newer than what the refresh read. `updated_at` is when a
row's figures last changed (a refresh that finds the same figures leaves the row as it is).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from lavka.analytics import dialect, lifecycle, rfm
from lavka.analytics.lifecycle import Thresholds
from lavka.analytics.models import CustomerMetrics, ModelFit, SiteAnalytics
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.orders.choices import Group
from lavka.orders.models import Order, OrderItem, Status

Progress = Callable[[str, int, int], Any]
STEPS = ("orders", "categories", "thresholds", "rfm", "models", "write")
WORK_MEM = "512MB"
AGG, FAV, RFM, NEW = "lavka_metrics_agg", "lavka_metrics_fav", "lavka_metrics_rfm", "lavka_metrics_new"
CENT = Decimal("0.01")
# From this many changed rows on, a refresh of its own (not inside a caller's transaction) on PostgreSQL
# rebuilds the metrics table instead of updating it in place (see _swap).
SWAP_ROWS = 50_000


@dataclass
class RefreshReport:
    site: str
    customers: int = 0  # customers with a metrics row
    written: int = 0  # rows inserted, changed or deleted
    buyers: int = 0  # of them with at least one counted order
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, in order
    fit: ModelFit | None = None

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())


# --- Which orders count -----------------------------------------------------------------------------------


def _status_ids(q: Q) -> list[int]:
    return list(Status.objects.filter(q).values_list("id", flat=True))


def is_return_code(code: str) -> bool:
    return code == "return" or code.startswith("return-")


def return_status_q() -> Q:
    return Q(code="return") | Q(code__startswith="return-")


def counted_condition(alias: str = "o") -> str:
    """SQL condition on an order alias: the order counts (not in a cancel-group status)."""
    cancelled = _status_ids(Q(group__code=Group.CANCEL))
    return f"NOT ({dialect.in_ids(f'{alias}.status_id', cancelled)})" if cancelled else "1 = 1"


def _complaint_condition(alias: str = "o") -> str:
    ids = _status_ids(Q(group__code=Group.COMPLAINT))
    return f"({dialect.in_ids(f'{alias}.status_id', ids)} OR {alias}.complaint_reason <> '')"


# --- Full refresh -----------------------------------------------------------------------------------------


class _Steps:
    def __init__(self, report: RefreshReport, progress: Progress | None) -> None:
        self.report, self.progress = report, progress
        self.started = time.perf_counter()
        if progress is not None:
            progress(STEPS[0], 0, len(STEPS))

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.report.steps[name] = now - self.started
        self.started = now
        if self.progress is not None:
            self.progress(name, len(self.report.steps), len(STEPS))


def refresh_site(site: Site, progress: Progress | None = None) -> RefreshReport:
    """Recompute every customer's metrics, RFM, lifecycle and model scores for the site, in one
    transaction. `progress(step, done, total)` is told after each step.

    Called outside a transaction on PostgreSQL (the CLI, the nightly job), it then vacuums the metrics
    table: the rows it rewrote leave dead tuples, and without a VACUUM the next refresh finds no room
    to reuse and the table and its indexes grow by their size every time."""
    from lavka.analytics import scoring

    report = RefreshReport(site=site.code)
    steps = _Steps(report, progress)
    started = timezone.now()
    vacuum = dialect.postgres() and not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if dialect.postgres():
            # The per-customer aggregates of a large shop fit in memory instead of spilling to disk
            # (the workers' partial aggregates hold nearly every customer each), and the scans of
            # orders and lines may use parallel workers (the planner's default costs rarely choose
            # them for these aggregations).
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute("SET LOCAL parallel_setup_cost = 100")
            cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")
        dialect.drop_temp(cursor, AGG, FAV, RFM)
        _aggregate(cursor, site.pk)
        steps.done("orders")
        _favourites(cursor, site.pk)
        steps.done("categories")
        settings = lifecycle.derive(site.pk, AGG, counted_condition())
        steps.done("thresholds")
        report.buyers = _rfm(cursor, settings)
        steps.done("rfm")
        inputs = scoring.inputs_sql(AGG, "orders_count", "first_at", "last_at", "revenue", "1 = 1", started)
        report.fit = scoring.prepare(site, started, inputs)
        steps.done("models")
        report.customers, report.written = _write(
            cursor, site.pk, Thresholds.of(settings), started, rebuild=vacuum
        )
        if report.written and not vacuum:
            # Without fresh statistics the planner takes the table for what it was before, and a
            # segment count over it runs as a million index lookups instead of a hash join.
            _analyze(cursor, CustomerMetrics._meta.db_table)
        dialect.drop_temp(cursor, AGG, FAV, RFM, scoring.SCORES)
        settings.refreshed_at = timezone.now()
        settings.save(update_fields=["rfm_edges", "refreshed_at"])
    if vacuum and report.written:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {CustomerMetrics._meta.db_table}")
    steps.done("write")
    return report


def score_site(site: Site) -> ModelFit:
    """Fit the lifetime models on the site's stored metrics and write the scores (see scoring)."""
    from lavka.analytics import scoring

    return scoring.score_site(site)


def _analyze(cursor, table: str) -> None:
    # Fresh temporary tables have no statistics; the joins below are planned better with them.
    if dialect.postgres():
        cursor.execute(f"ANALYZE {table}")


def _aggregate(cursor, site_id: int) -> None:
    counted = counted_condition()
    returns = _status_ids(return_status_q())
    if dialect.postgres():
        # Each parallel worker's partial hash aggregate holds nearly every customer (a customer's orders
        # are spread over the workers), so it hardly shrinks the rows; sorting and aggregating by
        # customer is about a quarter faster on 10M orders (8 s against 11 s).
        cursor.execute("SET LOCAL enable_hashagg = off")
    cursor.execute(
        f"""CREATE TEMP TABLE {AGG} AS
        SELECT o.customer_id AS customer_id,
          COUNT(*) FILTER (WHERE {counted}) AS orders_count,
          COALESCE(SUM(o.total_summ) FILTER (WHERE {counted}), 0) AS revenue,
          MIN(o.created_at) FILTER (WHERE {counted}) AS first_at,
          MAX(o.created_at) FILTER (WHERE {counted}) AS last_at,
          COUNT(*) FILTER (WHERE {_complaint_condition()}) AS complaints,
          COUNT(*) FILTER (WHERE {dialect.in_ids("o.status_id", returns)}) AS returns
        FROM orders_order o WHERE o.site_id = %s GROUP BY o.customer_id""",
        [site_id],
    )
    if dialect.postgres():
        cursor.execute("SET LOCAL enable_hashagg TO DEFAULT")
    _analyze(cursor, AGG)


def _favourites(cursor, site_id: int) -> None:
    # Amounts in whole kopecks: exact (ties compare equal) and summed as integers, cheaper than
    # NUMERIC and than rounding a floating sum of each of the millions of (customer, category) pairs.
    cursor.execute(
        f"""CREATE TEMP TABLE {FAV} AS
        SELECT customer_id,
          MAX(CASE WHEN rn = 1 THEN category_id END) AS c1,
          MAX(CASE WHEN rn = 2 THEN category_id END) AS c2,
          MAX(CASE WHEN rn = 3 THEN category_id END) AS c3
        FROM (
          SELECT customer_id, category_id,
            ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY amount DESC, category_id) AS rn
          FROM (
            SELECT o.customer_id AS customer_id, p.category_id AS category_id,
              SUM(CAST(ROUND(i.summ * 100) AS BIGINT)) AS amount
            FROM orders_orderitem i
              JOIN orders_order o ON o.id = i.order_id
              JOIN catalog_offer f ON f.id = i.offer_id
              JOIN catalog_product p ON p.id = f.product_id
            WHERE o.site_id = %s AND {counted_condition()} AND p.category_id IS NOT NULL
            GROUP BY o.customer_id, p.category_id
          ) amounts
        ) ranked
        WHERE rn <= 3 GROUP BY customer_id""",
        [site_id],
    )
    _analyze(cursor, FAV)


def _rfm(cursor, settings: SiteAnalytics) -> int:
    """Score R/F/M among the buyers into a temporary table and store the edges; the number of buyers."""
    cursor.execute(
        f"""CREATE TEMP TABLE {RFM} AS
        SELECT customer_id, rv, fv, mv,
          {rfm.score_sql("rv", "n")} AS r_score,
          {rfm.score_sql("fv", "n")} AS f_score,
          {rfm.score_sql("mv", "n")} AS m_score
        FROM (
          SELECT customer_id, {dialect.day_number("last_at")} AS rv, orders_count AS fv, revenue AS mv,
            COUNT(*) OVER () AS n
          FROM {AGG} WHERE orders_count > 0
        ) buyers"""
    )
    _analyze(cursor, RFM)
    cursor.execute(
        f"""SELECT 'r', r_score, MIN(rv) FROM {RFM} GROUP BY r_score
        UNION ALL SELECT 'f', f_score, MIN(fv) FROM {RFM} GROUP BY f_score
        UNION ALL SELECT 'm', m_score, MIN(mv) FROM {RFM} GROUP BY m_score"""
    )
    minimum: dict[str, dict[int, Any]] = {"r": {}, "f": {}, "m": {}}
    for letter, score, value in cursor.fetchall():
        minimum[letter][int(score)] = value
    cursor.execute(f"SELECT COUNT(*) FROM {RFM}")
    buyers = cursor.fetchone()[0]
    settings.rfm_edges = rfm.stored_edges(
        rfm.edges_from(minimum["r"]), rfm.edges_from(minimum["f"]), rfm.edges_from(minimum["m"]), buyers
    )
    return buyers


def _write(
    cursor, site_id: int, thresholds: Thresholds, as_of: datetime.datetime, rebuild: bool
) -> tuple[int, int]:
    """Write the site's rows from the temporary tables; returns (customers with a row, rows written).

    Only rows whose figures changed are written: an unchanged row keeps its tuple (and its
    `updated_at`, the moment its figures last changed), so a refresh soon after another writes little,
    leaves few dead rows and no index entries behind. A row an incremental update wrote after the
    refresh began (`as_of`) is newer than what we read: kept."""
    from lavka.analytics import scoring

    days_since_last = f"({dialect.now_days(as_of)!r} - {dialect.epoch_days('a.last_at')})"
    span = f"({dialect.epoch_days('a.last_at')} - {dialect.epoch_days('a.first_at')})"
    between = f"(CASE WHEN a.orders_count > 1 THEN {span} / (a.orders_count - 1) END)"
    favourites = dialect.as_json(
        "COALESCE('[' || CAST(v.c1 AS TEXT) || COALESCE(',' || CAST(v.c2 AS TEXT), '')"
        " || COALESCE(',' || CAST(v.c3 AS TEXT), '') || ']', '[]')"
    )
    derived = [
        ("orders_count", "COALESCE(a.orders_count, 0)"),
        ("revenue", "COALESCE(a.revenue, 0)"),
        (
            "average_order",
            "CASE WHEN a.orders_count > 0 THEN ROUND(a.revenue * 1.0 / a.orders_count, 2) ELSE 0 END",
        ),
        ("first_order_at", "a.first_at"),
        ("last_order_at", "a.last_at"),
        ("days_between_orders", between),
        ("favourite_categories", favourites),
        ("returns_count", "COALESCE(a.returns, 0)"),
        ("complaints_count", "COALESCE(a.complaints, 0)"),
        ("r_score", "s.r_score"),
        ("f_score", "s.f_score"),
        ("m_score", "s.m_score"),
        ("rfm_segment", rfm.segment_sql("s.r_score", "s.f_score", "s.m_score")),
        ("lifecycle", lifecycle.stage_sql("a.orders_count", days_since_last, thresholds)),
        *scoring.score_expressions("a.orders_count", "a.last_at", between, as_of).items(),
    ]
    figures = [name for name, _ in derived]
    names = ["customer_id", "site_id", *figures, "updated_at"]
    values = ", ".join(f"{expression} AS {name}" for name, expression in derived)
    differs = " OR ".join(dialect.distinct(f"m.{name}", f"n.{name}") for name in figures)
    # The new rows into a temporary table (no WAL, no indexes), each marked whether the site has a row
    # for the customer (`known`) and whether its figures differ from it (`changed`), both read before
    # anything is written. Then one UPDATE of the changed rows and one INSERT of the missing ones.
    dialect.drop_temp(cursor, NEW)
    cursor.execute(
        f"""CREATE TEMP TABLE {NEW} AS
        SELECT n.*, %s AS updated_at,
          CASE WHEN m.customer_id IS NULL THEN 0 ELSE 1 END AS known,
          CASE WHEN m.customer_id IS NULL OR {differs} THEN 1 ELSE 0 END AS changed
        FROM (
          SELECT c.id AS customer_id, c.site_id AS site_id, {values}
          FROM customers_customer c
            LEFT JOIN {AGG} a ON a.customer_id = c.id
            LEFT JOIN {FAV} v ON v.customer_id = c.id
            LEFT JOIN {RFM} s ON s.customer_id = c.id
            LEFT JOIN {scoring.SCORES} sc ON sc.customer_id = c.id
            {scoring.signal_joins("c.id", "a.last_at", as_of)}
          WHERE c.site_id = %s AND c.merged_into_id IS NULL{dialect.fence()}
        ) n
          LEFT JOIN analytics_customermetrics m ON m.customer_id = n.customer_id""",
        [dialect.datetime_param(timezone.now()), site_id],
    )
    _analyze(cursor, NEW)
    cursor.execute(f"SELECT COUNT(*), COUNT(*) FILTER (WHERE changed = 1) FROM {NEW}")
    customers, changed = cursor.fetchone()
    if rebuild and changed >= SWAP_ROWS:
        written = _swap(cursor, site_id, names, as_of)
        dialect.drop_temp(cursor, NEW)
        return customers, written
    sets = ", ".join(f"{name} = n.{name}" for name in names[2:])
    cursor.execute(
        f"""UPDATE analytics_customermetrics SET {sets} FROM {NEW} n
        WHERE analytics_customermetrics.customer_id = n.customer_id AND n.known = 1 AND n.changed = 1
          AND analytics_customermetrics.updated_at <= %s""",
        [dialect.datetime_param(as_of)],
    )
    written = cursor.rowcount
    columns = ", ".join(names)
    # No anti-join against the table being filled (PostgreSQL may plan it as a nested loop that rescans
    # the growing table for every row); ON CONFLICT: an incremental update may have created the row
    # meanwhile (it is newer: kept).
    cursor.execute(
        f"""INSERT INTO analytics_customermetrics ({columns})
        SELECT {columns} FROM {NEW} n WHERE n.known = 0
        ON CONFLICT (customer_id) DO NOTHING"""
    )
    written += cursor.rowcount
    dialect.drop_temp(cursor, NEW)
    # Duplicates merged into another customer have no metrics of their own any more.
    cursor.execute(
        "DELETE FROM analytics_customermetrics WHERE site_id = %s AND customer_id IN"
        " (SELECT id FROM customers_customer WHERE site_id = %s AND merged_into_id IS NOT NULL)",
        [site_id, site_id],
    )
    return customers, written + cursor.rowcount


def _swap(cursor, site_id: int, names: list[str], as_of: datetime.datetime) -> int:
    """Rebuild the metrics table with the site's new rows and swap it in; returns the rows written.

    Updating most of a million rows in place costs a new tuple and an entry in every index per row (and
    the dead ones left behind); writing a fresh table and building its indexes afterwards is several
    times faster. Writers wait on the table's lock while it is rebuilt (readers do not) and then write
    to the new table. Which rows are kept follows the in-place path exactly: other sites' rows, a row an
    incremental update wrote after the refresh began (`as_of`), and an unchanged row stay as they are;
    merged customers' rows go. PostgreSQL only: the constraints and indexes are read from the catalogue
    and made again under their own names, so the schema stays what the migrations made."""
    table, swap = CustomerMetrics._meta.db_table, f"{CustomerMetrics._meta.db_table}_swap"
    cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
        " ORDER BY contype = 'f', conname",  # the primary key before the foreign keys
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexdef FROM pg_indexes i WHERE schemaname = current_schema() AND tablename = %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname"
        " AND c.conrelid = %s::regclass) ORDER BY indexname",
        [table, table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
    options = cursor.fetchone()[0]
    cursor.execute(f"DROP TABLE IF EXISTS {swap}")
    cursor.execute(f"CREATE TABLE {swap} (LIKE {table} INCLUDING DEFAULTS)")
    columns = ", ".join(names)
    theirs = ", ".join(f"m.{name}" for name in names)
    newer = f"m.updated_at > {dialect.timestamp(as_of)}"
    # The site's customers: the new figures where they changed, unless a newer row is there.
    cursor.execute(
        f"""INSERT INTO {swap} ({columns}) SELECT {", ".join(f"n.{name}" for name in names)}
        FROM {NEW} n LEFT JOIN {table} m ON m.customer_id = n.customer_id
        WHERE m.customer_id IS NULL OR (n.changed = 1 AND NOT {newer})"""
    )
    written = cursor.rowcount
    cursor.execute(
        f"""INSERT INTO {swap} ({columns}) SELECT {theirs}
        FROM {table} m JOIN {NEW} n ON n.customer_id = m.customer_id
        WHERE n.changed = 0 OR {newer}"""
    )
    cursor.execute(
        f"""SELECT COUNT(*) FROM {table} m JOIN customers_customer c ON c.id = m.customer_id
        WHERE m.site_id = %s AND c.merged_into_id IS NOT NULL""",
        [site_id],
    )
    written += cursor.fetchone()[0]  # the merged customers' rows, left out below
    # Everything else but the rows of the site's merged customers: other sites, rows of customers the
    # refresh did not see (created since it began).
    cursor.execute(
        f"""INSERT INTO {swap} ({columns}) SELECT {theirs} FROM {table} m
        WHERE NOT EXISTS (SELECT 1 FROM {NEW} n WHERE n.customer_id = m.customer_id)
          AND NOT (m.site_id = %s AND EXISTS (SELECT 1 FROM customers_customer c
            WHERE c.id = m.customer_id AND c.merged_into_id IS NOT NULL))""",
        [site_id],
    )
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(f"ALTER TABLE {swap} RENAME TO {table}")
    if options:
        cursor.execute(f"ALTER TABLE {table} SET ({', '.join(options)})")
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")
    for definition in indexes:
        cursor.execute(definition)
    return written


# --- One customer -----------------------------------------------------------------------------------------


def refresh_customer(customer_id: int) -> None:
    """Recompute one customer's row: figures from their orders, R/F/M against the site's stored edges,
    segment, lifecycle, and the model scores from the site's newest sufficient fit."""
    from lavka.analytics import scoring

    customer = Customer.objects.filter(pk=customer_id).values("site_id", "merged_into_id").first()
    if customer is None:
        return
    if customer["merged_into_id"]:
        CustomerMetrics.objects.filter(pk=customer_id).delete()
        return
    site_id = customer["site_id"]
    figures = customer_figures(customer_id)
    settings = lifecycle.settings_of(site_id)
    now = timezone.now()
    n = figures["orders_count"]
    r, f, m = rfm.scores_from_stored(settings.rfm_edges, figures["last_order_at"], n, figures["revenue"])
    days_since_last = None if not n else (now - figures["last_order_at"]).total_seconds() / 86400
    values = {
        **figures,
        "site_id": site_id,
        "r_score": r,
        "f_score": f,
        "m_score": m,
        "rfm_segment": rfm.segment_of(r, f, m),
        "lifecycle": lifecycle.stage(n, days_since_last, Thresholds.of(settings)),
        "updated_at": now,
    }
    values.update(scoring.score_customer(site_id, customer_id, figures, now))
    CustomerMetrics.objects.update_or_create(customer_id=customer_id, defaults=values)


def customer_figures(customer_id: int) -> dict[str, Any]:
    """The order figures of one customer (the same definitions as the full refresh)."""
    counted = ~Q(status__group__code=Group.CANCEL)
    complaint = Q(status__group__code=Group.COMPLAINT) | ~Q(complaint_reason="")
    returned = Q(status__code="return") | Q(status__code__startswith="return-")
    agg = Order.objects.filter(customer_id=customer_id).aggregate(
        n=Count("id", filter=counted),
        revenue=Sum("total_summ", filter=counted),
        first=Min("created_at", filter=counted),
        last=Max("created_at", filter=counted),
        complaints=Count("id", filter=complaint),
        returns=Count("id", filter=returned),
    )
    n = agg["n"] or 0
    revenue = Decimal(agg["revenue"] or 0).quantize(CENT)
    between = None
    if n > 1:
        between = (agg["last"] - agg["first"]).total_seconds() / 86400 / (n - 1)
    favourites = (
        OrderItem.objects.filter(order__customer_id=customer_id, offer__product__category__isnull=False)
        .exclude(order__status__group__code=Group.CANCEL)
        .values("offer__product__category_id")
        .annotate(amount=Sum("summ"))
        .order_by("-amount", "offer__product__category_id")[:3]
    )
    return {
        "orders_count": n,
        "revenue": revenue,
        "average_order": (revenue / n).quantize(CENT, ROUND_HALF_UP) if n else Decimal("0.00"),
        "first_order_at": agg["first"],
        "last_order_at": agg["last"],
        "days_between_orders": between,
        "favourite_categories": [row["offer__product__category_id"] for row in favourites],
        "complaints_count": agg["complaints"],
        "returns_count": agg["returns"],
    }


# --- Export -----------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "customer_id",
    "external_id",
    "site",
    "last_name",
    "first_name",
    "email",
    "orders_count",
    "revenue",
    "average_order",
    "first_order_at",
    "last_order_at",
    "days_between_orders",
    "favourite_categories",
    "returns_count",
    "complaints_count",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "lifecycle",
    "p_alive",
    "expected_purchases_30",
    "expected_purchases_90",
    "expected_purchases_365",
    "expected_average_order",
    "predicted_value",
    "churn_risk",
    "churn_reason",
    "updated_at",
)


EXPORT_RELATED = {
    "external_id": "customer__external_id",
    "site": "site__code",
    "last_name": "customer__last_name",
    "first_name": "customer__first_name",
    "email": "customer__email",
}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def export_rows(site_ids: list[int] | None = None, chunk_size: int = 2000) -> Iterator[list[Any]]:
    """The header, then one row per customer with metrics (of the given sites), read in chunks (a
    server-side cursor on PostgreSQL) so that a million customers never sit in memory."""
    yield list(EXPORT_COLUMNS)
    query = CustomerMetrics.objects.order_by("customer_id")
    if site_ids is not None:
        query = query.filter(site_id__in=site_ids)
    names = [EXPORT_RELATED.get(name, name) for name in EXPORT_COLUMNS]
    for values in query.values_list(*names).iterator(chunk_size=chunk_size):
        yield [_cell(value) for value in values]
