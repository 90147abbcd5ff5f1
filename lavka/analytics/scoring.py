"""Lifetime-model scores per customer: fit BG/NBD and Gamma-Gamma on a site, write the scores back.

Inputs per customer with at least one counted order, in whole days (UTC) at the moment of scoring:
x = counted orders − 1, t_x = last order day − first order day, T = today − first order day, and
mean value = revenue / counted orders (Gamma-Gamma; the mean over all orders, the first included,
because the metrics keep no per-order values). Two orders on the same day are two purchases.

Gate: `lavka.analytics.lifetime.sufficient`; below it a ModelFit(sufficient=False, reason=…) is stored
and every score of the site is null ("not enough data"). Scores come from the site's newest fit, and
only when that fit passed the gate (an older sufficient fit would score some customers and not others).

- p_alive: BG/NBD P(alive) (1 for a customer who never bought again: the model cannot tell);
- expected_purchases_30/90/365: the conditional expectation over the next 30/90/365 days;
- expected_average_order: Gamma-Gamma E[order value] (the population mean for x = 0);
- predicted_value: expected purchases in the next 365 days × expected order value;
- churn_risk: the chance the customer places no order within the site's churn window H
  (`SiteAnalytics.churned_days`), from the model, raised by behavioural signals:

      model  = 1 − P(alive) · (1 − ((α + T) / (α + T + H))^(r + x))
      risk   = 1 − (1 − model) · (1 − 0.2 · cart) · (1 − 0.2 · fewer_contacts)

  The model term is exact under BG/NBD: a customer who is alive buys at a rate whose posterior is
  Gamma(r + x, α + T), so the chance of no order in H days is ((α+T)/(α+T+H))^(r+x); for a customer
  certain to buy again if alive it is 1 − P(alive), and it stays meaningful for one-time buyers,
  whom BG/NBD always holds alive. `cart` is 1 when the customer has an open cart with items
  (tracking: not cleared, not turned into an order) changed after their last order; `fewer_contacts`
  is 1 − recent/previous when the calls with the customer in the last 90 days are fewer than in the
  90 days before (0 otherwise, and 0 without calls). Site visits are not recorded yet.
- churn_reason: one line in words ("no order for 210 days, usually every 40; left a cart unpaid").

At scale the arrays go between PostgreSQL and NumPy by binary COPY; the model outputs land in a
temporary table, and the behavioural signals, the risk and the reason are joined in SQL by the same
statement that writes the rows (metrics.refresh_site) or by one UPDATE … FROM (`score_site`). The
incremental path (`score_customer`) computes one customer's with the same formulas in Python.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from lavka.analytics import dialect, lifecycle
from lavka.analytics.lifetime import backtest, bgnbd, gamma_gamma, sufficient
from lavka.analytics.models import ModelFit
from lavka.core.models import Site

HORIZONS = (30, 90, 365)
VALUE_HORIZON = 365
CART_WEIGHT = 0.2
CONTACT_WEIGHT = 0.2
CONTACT_WINDOW_DAYS = 90
BACKTEST_CUSTOMERS = 20000
SCORES = "lavka_metrics_scores"
MODEL_COLUMNS = (
    "p_alive",
    "expected_purchases_30",
    "expected_purchases_90",
    "expected_purchases_365",
    "expected_average_order",
    "predicted_value",
)
SCORE_COLUMNS = (*MODEL_COLUMNS, "churn_risk")
# What a fit on odd data may raise: the shop then sees the reason instead of scores.
FIT_ERRORS = (
    ValueError,
    RuntimeError,
    FloatingPointError,
    OverflowError,
    ZeroDivisionError,
    np.linalg.LinAlgError,
)


@dataclass
class Buyers:
    """Per-customer model inputs of a site, aligned on `ids` (ascending)."""

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    mean_value: np.ndarray

    @property
    def size(self) -> int:
        return int(self.ids.size)


def inputs_sql(
    table: str, n: str, first: str, last: str, revenue: str, where: str, as_of: datetime.datetime
) -> str:
    """SELECT id, x, t_x, T, mean value of the buyers in `table` (column expressions given)."""
    today = math.floor(dialect.now_days(as_of))
    first_day, last_day = dialect.day_number(first), dialect.day_number(last)
    return (
        f"SELECT customer_id, {n} - 1, {last_day} - {first_day}, {today} - {first_day},"
        f" {revenue} * 1.0 / {n} FROM {table} WHERE {where} AND {n} > 0 ORDER BY customer_id"
    )


def load(site_id: int, as_of: datetime.datetime, sql: str | None = None) -> Buyers:
    """The model inputs of every buyer of the site: from the stored metrics, or from `sql` (what
    `inputs_sql` makes; the full refresh reads its temporary aggregates)."""
    if sql is None:
        sql = inputs_sql(
            "analytics_customermetrics",
            "orders_count",
            "first_order_at",
            "last_order_at",
            "revenue",
            f"site_id = {int(site_id)}",
            as_of,
        )
    with connection.cursor() as cursor:
        table = dialect.fetch_floats(cursor, sql, 5)
    return Buyers(
        ids=table[:, 0].astype(np.int64),
        x=table[:, 1],
        t_x=table[:, 2],
        T=np.maximum(table[:, 3], table[:, 2]),
        mean_value=table[:, 4],
    )


# --- Fitting --------------------------------------------------------------------------------------------


def fit(site: Site, buyers: Buyers, as_of: datetime.datetime) -> ModelFit:
    """Gate, fit both models, backtest; the stored ModelFit (sufficient or not)."""
    started = time.perf_counter()
    record = ModelFit(
        site=site,
        fitted_at=as_of,
        customers=buyers.size,
        repeat_customers=int(np.count_nonzero(buyers.x > 0)),
    )
    ok, reason = sufficient(buyers.x, buyers.T)
    record.sufficient, record.reason = ok, "" if ok else reason
    if ok:
        try:
            bg = bgnbd.fit(buyers.x, buyers.t_x, buyers.T)
        except FIT_ERRORS as exc:
            record.sufficient, record.reason = False, f"the purchase model could not be fitted: {exc}"
        else:
            record.bgnbd = {**bg.as_dict(), "time_unit": "days"}
            record.gamma_gamma = _fit_spend(buyers)
            record.backtest = _backtest(site, buyers, as_of)
    record.seconds = time.perf_counter() - started
    record.save()
    return record


def _fit_spend(buyers: Buyers) -> dict[str, Any]:
    repeat = (buyers.x > 0) & (buyers.mean_value > 0)
    if np.count_nonzero(repeat) < 2:
        return {"error": "too few repeat customers with a positive order value"}
    try:
        params = gamma_gamma.fit(buyers.x[repeat], buyers.mean_value[repeat])
    except FIT_ERRORS as exc:
        return {"error": str(exc)}
    if not params.q > 1:
        return {**params.as_dict(), "error": "q ≤ 1: the mean order value is not defined"}
    return params.as_dict()


def _backtest(site: Site, buyers: Buyers, as_of: datetime.datetime) -> dict[str, Any]:
    """lifetime.backtest on the counted orders of a sample of the site's buyers (every k-th one, at most
    BACKTEST_CUSTOMERS), with the holdout ending now."""
    from lavka.analytics.metrics import counted_condition

    step = max(1, math.ceil(buyers.size / BACKTEST_CUSTOMERS))
    sample = buyers.ids[::step]
    with connection.cursor() as cursor:
        table = dialect.fetch_floats(
            cursor,
            f"SELECT o.customer_id, {dialect.epoch_days('o.created_at')}, o.total_summ FROM orders_order o"
            f" WHERE o.site_id = {int(site.pk)} AND {counted_condition()}"
            f" AND {dialect.in_ids('o.customer_id', sample)}",
            3,
        )
    if not table.size:
        return {"error": "no orders"}
    try:
        result = backtest.run(
            table[:, 0].astype(np.int64), table[:, 1], holdout_end=dialect.now_days(as_of), amount=table[:, 2]
        )
    except FIT_ERRORS as exc:
        return {"error": str(exc)}
    result["sampled_customers"] = int(sample.size)
    return result


def newest_fit(site_id: int) -> ModelFit | None:
    """The fit scores come from: the site's newest, if it passed the gate."""
    found = ModelFit.objects.filter(site_id=site_id).order_by("-fitted_at", "-id").first()
    return found if found is not None and found.sufficient and found.bgnbd else None


