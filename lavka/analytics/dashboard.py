"""What the owner's dashboard shows, made ready for the templates: KPI tiles with their trend, and the
charts (lavka.analytics.charts) over the figures of lavka.analytics.shop_kpi.

The figures of a site set and period are cached for CACHE_SECONDS: they are sums over the order facts'
day cells (lavka.analytics.facts), under a second even for ten million orders, but the RFM grid and the
lifecycle counts read every customer's metrics, and a page opened again should not repeat that. The page
says when its figures were computed (with a link to recompute). `warm` computes the default view (the
last twelve months) of every site set people open, so that, run periodically, the first visitor does not
wait either.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.accounts.models import User
from lavka.analytics import charts, shop_kpi
from lavka.analytics.kpi import Period
from lavka.core.models import Site
from lavka.core.permissions import Role
from lavka.core.templatetags.lavka_ui import CURRENCY_SIGNS, money

CACHE_SECONDS: int = getattr(settings, "LAVKA_DASHBOARD_CACHE_SECONDS", 900)
DEFAULT_MONTHS = 12
# Well inside the cache's life, so that the warmed views never expire between two runs.
WARM_SECONDS = max(CACHE_SECONDS * 2 // 3, 60)
CACHE_VERSION = 1


@dataclass
class Snapshot:
    """Everything the dashboard shows for one site set and period, and when it was computed."""

    kpis: shop_kpi.ShopKpis
    rfm: list[shop_kpi.RfmCell]
    lifecycle: list[tuple[str, str, int]]
    computed_at: datetime.datetime


def snapshot(site_ids: Sequence[int], period: Period, *, fresh: bool = False) -> Snapshot:
    key = (
        f"lavka:dashboard:{CACHE_VERSION}:{','.join(map(str, sorted(site_ids)))}:{period.first}:{period.last}"
    )
    if not fresh:
        found = cache.get(key)
        if found is not None:
            return found
    panels = shop_kpi.customer_panels(site_ids)
    made = Snapshot(
        kpis=shop_kpi.shop_kpis(site_ids, period),
        rfm=panels.rfm,
        lifecycle=panels.lifecycle,
        computed_at=timezone.now(),
    )
    cache.set(key, made, CACHE_SECONDS)
    return made


def site_sets() -> list[list[int]]:
    """The site sets whose default dashboard people open: every site alone, all sites (admins), and
    each supervisor's sites."""
    everything = sorted(Site.objects.values_list("pk", flat=True))
    found = {tuple(everything)} | {(pk,) for pk in everything}
    supervisors = User.objects.filter(role=Role.SUPERVISOR, is_active=True).prefetch_related("sites")
    for user in supervisors:
        mine = tuple(sorted(s.pk for s in user.sites.all()))
        if mine:
            found.add(mine)
    return [list(ids) for ids in sorted(found) if ids]


def warm() -> int:
    """Recompute and cache the default dashboard of each site set; how many. Meant for a periodic job
    every WARM_SECONDS (not registered here: with many site sets it may take a while, which must not hold
    up the embedded worker's event dispatch)."""
    period = shop_kpi.last_months(DEFAULT_MONTHS)
    sets = site_sets()
    for ids in sets:
        snapshot(ids, period, fresh=True)
    return len(sets)


# --- tiles -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: str
    previous: str
    change: str  # "+12.5 %", "−3.1 pp", "" when there is nothing to compare
    direction: str  # "up", "down" or "flat"
    verdict: str  # "good", "bad" or "" (no change, or no comparison)
    hint: str  # the definition in a few words (the title of the tile)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{floatformat(share * 100, 1)} %"


def _number(value: float | int | None, digits: int = 0) -> str:
    return "—" if value is None else floatformat(value, f"{digits}g")


def whole_money(value: Decimal, currency: str) -> str:
    """Money in whole units, as a tile shows it: "1 234 ₽"."""
    sign = CURRENCY_SIGNS.get(currency, currency)
    amount = floatformat(value, "0g")
    return f"{amount}\xa0{sign}" if sign else amount


def duration(value: datetime.timedelta | None) -> str:
    if value is None:
        return "—"
    hours = value.total_seconds() / 3600
    if hours < 48:
        return _("%(hours)s h") % {"hours": floatformat(hours, 1)}
    return _("%(days)s d") % {"days": floatformat(hours / 24, 1)}


def _relative(now: float, before: float) -> tuple[str, float]:
    if not before:
        return "", 0.0
    change = (now - before) / before * 100
    return f"{'+' if change > 0 else '−' if change < 0 else '±'}{floatformat(abs(change), 1)} %", change


def _points(now: float, before: float) -> tuple[str, float]:
    change = (now - before) * 100
    return f"{'+' if change > 0 else '−' if change < 0 else '±'}{floatformat(abs(change), 1)} pp", change


