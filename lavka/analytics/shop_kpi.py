"""Shop KPIs (docs/metrics.md, "Shop KPIs"): the owner's figures per site and period, with the previous
period for trend.

Every figure is read from the cells of lavka.analytics.facts — each order's facts (its day, whether it
counts, the day of the customer's previous counted order, the month of the next …) summed by site, day
and kind — never from the orders: a fixed number of small queries whose cost grows with the days of the
periods, not with the orders or customers. "Counted" orders are those of `Order.objects.counted()`:
every order that is not in the cancel group.
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
from django.db.models import Count, Q, Sum
from django.utils import timezone

from lavka.analytics import dialect, facts
from lavka.analytics.kpi import Period
from lavka.analytics.models import Cost, CustomerMetrics, FactsCell, Lifecycle, OrderFacts, SiteAnalytics
from lavka.core.models import Site
from lavka.core.permissions import Role, is_admin

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
COHORT_MONTHS = 12  # the cohort matrix shows at least this many acquisition months
DAILY_TREND_DAYS = 92  # up to this long a period's trend is drawn per day, longer per month
DEFAULT_CHURN_DAYS: int = SiteAnalytics._meta.get_field("churned_days").default
CELLS = connection.ops.quote_name(FactsCell._meta.db_table)
FACTS = connection.ops.quote_name(OrderFacts._meta.db_table)


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


# --- reading the facts -------------------------------------------------------------------------------

_synced: contextvars.ContextVar[bool] = contextvars.ContextVar("lavka_kpi_facts_synced", default=False)


@contextlib.contextmanager
def _reading() -> Iterator[Any]:
    """A cursor in one transaction. The order facts are brought up to date (`facts.sync`) on the
    outermost entry only: `shop_kpis` reads through several of the functions below."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if _synced.get():
            yield cursor
            return
        facts.sync()
        token = _synced.set(True)
        try:
            yield cursor
        finally:
            _synced.reset(token)


def _between(period: Period, field_name: str = "day") -> tuple[str, list[Any]]:
    """`field_name` (a date column) within the period's days, and the parameters."""
    return f"{field_name} >= %s AND {field_name} < %s", [_day(period.first), _day(_next_day(period.last))]


def _day(day: datetime.date) -> Any:
    return facts.dialect_date(day)


def _date(value: Any) -> datetime.date:
    # A date column read by raw SQL: a date from PostgreSQL, ISO text from SQLite.
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value)[:10])


def _date_sql() -> str:
    """A date parameter standing alone in a SELECT list (PostgreSQL must be told its type; SQLite keeps
    dates as text, and a CAST would make a number of it)."""
    return "CAST(%s AS date)" if dialect.postgres() else "%s"


def _next_day(day: datetime.date) -> datetime.date:
    return day + datetime.timedelta(days=1)


def _cells(site_ids: Sequence[int], *kinds: str) -> str:
    return f"FROM {CELLS} WHERE {dialect.in_ids('site_id', site_ids)} AND {facts.cells_of(kinds)}"


def _ratio(part: float | Decimal | int, whole: float | Decimal | int) -> float | None:
    return float(part) / float(whole) if whole else None


def _money(cents: Any) -> Decimal:
    return (Decimal(int(cents or 0)) / 100).quantize(CENT)


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


# The kinds of cells the figures of a period add up (lavka.analytics.facts.KINDS): counted orders,
# first orders, delivered, complaints, repeat orders by their previous order's day, second orders by
# their first order's day.
_PERIOD_KINDS = ("o", "n", "d", "c", "p", "s")