# --- Model outputs --------------------------------------------------------------------------------------


def model_scores(
    record: ModelFit, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, mean_value: np.ndarray, churn_days: int
) -> dict[str, np.ndarray]:
    """Every model output for the given customers; `churn_risk` is the model term, before behaviour."""
    bg = bgnbd.BgNbdParams.from_dict(record.bgnbd)
    alive = bgnbd.p_alive(bg, x, t_x, T)
    out = {"p_alive": alive}
    for days in HORIZONS:
        out[f"expected_purchases_{days}"] = bgnbd.expected_purchases(bg, days, x, t_x, T)
    if record.gamma_gamma and "error" not in record.gamma_gamma:
        gg = gamma_gamma.GammaGammaParams.from_dict(record.gamma_gamma)
        average = gamma_gamma.expected_average(gg, x, mean_value)
        out["expected_average_order"] = average
        out["predicted_value"] = out[f"expected_purchases_{VALUE_HORIZON}"] * average
    else:
        out["expected_average_order"] = out["predicted_value"] = np.full(x.shape, np.nan)
    quiet = ((bg.alpha + T) / (bg.alpha + T + churn_days)) ** (bg.r + x)
    out["churn_risk"] = 1.0 - alive * (1.0 - quiet)
    return out


def stage_scores(site: Site, buyers: Buyers, record: ModelFit) -> None:
    """The model outputs of every buyer into the temporary SCORES table (empty without a usable fit):
    p_alive … predicted_value, and `model_risk`, the churn risk before behaviour."""
    with connection.cursor() as cursor:
        dialect.drop_temp(cursor, SCORES)
        floats = ", ".join(f"{name} DOUBLE PRECISION" for name in (*MODEL_COLUMNS, "model_risk"))
        cursor.execute(f"CREATE TEMP TABLE {SCORES} (customer_id BIGINT PRIMARY KEY, {floats})")
        if not (record.sufficient and record.bgnbd and buyers.size):
            return
        churn_days = lifecycle.settings_of(site.pk).churned_days
        scores = model_scores(record, buyers.x, buyers.t_x, buyers.T, buyers.mean_value, churn_days)
        values = [scores[name] for name in MODEL_COLUMNS] + [scores["churn_risk"]]
        dialect.load_floats(cursor, SCORES, buyers.ids, [*MODEL_COLUMNS, "model_risk"], values)
        if dialect.postgres():
            cursor.execute(f"ANALYZE {SCORES}")


