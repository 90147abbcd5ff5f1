"""Analytics pages for supervisors and admins: the manager KPIs (the table, a drill-down per figure, the
CSV), the owner's dashboard, the model backtest and the lifecycle thresholds.

Anyone else gets 404, as do managers and sites the viewer may not see (their existence does not leak).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.analytics import charts, dashboard, kpi, lifecycle, shop_kpi
from lavka.analytics.models import ModelFit, SiteAnalytics
from lavka.core.actor import Actor
from lavka.core.htmx import render_page
from lavka.core.models import Site
from lavka.core.permissions import sees_all_in_sites
from lavka.core.ui import csv_response
from lavka.orders.models import Order
from lavka.tasks.models import Task

MAX_DAYS = 366

FIGURE_LABELS = {
    "handled": gettext_lazy("Orders handled"),
    "first_action": gettext_lazy("Time to first action"),
    "completed": gettext_lazy("Completed"),
    "cancelled": gettext_lazy("Cancelled"),
    "tasks_on_time": gettext_lazy("Tasks on time"),
    "tasks_overdue": gettext_lazy("Tasks overdue"),
    "escalations": gettext_lazy("Escalations"),
}


def supervisors_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            not request.user.is_authenticated
            or not request.user.is_active
            or not sees_all_in_sites(request.user)
        ):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def period_from(params: QueryDict) -> tuple[kpi.Period, str]:
    """The period asked for, or the current month with the reason the request was not usable."""
    default = kpi.Period.current_month()
    raw_from, raw_to = params.get("from", "").strip(), params.get("to", "").strip()
    if not raw_from and not raw_to:
        return default, ""
    try:
        first = datetime.date.fromisoformat(raw_from) if raw_from else default.first
        last = datetime.date.fromisoformat(raw_to) if raw_to else default.last
    except ValueError:
        return default, _("Enter dates as YYYY-MM-DD.")
    if last < first:
        return default, _("The end of the period is before its start.")
    if (last - first).days >= MAX_DAYS:
        return default, _("A period is at most %(days)s days.") % {"days": MAX_DAYS}
    return kpi.Period(first, last), ""


def _query(period: kpi.Period) -> str:
    return f"from={period.first.isoformat()}&to={period.last.isoformat()}"


def _duration(value: datetime.timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


@supervisors_only
def kpi_page(request: HttpRequest) -> HttpResponse:
    period, error = period_from(request.GET)
    rows = [
        {
            "kpi": row,
            "median": _duration(row.median_first_action),
            "counts": [(f, row.count(f)) for f in kpi.FIGURES],
        }
        for row in kpi.manager_kpis(request.user, period)
    ]
    context = {
        "nav": "kpi",
        "period": period,
        "error": error,
        "query": _query(period),
        "rows": rows,
        "labels": [FIGURE_LABELS[f] for f in kpi.FIGURES],
    }
    return render(request, "analytics/kpi.html", context)


@supervisors_only
def kpi_detail(request: HttpRequest, user_id: int, figure: str) -> HttpResponse:
    if figure not in kpi.FIGURES:
        raise Http404
    manager = next((m for m in kpi.visible_managers(request.user) if m.pk == user_id), None)
    if manager is None:
        raise Http404
    period, error = period_from(request.GET)
    (row,) = kpi.manager_kpis(request.user, period, [manager])
    context: dict[str, Any] = {
        "nav": "kpi",
        "manager": manager,
        "figure": figure,
        "label": FIGURE_LABELS[figure],
        "period": period,
        "error": error,
        "query": _query(period),
        "count": row.count(figure),
        "median": _duration(row.median_first_action),
    }
    if figure in kpi.ORDER_FIGURES:
        orders = Order.objects.in_bulk(row.order_ids())
        if figure in ("handled", "first_action"):
            assignments = row.assignments if figure == "handled" else row.acted
            context["assignments"] = [(a, orders.get(a.order_id), _duration(_delta(a))) for a in assignments]
        else:
            moves = row.completed_moves if figure == "completed" else row.cancelled_moves
            context["moves"] = [(m, orders.get(m.order_id)) for m in moves]
    else:
        context["tasks"] = list(Task.objects.filter(pk__in=row.task_ids(figure)).order_by("due_at", "id"))
    return render(request, "analytics/kpi_detail.html", context)


def _delta(assignment: kpi.Assignment) -> datetime.timedelta | None:
    seconds = assignment.seconds
    return None if seconds is None else datetime.timedelta(seconds=seconds)


def _ids(values: list[Any]) -> str:
    return " ".join(str(v) for v in values)


@supervisors_only
def kpi_csv(request: HttpRequest) -> HttpResponse:
    period, error = period_from(request.GET)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    rows = kpi.manager_kpis(request.user, period)
    numbers = kpi.order_numbers(rows)
    header = [
        "period_from",
        "period_to",
        "manager_id",
        "manager",
        "orders_handled",
        "orders_handled_numbers",
        "first_actions",
        "median_first_action_seconds",
        "first_action_history_ids",
        "orders_completed",
        "orders_completed_numbers",
        "orders_cancelled",
        "orders_cancelled_numbers",
        "tasks_on_time",
        "tasks_on_time_ids",
        "tasks_overdue",
        "tasks_overdue_ids",
        "escalations",
        "escalations_task_ids",
    ]

    def lines() -> Any:
        for row in rows:
            median = row.median_first_action
            yield [
                period.first.isoformat(),
                period.last.isoformat(),
                row.manager.pk,
                str(row.manager),
                row.count("handled"),
                _ids([numbers.get(i, i) for i in row.handled_order_ids]),
                row.count("first_action"),
                "" if median is None else f"{median.total_seconds():g}",
                _ids([f"{a.record_id}>{a.action_record_id}" for a in row.acted]),
                row.count("completed"),
                _ids([numbers.get(i, i) for i in row.completed_order_ids]),
                row.count("cancelled"),
                _ids([numbers.get(i, i) for i in row.cancelled_order_ids]),
                row.count("tasks_on_time"),
                _ids(row.on_time_task_ids),
                row.count("tasks_overdue"),
                _ids(row.overdue_task_ids),
                row.count("escalations"),
                _ids(row.escalated_task_ids),
            ]

    filename = f"manager-kpi-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return csv_response(filename, header, lines())


# --- The owner's dashboard, the backtest and the analytics settings (docs/metrics.md, "Shop KPIs") ------


def _site_choice(request: HttpRequest, *, allow_all: bool) -> tuple[list[Site], Site | None]:
    """The sites the viewer may see and the one asked for (`?site=CODE`); none asked: all of them when
    `allow_all`, else the first. A site the viewer may not see is a 404."""
    sites = shop_kpi.visible_sites(request.user)
    code = request.GET.get("site", "") if request.method == "GET" else request.POST.get("site", "")
    if code:
        chosen = next((s for s in sites if s.code == code), None)
        if chosen is None:
            raise Http404
        return sites, chosen
    if allow_all or not sites:
        return sites, None
    return sites, sites[0]


def _quick_periods() -> list[tuple[str, kpi.Period]]:
    this_month = kpi.Period.current_month()
    last_month = shop_kpi.previous_period(this_month)
    return [
        (_("This month"), this_month),
        (_("Last month"), last_month),
        (_("Last 3 months"), shop_kpi.last_months(3)),
        (_("Last 12 months"), shop_kpi.last_months(12)),
    ]


@supervisors_only
def dashboard_page(request: HttpRequest) -> HttpResponse:
    sites, site = _site_choice(request, allow_all=True)
    if request.GET.get("from") or request.GET.get("to"):
        period, error = period_from(request.GET)
    else:
        period, error = shop_kpi.last_months(12), ""
    chosen = [site] if site else sites
    currency = dashboard.currency_of(chosen)
    context: dict[str, Any] = {
        "nav": "dashboard",
        "sites": sites,
        "site": site,
        "period": period,
        "error": error,
        "quick": [(label, p, _query(p)) for label, p in _quick_periods()],
        "site_query": f"&site={site.code}" if site else "",
        "mixed_currencies": len(chosen) > 1 and not currency,
    }
    if chosen:
        snap = dashboard.snapshot([s.pk for s in chosen], period, fresh=request.GET.get("fresh") == "1")
        kpis = snap.kpis
        context |= {
            "snap": snap,
            "kpis": kpis,
            "tiles": dashboard.tiles(kpis, currency),
            "trend": dashboard.trend_charts(kpis, currency),
            "cohorts": dashboard.cohort_heatmap(kpis.cohorts),
            "rfm": dashboard.rfm_heatmap(snap.rfm, currency),
            "funnel": dashboard.lifecycle_funnel(snap.lifecycle),
            "sources": dashboard.source_lines(kpis.sources, currency),
            "has_costs": any(row.cost is not None for row in kpis.sources),
        }
    return render_page(request, "analytics/dashboard.html", context, partial="analytics/dashboard_body.html")


def _backtest_buckets(backtest: dict[str, Any]) -> list[dict[str, Any]]:
    buckets = []
    for bucket in backtest.get("buckets") or []:
        if not isinstance(bucket, dict):
            continue
        customers = bucket.get("customers") or 0
        predicted, actual = bucket.get("predicted"), bucket.get("actual")
        buckets.append(
            {
                "label": str(bucket.get("label", bucket.get("x", ""))),
                "customers": customers,
                "predicted": predicted,
                "actual": actual,
                "predicted_mean": bucket.get(
                    "predicted_mean", predicted / customers if customers and predicted is not None else None
                ),
                "actual_mean": bucket.get(
                    "actual_mean", actual / customers if customers and actual is not None else None
                ),
            }
        )
    return buckets


def _backtest_day(value: Any) -> Any:
    """The backtest's moments are days since 1970-01-01 UTC (lavka.analytics.dialect): the local date."""
    if isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(float(value) * 86400, datetime.UTC)
        return timezone.localdate(moment, timezone.get_default_timezone())
    return value


