"""Shop KPIs (docs/metrics.md, "Shop KPIs"): the owner's figures per site and period, with the previous
period for trend.

Every figure is a handful of set-based queries (GROUP BY in the database), never a loop over customers
in Python: a fixed number of queries whose cost grows with the orders read (the two periods, and the
churn window before them), not with round trips. That is still a pass over millions of rows for a big
shop's year, so the dashboard caches the result (lavka.analytics.dashboard). Two denormalised
fields do much of the work: `Customer.first_order_at` (the customer's first counted order, kept by the
customers app from order events and by the import) gives the acquisition month and "had ordered
before"; `Customer.total_summ` gives the revenue to date. "Counted" orders are those of
`Order.objects.counted()`: every order that is not in the cancel group.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import Window
from django.db.models.functions import Coalesce, Lag, Lead, Least, NullIf, TruncDay, TruncMonth
from django.utils import timezone

from lavka.analytics.kpi import Period
from lavka.analytics.models import Cost, CustomerMetrics, Lifecycle, SiteAnalytics
from lavka.core.models import Site
from lavka.core.permissions import Role, is_admin
from lavka.customers.models import Customer
from lavka.orders.choices import Group
from lavka.orders.models import Order, Status

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
COHORT_MONTHS = 12  # the cohort matrix shows at least this many acquisition months
DAILY_TREND_DAYS = 92  # up to this long a period's trend is drawn per day, longer per month
WORK_MEM = "64MB"  # per sort or hash of the dashboard's queries on PostgreSQL (SET LOCAL)
DEFAULT_CHURN_DAYS: int = SiteAnalytics._meta.get_field("churned_days").default


# --- periods and months ------------------------------------------------------------------------


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The first day of the month `months` after the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def months_between(first: datetime.date, later: datetime.date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def is_whole_months(period: Period) -> bool:
    return period.first.day == 1 and (period.last + datetime.timedelta(days=1)).day == 1


def previous_period(period: Period) -> Period:
    """The period just before, to compare with: the same number of calendar months when `period` is
    whole months (March → February); the same days of the months before when it starts on a month's
    first day (1 Dec – 23 Nov → 1 Dec – 23 Nov a year earlier; this month to date → the same days of
    last month); otherwise the same number of days."""
    if is_whole_months(period):
        months = months_between(period.first, period.last) + 1
        return Period(add_months(period.first, -months), period.first - datetime.timedelta(days=1))
    if period.first.day == 1:
        months = months_between(period.first, period.last) + 1
        return Period(add_months(period.first, -months), _same_day(period.last, -months))
    days = (period.last - period.first).days + 1
    return Period(period.first - datetime.timedelta(days=days), period.first - datetime.timedelta(days=1))


def _same_day(day: datetime.date, months: int) -> datetime.date:
    """`day` moved by `months`, kept within the target month (31 March − 1 month → 29 February)."""
    first = add_months(day, months)
    last_day = (add_months(first, 1) - datetime.timedelta(days=1)).day
    return first.replace(day=min(day.day, last_day))


def last_months(months: int, today: datetime.date | None = None) -> Period:
    """The current month to date and the `months - 1` before it (the dashboard's default period)."""
    today = today or timezone.localdate(timezone.now(), timezone.get_default_timezone())
    return Period(add_months(today, -(months - 1)), today)


def _month_span(first: datetime.date) -> Period:
    return Period(first, add_months(first, 1) - datetime.timedelta(days=1))


# --- who sees what -------------------------------------------------------------------------------


def visible_sites(viewer: Any) -> list[Site]:
    """Sites whose KPIs `viewer` may read: admins every site, supervisors their own, anyone else none."""
    if not viewer or not viewer.is_authenticated or not viewer.is_active:
        return []
    if is_admin(viewer):
        return list(Site.objects.all())
    if getattr(viewer, "role", None) == Role.SUPERVISOR:
        return list(Site.objects.filter(pk__in=viewer.site_ids))
    return []


# --- status groups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statuses:
    counted: list[int]  # every status outside the cancel group
    complete: list[int]
    complaint: list[int]


def _statuses() -> _Statuses:
    # Status ids instead of a join on the status groups: the reference book is tiny, the orders are not.
    groups = defaultdict(list)
    for pk, group in Status.objects.values_list("pk", "group__code"):
        groups[group].append(pk)
    counted = [pk for group, ids in groups.items() if group != Group.CANCEL for pk in ids]
    return _Statuses(counted, groups[Group.COMPLETE], groups[Group.COMPLAINT])


def _between(period: Period, field_name: str = "created_at") -> Q:
    return Q(**{f"{field_name}__gte": period.start, f"{field_name}__lt": period.end})


def _ratio(part: float | Decimal | int, whole: float | Decimal | int) -> float | None:
    return float(part) / float(whole) if whole else None


# --- the figures of one period -------------------------------------------------------------------


@dataclass
class Churn:
    """Monthly churn over the whole months of a period that are over (see docs/metrics.md)."""

    window_days: list[int]  # the churn window of each site counted
    months: list[datetime.date] = field(default_factory=list)
    active: int = 0  # summed over the months: customers active at the month's start
    churned: int = 0  # of those, no longer active at the month's end

    @property
    def rate(self) -> float | None:
        return _ratio(self.churned, self.active)


@dataclass
class Figures:
    period: Period
    revenue: Decimal = ZERO
    orders: int = 0
    buyers: int = 0
    repeat_buyers: int = 0
    repeat_revenue: Decimal = ZERO
    new_customers: int = 0
    delivered: int = 0
    complaints: int = 0
    delivery_time: datetime.timedelta | None = None
    churn: Churn | None = None

    @property
    def average_order(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(CENT) if self.orders else None

    @property
    def repeat_share(self) -> float | None:
        return _ratio(self.repeat_buyers, self.buyers)

    @property
    def repeat_revenue_share(self) -> float | None:
        return _ratio(self.repeat_revenue, self.revenue)

    @property
    def frequency(self) -> float | None:
        return _ratio(self.orders, self.buyers)

    @property
    def complaints_per_10k(self) -> float | None:
        rate = _ratio(self.complaints, self.delivered)
        return None if rate is None else rate * 10_000


def period_figures(
    site_ids: Sequence[int],
    periods: Sequence[Period],
    *,
    now: datetime.datetime | None = None,
    statuses: _Statuses | None = None,
) -> list[Figures]:
    """The figures of each of `periods` (adjacent or not) for orders of `site_ids`: one pass over the
    orders grouped by customer (summed up by the database), and one more for churn."""
    statuses = statuses or _statuses()
    figures = [Figures(p) for p in periods]
    if not site_ids or not periods:
        return figures
    span = Period(min(p.first for p in periods), max(p.last for p in periods))
    counted = Q(status_id__in=statuses.counted)
    complete = Q(status_id__in=statuses.complete)
    # A complaint is an order in the complaint group, or one that carries a complaint reason (it was
    # there, and may have been completed or cancelled since).
    complaint = Q(status_id__in=statuses.complaint) | ~Q(complaint_reason="")
    delivered_in_order = complete & Q(status_updated_at__gte=F("created_at"))
    delivery = ExpressionWrapper(F("status_updated_at") - F("created_at"), output_field=DurationField())
    per_customer: dict[str, Any] = {}
    for i, p in enumerate(periods):
        within = _between(p)
        per_customer |= {
            f"n{i}": Count("id", filter=within & counted),
            f"rev{i}": Sum("total_summ", filter=within & counted),
            f"del{i}": Count("id", filter=within & complete),
            f"cmp{i}": Count("id", filter=within & complaint),
            f"dn{i}": Count("id", filter=within & delivered_in_order),
            f"dt{i}": Sum(delivery, filter=within & delivered_in_order),
        }
    grouped = (
        Order.objects.filter(site_id__in=site_ids)
        .filter(_between(span))
        .order_by()
        .values("customer_id")
        .annotate(**per_customer)
    )
    sql, params = grouped.query.sql_with_params()
    adapt = connection.ops.adapt_datetimefield_value
    columns: list[str] = []
    outer_params: list[Any] = []
    for i, p in enumerate(periods):
        # Repeat: two or more counted orders up to the period's end, i.e. two in the period or a first
        # counted order before it.
        repeat = f"g.n{i} > 0 AND (g.n{i} >= 2 OR c.first_order_at < %s)"
        columns += [
            f"SUM(g.n{i})",
            f"SUM(g.rev{i})",
            f"SUM(CASE WHEN g.n{i} > 0 THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {repeat} THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {repeat} THEN g.rev{i} ELSE 0 END)",
            "SUM(CASE WHEN c.first_order_at >= %s AND c.first_order_at < %s THEN 1 ELSE 0 END)",
            f"SUM(g.del{i})",
            f"SUM(g.cmp{i})",
            f"SUM(g.dn{i})",
            f"SUM(g.dt{i})",
        ]
        outer_params += [adapt(p.start), adapt(p.start), adapt(p.start), adapt(p.end)]
    customers = connection.ops.quote_name(Customer._meta.db_table)
    query = f"SELECT {', '.join(columns)} FROM ({sql}) g JOIN {customers} c ON c.id = g.customer_id"  # noqa: S608
    with _analytic_session() as cursor:
        # The outer columns' parameters come first: they stand before the subquery in the text.
        cursor.execute(query, [*outer_params, *params])
        row = cursor.fetchone()
    for i, f in enumerate(figures):
        orders, revenue, buyers, repeat, repeat_revenue, new, delivered, complaints, dn, dt = row[
            10 * i : 10 * i + 10
        ]
        f.orders, f.revenue = int(orders or 0), _money(revenue)
        f.buyers, f.repeat_buyers, f.repeat_revenue = (
            int(buyers or 0),
            int(repeat or 0),
            _money(repeat_revenue),
        )
        f.new_customers, f.delivered, f.complaints = int(new or 0), int(delivered or 0), int(complaints or 0)
        f.delivery_time = _duration(dt) / int(dn) if dn else None
    churn = churn_by_month(site_ids, periods, statuses=statuses, now=now)
    for f, c in zip(figures, churn, strict=True):
        f.churn = c
    return figures


def _duration(value: Any) -> datetime.timedelta:
    # A sum of durations: an interval from PostgreSQL, microseconds from SQLite.
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(microseconds=int(value or 0))


_tuned: contextvars.ContextVar[bool] = contextvars.ContextVar("lavka_analytic_session", default=False)


@contextlib.contextmanager
def _analytic_session() -> Iterator[Any]:
    """A cursor for big reads, in one transaction. On PostgreSQL: room to sort and hash in memory (the
    default work_mem of 4 MB sends a year of orders to disk), and no JIT, whose compile time for these
    wide aggregates costs more than it saves. Nested sessions reuse the outer one's settings."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if _tuned.get() or connection.vendor != "postgresql":
            yield cursor
            return
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        token = _tuned.set(True)
        try:
            yield cursor
        finally:
            _tuned.reset(token)


def _money(value: Any) -> Decimal:
    # SQLite hands back sums of decimals as floats or strings; PostgreSQL as Decimal.
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT)


# --- churn -----------------------------------------------------------------------------------------


def churn_window(site_ids: Sequence[int]) -> dict[int, int]:
    """Each site's churn window in days: its lifecycle "churned after" threshold."""
    edited = dict(SiteAnalytics.objects.filter(site_id__in=site_ids).values_list("site_id", "churned_days"))
    return {site_id: edited.get(site_id) or DEFAULT_CHURN_DAYS for site_id in site_ids}


def churn_months(period: Period, now: datetime.datetime) -> list[datetime.date]:
    """The calendar months lying wholly inside `period` that are over by `now`."""
    months = []
    first = month_start(period.first)
    if first < period.first:
        first = add_months(first, 1)
    while True:
        month = _month_span(first)
        if month.last > period.last or month.end > now:
            return months
        months.append(first)
        first = add_months(first, 1)


def churn_by_month(
    site_ids: Sequence[int],
    periods: Sequence[Period],
    *,
    statuses: _Statuses | None = None,
    now: datetime.datetime | None = None,
) -> list[Churn]:
    """For each period: customers active at the start of each of its whole, past months (a counted order
    in the W days before), and of those the ones no longer active at the month's end (no counted order
    in the W days before the end); W is the site's churn window. One query for all sites and periods."""
    now = now or timezone.now()
    windows = churn_window(site_ids)
    result = [Churn(window_days=sorted(set(windows.values()))) for _p in periods]
    months = [churn_months(p, now) for p in periods]
    for churn, mine in zip(result, months, strict=True):
        churn.months = mine
    wanted = {m for mine in months for m in mine}
    if not wanted or not site_ids:
        return result
    counts = _churn_counts(windows, wanted, statuses or _statuses())
    for churn, mine in zip(result, months, strict=True):
        for month in mine:
            active, churned = counts[month]
            churn.active += active
            churn.churned += churned
    return result


def _churn_counts(
    windows: dict[int, int], months: set[datetime.date], statuses: _Statuses
) -> dict[datetime.date, tuple[int, int]]:
    """(active at the start, churned by the end) of each month in `months`.

    A customer is active at moment s when their last counted order before s is at or after s − W. Take
    each counted order (time t) with the customer's previous and next ones beside it (LAG, LEAD):
      - it makes the customer active at the start s of month m when t < s <= min(t + W, next), i.e. for
        the months m with  month(t) < m <= month(min(t + W, next));
      - it is the customer's last order before the end e of month m, too old to keep them active there,
        when s <= t + W < e and next >= e, i.e. m = month(t + W) and month(next) > m (or no next); they
        were active at the month's start through this order when month(t) < m, or else through the
        previous one when previous + W >= s, i.e. month(previous + W) >= m (possible only with a window
        shorter than a month).
    So the database only groups the orders by a few month keys, and the few hundred groups are spread
    over the months here. Orders before the first month's start − W cannot matter, nor can those at or
    after the last month's end."""
    by_window: dict[int, list[int]] = defaultdict(list)
    for site_id, days in windows.items():
        by_window[days].append(site_id)
    first, last = min(months), max(months)
    low = Period(first, first).start - datetime.timedelta(days=max(by_window))
    high = _month_span(last).end
    tz = timezone.get_default_timezone()

    def beside(function: type[Lead] | type[Lag]) -> Window:
        return Window(
            function("created_at"),
            partition_by=[F("customer_id")],
            order_by=[F("created_at").asc(), F("id").asc()],
        )

    def plus_window(moment: Any) -> Case:
        return Case(
            *(
                When(site_id__in=sites, then=moment + datetime.timedelta(days=days))
                for days, sites in by_window.items()
            ),
            output_field=DateTimeField(),
        )

    keyed = (
        Order.objects.filter(
            site_id__in=list(windows),
            status_id__in=statuses.counted,
            created_at__gte=low,
            created_at__lt=high,
        )
        .order_by()
        .annotate(
            reach=plus_window(F("created_at")),
            since_key=TruncMonth("created_at", tzinfo=tz),
            until_key=TruncMonth(Least(F("reach"), Coalesce(beside(Lead), F("reach"))), tzinfo=tz),
            lapse_key=TruncMonth("reach", tzinfo=tz),
            next_key=TruncMonth(beside(Lead), tzinfo=tz),
            before_key=TruncMonth(plus_window(beside(Lag)), tzinfo=tz),
        )
        .values("since_key", "until_key", "lapse_key", "next_key", "before_key")
    )
    sql, params = keyed.query.sql_with_params()
    with _analytic_session() as cursor:
        cursor.execute(
            "SELECT k.since_key, k.until_key, k.lapse_key,"
            " CASE WHEN (k.next_key IS NULL OR k.next_key > k.lapse_key)"
            " AND (k.since_key < k.lapse_key OR k.before_key >= k.lapse_key) THEN 1 ELSE 0 END,"
            f" COUNT(*) FROM ({sql}) k GROUP BY 1, 2, 3, 4",
            params,
        )
        groups = cursor.fetchall()
    active: dict[datetime.date, int] = defaultdict(int)
    churned: dict[datetime.date, int] = defaultdict(int)
    for since, until, lapse, gone, n in groups:
        since, until, lapse = _month_key(since), _month_key(until), _month_key(lapse)
        for month in months:
            if since < month <= until:
                active[month] += n
        if gone and lapse in months:
            churned[lapse] += n
    return {m: (active[m], churned[m]) for m in months}


def _month_key(value: Any) -> datetime.date:
    # A month truncated in the installation's zone, read back by raw SQL: an aware datetime from
    # PostgreSQL, the local wall-clock time as text from SQLite.
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value, timezone.get_default_timezone())
        return value.date().replace(day=1)
    return datetime.date.fromisoformat(str(value)[:10]).replace(day=1)


# --- trend -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    day: datetime.date  # the bucket's first day
    revenue: Decimal
    orders: int


def trend_unit(period: Period) -> str:
    return "day" if (period.last - period.first).days < DAILY_TREND_DAYS else "month"


def trend(
    site_ids: Sequence[int], period: Period, unit: str | None = None, *, statuses: _Statuses | None = None
) -> list[TrendPoint]:
    """Revenue and counted orders per day (short periods) or per month, every bucket present."""
    return trends(site_ids, [period], unit or trend_unit(period), statuses=statuses)[0]


def trends(
    site_ids: Sequence[int], periods: Sequence[Period], unit: str, *, statuses: _Statuses | None = None
) -> list[list[TrendPoint]]:
    """`trend` of several disjoint periods in one query (a month bucket may hold days of two periods:
    each keeps its own part)."""
    tz = timezone.get_default_timezone()
    trunc = TruncDay("created_at", tzinfo=tz) if unit == "day" else TruncMonth("created_at", tzinfo=tz)
    span = Period(min(p.first for p in periods), max(p.last for p in periods))
    part = Case(*(When(_between(p), then=Value(i)) for i, p in enumerate(periods)), default=Value(-1))
    rows = (
        Order.objects.filter(site_id__in=site_ids, status_id__in=(statuses or _statuses()).counted)
        .filter(_between(span))
        .annotate(bucket=trunc, part=part)
        .order_by()
        .values("part", "bucket")
        .annotate(revenue=Sum("total_summ"), orders=Count("id"))
    )
    found = {(r["part"], timezone.localtime(r["bucket"], tz).date()): r for r in rows}
    result = []
    for i, p in enumerate(periods):
        points = []
        for day in _buckets(p, unit):
            row = found.get((i, day))
            points.append(TrendPoint(day, row["revenue"] if row else ZERO, row["orders"] if row else 0))
        result.append(points)
    return result


def _buckets(period: Period, unit: str) -> Iterable[datetime.date]:
    if unit == "day":
        for n in range((period.last - period.first).days + 1):
            yield period.first + datetime.timedelta(days=n)
        return
    month = month_start(period.first)
    while month <= period.last:
        yield month
        month = add_months(month, 1)


# --- cohorts ---------------------------------------------------------------------------------------


@dataclass
class Cohort:
    month: datetime.date
    customers: int
    # retention[k]: share of the cohort with a counted order in the k-th month after the first (k = 0
    # is the acquisition month: 1.0); None for months not reached yet.
    retention: list[float | None]
    buyers: list[int]


@dataclass
class CohortMatrix:
    months: int  # columns: months since acquisition, 0..months-1
    cohorts: list[Cohort]
    observed_until: datetime.date


def cohorts(
    site_ids: Sequence[int],
    period: Period,
    months: int = COHORT_MONTHS,
    *,
    statuses: _Statuses | None = None,
) -> CohortMatrix:
    """Acquisition month × months since: for the months of `period`, and at least `months` of them
    (ending with the period's last month); orders counted up to the period's end."""
    last = month_start(period.last)
    first = min(month_start(period.first), add_months(last, -(months - 1)))
    observed = Period(first, period.last)
    tz = timezone.get_default_timezone()
    sizes = (
        Customer.objects.filter(site_id__in=site_ids)
        .filter(_between(observed, "first_order_at"))
        .annotate(cohort=TruncMonth("first_order_at", tzinfo=tz))
        .order_by()
        .values("cohort")
        .annotate(n=Count("id"))
    )
    cells = (
        Order.objects.filter(site_id__in=site_ids, status_id__in=(statuses or _statuses()).counted)
        .filter(_between(observed), _between(observed, "customer__first_order_at"))
        .annotate(
            cohort=TruncMonth("customer__first_order_at", tzinfo=tz),
            month=TruncMonth("created_at", tzinfo=tz),
        )
        .order_by()
        .values("cohort", "month")
        .annotate(n=Count("customer_id", distinct=True))
    )

    def local(moment: datetime.datetime) -> datetime.date:
        return timezone.localtime(moment, tz).date()

    size_of = {local(r["cohort"]): r["n"] for r in sizes}
    buyers: dict[tuple[datetime.date, int], int] = {}
    for r in cells:
        cohort = local(r["cohort"])
        buyers[(cohort, months_between(cohort, local(r["month"])))] = r["n"]
    width = months_between(first, last) + 1
    rows = []
    month = first
    while month <= last:
        size = size_of.get(month, 0)
        reached = months_between(month, last) + 1
        counts = [buyers.get((month, k), 0) for k in range(reached)]
        shares: list[float | None] = [_ratio(n, size) for n in counts] + [None] * (width - reached)
        rows.append(Cohort(month, size, shares, counts))
        month = add_months(month, 1)
    return CohortMatrix(width, rows, period.last)


# --- acquisition sources -------------------------------------------------------------------------


@dataclass
class SourceRow:
    source: str  # "" when neither the customer nor their first order names one
    customers: int = 0  # acquired in the period (first counted order in it)
    revenue: Decimal = ZERO  # their revenue to date
    cost: Decimal | None = None  # spend recorded for the source over the period (pro rata)

    @property
    def ltv(self) -> Decimal | None:
        return (self.revenue / self.customers).quantize(CENT) if self.customers else None

    @property
    def cac(self) -> Decimal | None:
        if self.cost is None or not self.customers:
            return None
        return (self.cost / self.customers).quantize(CENT)

    @property
    def romi(self) -> float | None:
        if not self.cost:
            return None
        return float((self.revenue - self.cost) / self.cost)


def sources(site_ids: Sequence[int], period: Period, *, statuses: _Statuses | None = None) -> list[SourceRow]:
    """LTV, CAC and ROMI by acquisition source for the customers acquired in `period` (see
    docs/metrics.md), sorted by revenue, then name."""
    first_order_source = (
        Order.objects.filter(
            customer_id=OuterRef("pk"),
            created_at=OuterRef("first_order_at"),
            status_id__in=(statuses or _statuses()).counted,
        )
        .order_by("id")
        .values("source")[:1]
    )
    acquired = (
        Customer.objects.filter(site_id__in=site_ids)
        .filter(_between(period, "first_order_at"))
        .annotate(
            # The customer's own source; failing that, their first order's (looked up only then).
            acquisition=Coalesce(NullIf("source", Value("")), Subquery(first_order_source), Value(""))
        )
        .order_by()
        .values("acquisition")
        .annotate(customers=Count("id"), revenue=Sum("total_summ"))
    )
    rows = {
        r["acquisition"]: SourceRow(r["acquisition"], r["customers"], r["revenue"] or ZERO) for r in acquired
    }
    for source, cost in source_costs(site_ids, period).items():
        rows.setdefault(source, SourceRow(source)).cost = cost
    return sorted(rows.values(), key=lambda r: (-r.revenue, -(r.cost or 0), r.source))


def source_costs(site_ids: Sequence[int], period: Period) -> dict[str, Decimal]:
    """Spend per source over `period`: each cost with a source that names one of the sites (or no site:
    shared by all) counts with the share of its days that fall in the period."""
    costs = (
        Cost.objects.exclude(source="")
        .filter(date_from__lte=period.last, date_to__gte=period.first)
        .filter(Q(sites__isnull=True) | Q(sites__in=site_ids))
        .distinct()
        .values_list("source", "date_from", "date_to", "summ")
    )
    spent: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for source, date_from, date_to, summ in costs:
        days = (date_to - date_from).days + 1
        overlap = (min(date_to, period.last) - max(date_from, period.first)).days + 1
        spent[source] += summ if days <= 0 else summ * overlap / days
    return {source: value.quantize(CENT) for source, value in spent.items()}


# --- customer metrics: RFM grid and lifecycle -----------------------------------------------------


@dataclass(frozen=True)
class RfmCell:
    r: int
    f: int
    customers: int
    revenue: Decimal


def rfm_grid(site_ids: Sequence[int]) -> list[RfmCell]:
    """Customers and their revenue per (R, F) score pair, from the customer metrics as they stand now."""
    rows = (
        CustomerMetrics.objects.filter(site_id__in=site_ids, r_score__isnull=False, f_score__isnull=False)
        .order_by()
        .values("r_score", "f_score")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
    )
    return [RfmCell(r["r_score"], r["f_score"], r["n"], r["revenue"] or ZERO) for r in rows]


def lifecycle_counts(site_ids: Sequence[int]) -> list[tuple[str, str, int]]:
    """(stage, label, customers) for every lifecycle stage in funnel order."""
    found = dict(
        CustomerMetrics.objects.filter(site_id__in=site_ids)
        .exclude(lifecycle="")
        .order_by()
        .values_list("lifecycle")
        .annotate(n=Count("pk"))
    )
    return [(stage.value, str(stage.label), found.get(stage.value, 0)) for stage in Lifecycle]


# --- everything the dashboard shows --------------------------------------------------------------


@dataclass
class ShopKpis:
    period: Period
    previous: Period
    current: Figures
    before: Figures
    trend_unit: str
    trend: list[TrendPoint]
    previous_trend: list[TrendPoint]
    cohorts: CohortMatrix
    sources: list[SourceRow]


def shop_kpis(site_ids: Sequence[int], period: Period, *, now: datetime.datetime | None = None) -> ShopKpis:
    previous = previous_period(period)
    unit = trend_unit(period)
    with _analytic_session():
        statuses = _statuses()
        current, before = period_figures(site_ids, [period, previous], now=now, statuses=statuses)
        lines = trends(site_ids, [period, previous], unit, statuses=statuses)
        return ShopKpis(
            period=period,
            previous=previous,
            current=current,
            before=before,
            trend_unit=unit,
            trend=lines[0],
            previous_trend=lines[1],
            cohorts=cohorts(site_ids, period, statuses=statuses),
            sources=sources(site_ids, period, statuses=statuses),
        )