def prepare(site: Site, as_of: datetime.datetime, sql: str | None = None) -> ModelFit:
    """Load, fit and stage the scores of the site's buyers; the stored fit."""
    buyers = load(site.pk, as_of, sql)
    record = fit(site, buyers, as_of)
    stage_scores(site, buyers, record)
    return record


# --- SQL: signals, risk and reason ----------------------------------------------------------------------


def signal_joins(customer: str, last_order_at: str, as_of: datetime.datetime) -> str:
    """LEFT JOINs adding `ct` (an open cart changed after the last order) and `cl` (calls in the last 90
    days and the 90 before) to a query over customers."""
    recent = dialect.timestamp(as_of - datetime.timedelta(days=CONTACT_WINDOW_DAYS))
    previous = dialect.timestamp(as_of - datetime.timedelta(days=2 * CONTACT_WINDOW_DAYS))
    return f"""
      LEFT JOIN (
        SELECT c.customer_id AS customer_id, MAX(c.updated_at) AS updated_at FROM tracking_cart c
        WHERE c.cleared_at IS NULL AND c.order_id IS NULL
          AND EXISTS (SELECT 1 FROM tracking_cartitem i WHERE i.cart_id = c.id)
        GROUP BY c.customer_id
      ) ct ON ct.customer_id = {customer} AND ct.updated_at > {last_order_at}
      LEFT JOIN (
        SELECT k.customer_id AS customer_id,
          SUM(CASE WHEN k.started_at >= {recent} THEN 1 ELSE 0 END) AS recent,
          SUM(CASE WHEN k.started_at < {recent} THEN 1 ELSE 0 END) AS previous
        FROM telephony_call k WHERE k.customer_id IS NOT NULL AND k.started_at >= {previous}
        GROUP BY k.customer_id
      ) cl ON cl.customer_id = {customer}"""