@supervisors_only
def backtest_page(request: HttpRequest) -> HttpResponse:
    sites, site = _site_choice(request, allow_all=False)
    fit = ModelFit.objects.filter(site=site).order_by("-fitted_at", "-id").first() if site else None
    backtest = fit.backtest if fit and isinstance(fit.backtest, dict) else {}
    buckets = _backtest_buckets(backtest)
    chart = None
    if fit and fit.sufficient and buckets:
        chart = charts.line_chart(
            [b["label"] for b in buckets],
            [
                charts.Series(_("Actual"), [b["actual_mean"] for b in buckets], "previous"),
                charts.Series(_("Predicted"), [b["predicted_mean"] for b in buckets], "current"),
            ],
            label=_("Repeat purchases per customer in the holdout, by purchases in the calibration period"),
            format_value=lambda v: f"{v:.2f}",
        )
    # "error" is the relative error of the total, or the reason the backtest could not run.
    error = backtest.get("error")
    failed = error if isinstance(error, str) else ""
    spend = fit.gamma_gamma if fit and isinstance(fit.gamma_gamma, dict) else {}
    context = {
        "nav": "dashboard",
        "sites": sites,
        "site": site,
        "fit": fit,
        "backtest": backtest,
        "buckets": buckets if not failed else [],
        "failed": failed,
        "chart": chart if not failed else None,
        "calibration_end": _backtest_day(backtest.get("calibration_end")),
        "holdout_end": _backtest_day(backtest.get("holdout_end")),
        "error_pct": None if failed or error is None else float(error) * 100,
        "bgnbd": {k: fit.bgnbd.get(k) for k in ("r", "alpha", "a", "b")} if fit else {},
        "gamma_gamma": {k: spend.get(k) for k in ("p", "q", "gamma")},
        "gamma_gamma_error": spend.get("error", ""),
    }
    return render(request, "analytics/backtest.html", context)