def period_figures(
    site_ids: Sequence[int], periods: Sequence[Period], *, now: datetime.datetime | None = None
) -> list[Figures]:
    """The figures of each of `periods` (adjacent or not) for orders of `site_ids`: one query over the
    day cells of the periods (summed by kind, period, and whether the key — the previous order's day —
    is before the period), and two for churn.

    Per period: the buyers are the customers whose first counted order is in it, and those with a
    counted order in it whose previous counted order is before it. A buyer is not a repeat buyer when
    their one counted order up to the period's end is their first: a first order of the period with no
    second order in it."""
    figures = [Figures(p) for p in periods]
    if not site_ids or not periods:
        return figures
    date = _date_sql()
    spans = " UNION ALL ".join(f"SELECT {i} AS i, {date} AS s, {date} AS e" for i in range(len(periods)))
    params = [_day(d) for p in periods for d in (p.first, _next_day(p.last))]
    sums: dict[tuple[int, str, bool], tuple[int, int, int]] = {}
    with _reading() as cursor:
        cursor.execute(
            "SELECT p.i, c.kind, c.key < p.s, SUM(c.n), SUM(c.amount), SUM(c.extra)"
            f" FROM {CELLS} c JOIN ({spans}) p ON c.day >= p.s AND c.day < p.e"
            f" WHERE {dialect.in_ids('c.site_id', site_ids)}"
            f" AND {facts.cells_of(_PERIOD_KINDS, 'c.kind')} GROUP BY p.i, c.kind, c.key < p.s",
            params,
        )
        for i, kind, before, n, amount, extra in cursor.fetchall():
            sums[(i, kind, bool(before))] = (int(n), int(amount), int(extra))
        churn = churn_by_month(site_ids, periods, now=now)

    def total(i: int, kind: str, before: bool | None = None) -> tuple[int, int, int]:
        found = [v for (j, k, b), v in sums.items() if j == i and k == kind and before in (None, b)]
        return tuple(sum(column) for column in zip(*found, strict=True)) if found else (0, 0, 0)

    for i, f in enumerate(figures):
        orders, revenue, _ = total(i, "o")
        firsts, first_revenue, _ = total(i, "n")
        delivered, delivery_us, timed = total(i, "d")
        repeat_before = total(i, "p", before=True)[0]
        seconds, second_first_revenue, _ = total(i, "s", before=False)
        single = firsts - seconds  # buyers whose one counted order up to the end is their first
        f.orders, f.revenue = orders, _money(revenue)
        f.buyers = firsts + repeat_before
        f.repeat_buyers = f.buyers - single
        f.repeat_revenue = _money(revenue - (first_revenue - second_first_revenue))
        f.new_customers, f.delivered, f.complaints = firsts, delivered, total(i, "c")[0]
        f.delivery_time = datetime.timedelta(microseconds=delivery_us) / timed if timed else None
        f.churn = churn[i]
    return figures


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
    counts = _churn_counts(windows, wanted)
    for churn, mine in zip(result, months, strict=True):
        for month in mine:
            active, churned = counts[month]
            churn.active += active
            churn.churned += churned
    return result


def _churn_counts(
    windows: dict[int, int], months: set[datetime.date]
) -> dict[datetime.date, tuple[int, int]]:
    """(active at the start, churned by the end) of each month in `months`, over the sites in `windows`.

    For month m with first day s, the next month's first day e and the site's window W (days back from
    a local midnight): a customer is active at s through their last counted order before s, if it is on
    or after s − W — a counted order of a day in [s − W, s) whose next counted order is in month m or
    later (the `x` cells, keyed by the month of the next order). They churned when their last counted
    order before e is before e − W:
      - either that same order, when the next one is after month m and it is before e − W too;
      - or, only with a window shorter than the month, orders of their own in month m, all before
        e − W, after an order in [s − W, s): read from the facts of those months (few shops have such
        a window), not from the cells."""
    ordered = sorted(months)
    month_of: list[datetime.date] = []  # by row of `sites_months`
    every: list[str] = []
    short: list[str] = []  # the (site, month) rows whose window is shorter than the month
    every_params: list[Any] = []
    short_params: list[Any] = []
    date = _date_sql()
    for site_id, days in windows.items():
        window = datetime.timedelta(days=days)
        for month in ordered:
            end = add_months(month, 1)
            row = (
                f"SELECT {len(month_of)} AS i, {int(site_id)} AS site, {date} AS f, {date} AS s, {date} AS t"
            )
            if end - window > month:
                short.append(f"{row}, {date} AS e")
                short_params += [_day(month - window), _day(month), _day(end - window), _day(end)]
            every.append(f"{row}, {date} AS e")
            every_params += [_day(month - window), _day(month), _day(min(month, end - window)), _day(end)]
            month_of.append(month)
    active: dict[datetime.date, int] = defaultdict(int)
    churned: dict[datetime.date, int] = defaultdict(int)
    with _reading() as cursor:
        cursor.execute(
            "SELECT m.i, SUM(CASE WHEN c.key >= m.s THEN c.n ELSE 0 END),"
            " SUM(CASE WHEN c.day < m.t AND c.key >= m.e THEN c.n ELSE 0 END)"
            f" FROM {CELLS} c JOIN ({' UNION ALL '.join(every)}) m"
            " ON c.site_id = m.site AND c.day >= m.f AND c.day < m.s WHERE c.kind = 'x' GROUP BY m.i",
            every_params,
        )
        for i, n, gone in cursor.fetchall():
            active[month_of[i]] += int(n or 0)
            churned[month_of[i]] += int(gone or 0)
        if short:
            # f: the customer's first counted order of the month, after one in [s − W, s); o: their last
            # of the month; both before e − W.
            cursor.execute(
                f"SELECT m.i, COUNT(*) FROM {FACTS} f JOIN {FACTS} o ON o.customer_id = f.customer_id"
                f" JOIN ({' UNION ALL '.join(short)}) m ON f.site_id = m.site"
                " WHERE f.month_first AND f.day >= m.s AND f.day < m.t AND f.prev_day >= m.f"
                " AND o.counted AND o.day >= m.s AND o.day < m.t AND o.next_month >= m.e GROUP BY m.i",
                short_params,
            )
            for i, n in cursor.fetchall():
                churned[month_of[i]] += int(n)
    return {m: (active[m], churned[m]) for m in months}


# --- trend -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    day: datetime.date  # the bucket's first day
    revenue: Decimal
    orders: int


def trend_unit(period: Period) -> str:
    return "day" if (period.last - period.first).days < DAILY_TREND_DAYS else "month"