def _tile(
    key: str,
    label: str,
    hint: str,
    now: Any,
    before: Any,
    show: Callable[[Any], str],
    *,
    share: bool = False,
    lower_is_better: bool = False,
) -> Tile:
    if now is None or before is None:
        change, delta = "", 0.0
    elif share:
        change, delta = _points(float(now), float(before))
    else:
        change, delta = _relative(_plain(now), _plain(before))
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    verdict = "" if direction == "flat" else ("good" if (delta > 0) != lower_is_better else "bad")
    return Tile(key, label, show(now), show(before), change, direction, verdict, hint)


def _plain(value: Any) -> float:
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


TILE_HINTS = {
    "revenue": gettext_lazy("Total of the orders placed in the period, cancelled ones left out."),
    "orders": gettext_lazy("Orders placed in the period, cancelled ones left out."),
    "average_order": gettext_lazy("Revenue ÷ orders."),
    "repeat_share": gettext_lazy(
        "Of the customers who ordered in the period, those with two or more orders by its end."
    ),
    "repeat_revenue_share": gettext_lazy("Share of the period's revenue from those repeat customers."),
    "churn": gettext_lazy(
        "Customers active at a month's start (an order within the churn window) who are no longer active "
        "at its end; pooled over the whole past months of the period."
    ),
    "frequency": gettext_lazy("Orders ÷ customers who ordered, in the period."),
    "new_customers": gettext_lazy("Customers whose first order falls in the period."),
    "complaints": gettext_lazy("Complaints per 10,000 orders delivered (complete), orders of the period."),
    "delivery": gettext_lazy("Mean time from an order to its completion, completed orders of the period."),
}


def tiles(kpis: shop_kpi.ShopKpis, currency: str) -> list[Tile]:
    now, before = kpis.current, kpis.before

    def cash(value: Decimal | None) -> str:
        return "—" if value is None else whole_money(value, currency)

    def churn_rate(f: shop_kpi.Figures) -> float | None:
        return f.churn.rate if f.churn else None

    def rate(value: float | None) -> str:
        return _number(value, 1)

    return [
        _tile("revenue", _("Revenue"), TILE_HINTS["revenue"], now.revenue, before.revenue, cash),
        _tile("orders", _("Orders"), TILE_HINTS["orders"], now.orders, before.orders, _number),
        _tile(
            "average_order",
            _("Average order"),
            TILE_HINTS["average_order"],
            now.average_order,
            before.average_order,
            cash,
        ),
        _tile(
            "repeat_share",
            _("Repeat customers"),
            TILE_HINTS["repeat_share"],
            now.repeat_share,
            before.repeat_share,
            _percent,
            share=True,
        ),
        _tile(
            "repeat_revenue_share",
            _("Revenue from repeat customers"),
            TILE_HINTS["repeat_revenue_share"],
            now.repeat_revenue_share,
            before.repeat_revenue_share,
            _percent,
            share=True,
        ),
        _tile(
            "churn",
            _("Monthly churn"),
            TILE_HINTS["churn"],
            churn_rate(now),
            churn_rate(before),
            _percent,
            share=True,
            lower_is_better=True,
        ),
        _tile(
            "frequency",
            _("Purchase frequency"),
            TILE_HINTS["frequency"],
            now.frequency,
            before.frequency,
            lambda v: _number(v, 2),
        ),
        _tile(
            "new_customers",
            _("New customers"),
            TILE_HINTS["new_customers"],
            now.new_customers,
            before.new_customers,
            _number,
        ),
        _tile(
            "complaints",
            _("Complaints per 10,000 deliveries"),
            TILE_HINTS["complaints"],
            now.complaints_per_10k,
            before.complaints_per_10k,
            rate,
            lower_is_better=True,
        ),
        _tile(
            "delivery",
            _("Order to delivery"),
            TILE_HINTS["delivery"],
            now.delivery_time,
            before.delivery_time,
            duration,
            lower_is_better=True,
        ),
    ]


# --- charts ------------------------------------------------------------------------------------------


def _bucket_label(day: datetime.date, unit: str) -> str:
    return date_filter(day, "j M" if unit == "day" else "M Y")