class ThresholdsForm(forms.Form):
    active_days = forms.IntegerField(label=gettext_lazy("Active for (days)"), min_value=1, max_value=36500)
    sleeping_days = forms.IntegerField(
        label=gettext_lazy("Sleeping after (days)"), min_value=1, max_value=36500
    )
    churned_days = forms.IntegerField(
        label=gettext_lazy("Churned after (days)"), min_value=1, max_value=36500
    )


@supervisors_only
def settings_page(request: HttpRequest) -> HttpResponse:
    sites, site = _site_choice(request, allow_all=False)
    if site is None:
        raise Http404
    current = SiteAnalytics.objects.filter(site=site).first() or SiteAnalytics(site=site)
    form = ThresholdsForm(
        initial={
            "active_days": current.active_days,
            "sleeping_days": current.sleeping_days,
            "churned_days": current.churned_days,
        }
    )
    if request.method == "POST":
        actor = Actor.for_user(request.user)
        if request.POST.get("reset"):
            lifecycle.reset_thresholds(site, actor)
            messages.success(request, _("Thresholds derived from the shop's purchase intervals again."))
            return redirect(f"{reverse('analytics:settings')}?site={site.code}")
        form = ThresholdsForm(request.POST)
        if form.is_valid():
            try:
                lifecycle.set_thresholds(
                    site,
                    form.cleaned_data["active_days"],
                    form.cleaned_data["sleeping_days"],
                    form.cleaned_data["churned_days"],
                    actor,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Lifecycle thresholds saved and applied to every customer."))
                return redirect(f"{reverse('analytics:settings')}?site={site.code}")
    context = {"nav": "dashboard", "sites": sites, "site": site, "form": form, "current": current}
    return render(request, "analytics/settings.html", context, status=400 if form.errors else 200)