def trend(site_ids: Sequence[int], period: Period, unit: str | None = None) -> list[TrendPoint]:
    """Revenue and counted orders per day (short periods) or per month, every bucket present."""
    return trends(site_ids, [period], unit or trend_unit(period))[0]


def trends(site_ids: Sequence[int], periods: Sequence[Period], unit: str) -> list[list[TrendPoint]]:
    """`trend` of several disjoint periods in one query (a month bucket may hold days of two periods:
    each keeps its own part)."""
    span, days = _between(Period(min(p.first for p in periods), max(p.last for p in periods)))
    found: dict[tuple[int, datetime.date], list[int]] = defaultdict(lambda: [0, 0])
    with _reading() as cursor:
        cursor.execute(f"SELECT day, n, amount {_cells(site_ids, 'o')} AND {span}", days)
        for day, n, cents in cursor.fetchall():
            day = _date(day)
            for i, p in enumerate(periods):
                if p.first <= day <= p.last:
                    bucket = found[(i, day if unit == "day" else month_start(day))]
                    bucket[0] += n
                    bucket[1] += cents
    return [
        [TrendPoint(day, _money(found[(i, day)][1]), found[(i, day)][0]) for day in _buckets(p, unit)]
        for i, p in enumerate(periods)
    ]


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


def cohorts(site_ids: Sequence[int], period: Period, months: int = COHORT_MONTHS) -> CohortMatrix:
    """Acquisition month × months since: for the months of `period`, and at least `months` of them
    (ending with the period's last month); orders counted up to the period's end. One query: the new
    customers (`n` cells) and each customer's first counted order of a month, by cohort (`h` cells)."""
    last = month_start(period.last)
    first = min(month_start(period.first), add_months(last, -(months - 1)))
    within, days = _between(Period(first, period.last))
    month = facts.month_sql("day")
    size_of: dict[datetime.date, int] = defaultdict(int)
    buyers: dict[tuple[datetime.date, int], int] = defaultdict(int)
    with _reading() as cursor:
        cursor.execute(
            f"SELECT kind, key, {month}, SUM(n) {_cells(site_ids, 'n', 'h')} AND {within}"
            f" GROUP BY kind, key, {month}",
            days,
        )
        for kind, key, seen, n in cursor.fetchall():
            if kind == "n":
                size_of[_date(seen)] += int(n)
            elif (cohort := _date(key)) >= first:  # a customer acquired before the matrix: not in it
                buyers[(cohort, months_between(cohort, _date(seen)))] += int(n)
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


def sources(site_ids: Sequence[int], period: Period) -> list[SourceRow]:
    """LTV, CAC and ROMI by acquisition source for the customers acquired in `period` (see
    docs/metrics.md), sorted by revenue, then name."""
    within, days = _between(period)
    with _reading() as cursor:
        cursor.execute(
            f"SELECT label, SUM(n), SUM(amount) {_cells(site_ids, 'a')} AND {within} GROUP BY label", days
        )
        rows = {label: SourceRow(label, int(n), _money(cents)) for label, n, cents in cursor.fetchall()}
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


@dataclass(frozen=True)
class CustomerPanels:
    rfm: list[RfmCell]
    lifecycle: list[tuple[str, str, int]]  # (stage, label, customers) for every stage in funnel order


def customer_panels(site_ids: Sequence[int]) -> CustomerPanels:
    """The RFM grid (customers and their revenue per (R, F) score pair) and the lifecycle funnel, from
    the customer metrics as they stand now: one pass over them, grouped by R, F and stage (at most a few
    hundred groups), rather than one pass for each."""
    rows = (
        CustomerMetrics.objects.filter(site_id__in=site_ids)
        .order_by()
        .values_list("r_score", "f_score", "lifecycle")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
    )
    grid: dict[tuple[int, int], list[Any]] = defaultdict(lambda: [0, ZERO])
    stages: dict[str, int] = defaultdict(int)
    for r, f, stage, n, revenue in rows:
        if r is not None and f is not None:
            grid[(r, f)][0] += n
            grid[(r, f)][1] += revenue or ZERO
        if stage:
            stages[stage] += n
    return CustomerPanels(
        rfm=[RfmCell(r, f, n, revenue) for (r, f), (n, revenue) in grid.items()],
        lifecycle=[(stage.value, str(stage.label), stages[stage.value]) for stage in Lifecycle],
    )


def rfm_grid(site_ids: Sequence[int]) -> list[RfmCell]:
    return customer_panels(site_ids).rfm


def lifecycle_counts(site_ids: Sequence[int]) -> list[tuple[str, str, int]]:
    return customer_panels(site_ids).lifecycle


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
    with _reading():
        current, before = period_figures(site_ids, [period, previous], now=now)
        lines = trends(site_ids, [period, previous], unit)
        return ShopKpis(
            period=period,
            previous=previous,
            current=current,
            before=before,
            trend_unit=unit,
            trend=lines[0],
            previous_trend=lines[1],
            cohorts=cohorts(site_ids, period),
            sources=sources(site_ids, period),
        )