def score_expressions(
    orders: str, last_order_at: str, between: str, as_of: datetime.datetime
) -> dict[str, str]:
    """Column → SQL over `sc` (SCORES), `ct` and `cl` (signal_joins) and the given expressions: the
    same values as `combine` and `reason` give in Python."""
    out = {name: dialect.nan_to_null(f"sc.{name}") for name in MODEL_COLUMNS}
    model = dialect.nan_to_null("sc.model_risk")
    cart = "(CASE WHEN ct.customer_id IS NULL THEN 0 ELSE 1 END)"
    recent, previous = "COALESCE(cl.recent, 0)", "COALESCE(cl.previous, 0)"
    fewer = f"(CASE WHEN {previous} > {recent} THEN 1.0 - {recent} * 1.0 / {previous} ELSE 0 END)"
    out["churn_risk"] = (
        f"(1 - (1 - {model}) * (1 - {CART_WEIGHT} * {cart}) * (1 - {CONTACT_WEIGHT} * {fewer}))"
    )
    days = dialect.floor_int(f"({dialect.now_days(as_of)!r} - {dialect.epoch_days(last_order_at)})")
    every = dialect.greatest("1", dialect.floor_int(f"({between} + 0.5)"))
    out["churn_reason"] = (
        f"CASE WHEN {model} IS NULL THEN '' ELSE"
        f" (CASE WHEN {orders} <= 1 THEN 'one order, ' || {days} || ' days ago'"
        f" WHEN {between} IS NOT NULL THEN 'no order for ' || {days} || ' days, usually every ' || {every}"
        f" ELSE 'no order for ' || {days} || ' days' END)"
        f" || (CASE WHEN {cart} = 1 THEN '; left a cart unpaid' ELSE '' END)"
        f" || (CASE WHEN {previous} > {recent} THEN '; fewer contacts: ' || {recent}"
        f" || ' calls in the last 90 days, ' || {previous} || ' before' ELSE '' END) END"
    )
    return out


def score_site(site: Site, as_of: datetime.datetime | None = None) -> ModelFit:
    """Fit the models on the site's stored metrics and write every customer's scores (nulls when the
    data are not sufficient, and for customers without orders). Returns the stored fit."""
    as_of = as_of or timezone.now()
    with transaction.atomic():
        record = prepare(site, as_of)
        columns = score_expressions("m.orders_count", "m.last_order_at", "m.days_between_orders", as_of)
        selected = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE analytics_customermetrics
                SET {", ".join(f"{name} = s.{name}" for name in columns)}
                FROM (
                  SELECT m.customer_id AS customer_id, {selected}
                  FROM analytics_customermetrics m
                    LEFT JOIN {SCORES} sc ON sc.customer_id = m.customer_id
                    {signal_joins("m.customer_id", "m.last_order_at", as_of)}
                  WHERE m.site_id = %s
                ) s
                WHERE analytics_customermetrics.customer_id = s.customer_id""",
                [site.pk],
            )
            dialect.drop_temp(cursor, SCORES)
    return record


# --- Python: one customer -------------------------------------------------------------------------------


def combine(model_risk: np.ndarray, cart: np.ndarray, fewer_contacts: np.ndarray) -> np.ndarray:
    """Churn risk from the model's and the behavioural signals (see the module docstring)."""
    stays = (1.0 - model_risk) * (1.0 - CART_WEIGHT * cart) * (1.0 - CONTACT_WEIGHT * fewer_contacts)
    return np.clip(1.0 - stays, 0.0, 1.0)