def trend_charts(kpis: shop_kpi.ShopKpis, currency: str) -> dict[str, SafeString]:
    unit = kpis.trend_unit
    labels = [_bucket_label(p.day, unit) for p in kpis.trend]
    width = len(kpis.trend)

    def aligned(points: list[shop_kpi.TrendPoint], pick: Callable[[shop_kpi.TrendPoint], float]) -> list:
        values: list[float | None] = [pick(p) for p in points[:width]]
        return values + [None] * (width - len(values))

    def chart(title: str, pick: Callable[[shop_kpi.TrendPoint], float]) -> SafeString:
        return charts.line_chart(
            labels,
            [
                charts.Series(_("Previous period"), aligned(kpis.previous_trend, pick), "previous"),
                charts.Series(_("This period"), aligned(kpis.trend, pick), "current"),
            ],
            label=title,
        )

    return {
        "revenue": chart(_("Revenue by %(unit)s") % {"unit": _unit_name(unit)}, lambda p: float(p.revenue)),
        "orders": chart(_("Orders by %(unit)s") % {"unit": _unit_name(unit)}, lambda p: float(p.orders)),
    }


def _unit_name(unit: str) -> str:
    return _("day") if unit == "day" else _("month")


def cohort_heatmap(matrix: shop_kpi.CohortMatrix) -> SafeString:
    top = max((s for c in matrix.cohorts for s in c.retention[1:] if s is not None), default=0.0) or 1.0
    biggest = max((c.customers for c in matrix.cohorts), default=0) or 1
    rows, cells = [], []
    for cohort in matrix.cohorts:
        name = date_filter(cohort.month, "M Y")
        rows.append(name)
        row: list[charts.Cell | None] = [
            charts.Cell(
                0.15 + 0.5 * cohort.customers / biggest,
                _number(cohort.customers),
                _("%(month)s: %(n)s new customers") % {"month": name, "n": cohort.customers},
            )
        ]
        for k, share in enumerate(cohort.retention[1:], start=1):
            if share is None:
                row.append(None)
                continue
            row.append(
                charts.Cell(
                    share / top,
                    f"{floatformat(share * 100, 0)}%",
                    _("%(month)s, month %(k)s: %(buyers)s of %(n)s ordered (%(share)s)")
                    % {
                        "month": name,
                        "k": k,
                        "buyers": cohort.buyers[k],
                        "n": cohort.customers,
                        "share": _percent(share),
                    },
                )
            )
        cells.append(row)
    columns = [_("new")] + [f"+{k}" for k in range(1, matrix.months)]
    return charts.heatmap(
        rows, columns, cells, label=_("Cohort retention"), css_class="heatmap cohorts", cell_width=46
    )


def rfm_heatmap(grid: list[shop_kpi.RfmCell], currency: str) -> SafeString | None:
    if not grid:
        return None
    found = {(c.r, c.f): c for c in grid}
    biggest = max(c.customers for c in grid) or 1
    rows, cells = [], []
    for r in range(5, 0, -1):
        rows.append(f"R{r}")
        row: list[charts.Cell | None] = []
        for f in range(1, 6):
            cell = found.get((r, f))
            n, revenue = (cell.customers, cell.revenue) if cell else (0, Decimal(0))
            row.append(
                charts.Cell(
                    n / biggest,
                    f"{charts.compact(n)} · {charts.compact(float(revenue))}",
                    _("R%(r)s F%(f)s: %(n)s customers, revenue %(revenue)s")
                    % {"r": r, "f": f, "n": n, "revenue": money(revenue, currency)},
                )
            )
        cells.append(row)
    return charts.heatmap(
        rows,
        [f"F{f}" for f in range(1, 6)],
        cells,
        label=_("RFM grid: recency × frequency"),
        css_class="heatmap rfm",
        cell_width=96,
        cell_height=30,
        row_label_width=40,
    )


def lifecycle_funnel(stages: list[tuple[str, str, int]]) -> SafeString | None:
    total = sum(n for _stage, _label, n in stages)
    if not total:
        return None
    return charts.bars(
        [
            charts.Bar(str(label).capitalize(), n, f"{_number(n)} ({floatformat(n / total * 100, 1)} %)")
            for _stage, label, n in stages
        ],
        label=_("Customers by lifecycle stage"),
    )


@dataclass(frozen=True)
class SourceLine:
    source: str
    customers: str
    revenue: str
    ltv: str
    cost: str
    cac: str
    romi: str
    romi_verdict: str


def source_lines(rows: list[shop_kpi.SourceRow], currency: str) -> list[SourceLine]:
    def cash(value: Decimal | None) -> str:
        return "—" if value is None else money(value, currency)

    return [
        SourceLine(
            source=row.source or _("(none)"),
            customers=_number(row.customers),
            revenue=cash(row.revenue),
            ltv=cash(row.ltv),
            cost=cash(row.cost),
            cac=cash(row.cac),
            romi=_percent(row.romi),
            romi_verdict="" if row.romi is None else ("good" if row.romi >= 0 else "bad"),
        )
        for row in rows
    ]


def currency_of(sites: Sequence[Site]) -> str:
    """The sites' currency, or "" when they differ (sums are then shown without a sign)."""
    found = {s.currency for s in sites}
    return found.pop() if len(found) == 1 else ""