def fewer_contacts(recent: np.ndarray, previous: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(previous > recent, 1.0 - recent / np.maximum(previous, 1), 0.0)


def reason(
    orders: int,
    days_since_last: float,
    between: float | None,
    cart: bool,
    recent_calls: int,
    previous_calls: int,
) -> str:
    """One line saying why the risk is what it is."""
    days = math.floor(days_since_last)
    if orders <= 1:
        text = f"one order, {days} days ago"
    elif between is not None and not math.isnan(between):
        text = f"no order for {days} days, usually every {max(1, math.floor(between + 0.5))}"
    else:
        text = f"no order for {days} days"
    if cart:
        text += "; left a cart unpaid"
    if previous_calls > recent_calls:
        text += f"; fewer contacts: {recent_calls} calls in the last 90 days, {previous_calls} before"
    return text[:255]


def customer_signals(
    customer_id: int, last_order_at: datetime.datetime, now: datetime.datetime
) -> tuple[bool, int, int]:
    """(open cart, calls in the last 90 days, calls in the 90 before) of one customer."""
    from lavka.telephony.models import Call
    from lavka.tracking.models import Cart

    cart = Cart.objects.filter(
        customer_id=customer_id,
        cleared_at__isnull=True,
        order__isnull=True,
        updated_at__gt=last_order_at,
        items__isnull=False,
    ).exists()
    recent_from = now - datetime.timedelta(days=CONTACT_WINDOW_DAYS)
    calls = Call.objects.filter(
        customer_id=customer_id, started_at__gte=now - datetime.timedelta(days=2 * CONTACT_WINDOW_DAYS)
    ).aggregate(
        recent=Count("id", filter=Q(started_at__gte=recent_from)),
        previous=Count("id", filter=Q(started_at__lt=recent_from)),
    )
    return cart, calls["recent"], calls["previous"]


def score_customer(
    site_id: int, customer_id: int, figures: dict[str, Any], now: datetime.datetime
) -> dict[str, Any]:
    """The model fields of one customer's metrics row from the site's newest fit (nulls without one)."""
    values: dict[str, Any] = dict.fromkeys(SCORE_COLUMNS)
    values["churn_reason"] = ""
    n = figures["orders_count"]
    record = newest_fit(site_id) if n else None
    if record is None:
        return values
    from lavka.analytics.rfm import day_number

    first, last = day_number(figures["first_order_at"]), day_number(figures["last_order_at"])
    today = math.floor(dialect.now_days(now))
    x = np.array([n - 1.0])
    t_x = np.array([float(last - first)])
    T = np.array([float(max(today - first, last - first))])
    mean = np.array([float(figures["revenue"]) / n])
    churn_days = lifecycle.settings_of(site_id).churned_days
    scores = model_scores(record, x, t_x, T, mean, churn_days)
    cart, recent, previous = customer_signals(customer_id, figures["last_order_at"], now)
    scores["churn_risk"] = combine(
        scores["churn_risk"],
        np.array([float(cart)]),
        fewer_contacts(np.array([recent]), np.array([previous])),
    )
    values.update({name: _plain(scores[name][0]) for name in SCORE_COLUMNS})
    days = (now - figures["last_order_at"]).total_seconds() / 86400
    values["churn_reason"] = reason(n, days, figures["days_between_orders"], cart, recent, previous)
    return values


def _plain(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
