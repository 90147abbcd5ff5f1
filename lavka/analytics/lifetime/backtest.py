"""Backtest of the BG/NBD model: fit on a calibration period, predict the holdout, compare.

``run(customer, time, calibration_end, ...)`` takes every purchase as three aligned arrays (customer id,
time in days on any origin, optional amount). Customers whose first purchase is on or before
``calibration_end`` are the backtest's customers; purchases up to ``calibration_end`` make their
calibration summary (x, t_x, T), the model is fitted on it, and for each customer the expected number
of purchases in the holdout ``(calibration_end, holdout_end]`` is E[Y(h) | x, t_x, T] (h = holdout length).
Actual holdout purchases are counted the way x is (purchases in the same ``unit`` period count once).
Customers acquired during the holdout are not part of it: the model predicts existing customers.

The result is a JSON-serialisable dict (what ``ModelFit.backtest`` stores and the backtest page shows)::

    {
      "calibration_end": 1095.0,        # the split, in the caller's time (days)
      "holdout_end": 1460.0,
      "holdout_days": 365.0,            # h, in days
      "unit": 1.0,                      # period length in days
      "customers": 12000,               # customers in the backtest (first purchase <= calibration_end)
      "repeat_customers": 4100,         # of whom x >= 1 in calibration
      "sufficient": true, "reason": "...",   # lavka.analytics.lifetime.sufficient on the calibration data
      "bgnbd": {"r": …, "alpha": …, "a": …, "b": …, "log_likelihood": …},   # fitted on calibration
      "buckets": [                      # by calibration repeat purchases x: 0, 1, …, 6 and "7+"
        {"x": 0, "label": "0", "customers": 7900,
         "predicted": 1234.5,           # sum of E[Y(h)] over the bucket's customers
         "actual": 1198,                # their holdout purchases
         "predicted_mean": 0.156, "actual_mean": 0.152,   # per customer (the published chart)
         "mae": 0.31},                  # mean over the bucket's customers of |predicted - actual|
        …,
        {"x": 7, "label": "7+", …}
      ],
      "total_predicted": 5012.3, "total_actual": 4950,
      "error": 0.0126,                  # (total_predicted - total_actual) / total_actual; null if no actual
      "error_pct": 1.26,                # the same in percent
      "mae": 0.41,                      # mean |predicted - actual| over all customers
      "bucket_mae": 0.02,               # mean over non-empty buckets of |predicted_mean - actual_mean|
      "unconditional_predicted": 4890.1,  # sum of E[X(T+h)] - E[X(T)]: the forecast before seeing x, t_x
      "revenue": {"predicted": …, "actual": …, "error": …}   # only when amounts are given (Gamma-Gamma)
    }

Empty buckets are kept (customers 0, predicted 0, means null) so the chart always has eight bars.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import bgnbd, gamma_gamma, sufficient
from .summary import from_transactions

__all__ = ["BUCKETS", "default_holdout_days", "run"]

BUCKETS = 8  # x = 0..6 and 7+


def default_holdout_days(first_time: float, last_time: float) -> float:
    """A third of the history, between 30 and 365 days: long enough to count repeat purchases, short
    enough to leave most of the history for calibration."""
    return float(min(365.0, max(30.0, round((last_time - first_time) / 3.0))))


def run(
    customer,
    time,
    calibration_end: float | None = None,
    holdout_end: float | None = None,
    amount=None,
    unit: float = 1.0,
    merge_same_period: bool = True,
) -> dict[str, Any]:
    """Fit on purchases up to ``calibration_end``, predict ``(calibration_end, holdout_end]``.

    ``holdout_end`` defaults to the last purchase; ``calibration_end`` to ``holdout_end`` minus
    :func:`default_holdout_days`. ``merge_same_period`` as in :func:`.summary.from_transactions`
    (calibration and holdout count purchases the same way). Raises ValueError when there is nothing
    to fit.
    """
    customer = np.asarray(customer, dtype=np.int64)
    time = np.asarray(time, dtype=np.float64)
    if time.size == 0:
        raise ValueError("no purchases")
    if holdout_end is None:
        holdout_end = float(time.max())
    if calibration_end is None:
        calibration_end = holdout_end - default_holdout_days(float(time.min()), holdout_end)
    if not calibration_end < holdout_end:
        raise ValueError("calibration_end must be before holdout_end")
    amounts = None if amount is None else np.asarray(amount, dtype=np.float64)

    cal = from_transactions(customer, time, amounts, calibration_end, unit, merge_same_period)
    if cal.x.size == 0:
        raise ValueError("no customers in the calibration period")
    horizon = math.floor(holdout_end / unit) - math.floor(calibration_end / unit)  # holdout, in periods
    params = bgnbd.fit(cal.x, cal.t_x, cal.T)
    predicted = bgnbd.expected_purchases(params, horizon, cal.x, cal.t_x, cal.T)
    actual, actual_revenue = _holdout(
        customer, time, amounts, cal.customers, calibration_end, holdout_end, unit
    )

    ok, reason = sufficient(cal.x, cal.T * unit)
    total_predicted = float(predicted.sum())
    total_actual = float(actual.sum())
    error = (total_predicted - total_actual) / total_actual if total_actual > 0 else None
    buckets = _buckets(cal.x, predicted, actual)
    gaps = [abs(b["predicted_mean"] - b["actual_mean"]) for b in buckets if b["customers"]]
    unconditional = bgnbd.expected_number(params, cal.T + horizon) - bgnbd.expected_number(params, cal.T)
    result: dict[str, Any] = {
        "calibration_end": float(calibration_end),
        "holdout_end": float(holdout_end),
        "holdout_days": float(horizon * unit),
        "unit": float(unit),
        "customers": int(cal.x.size),
        "repeat_customers": int(np.count_nonzero(cal.x > 0)),
        "sufficient": ok,
        "reason": reason,
        "bgnbd": params.as_dict(),
        "buckets": buckets,
        "total_predicted": total_predicted,
        "total_actual": total_actual,
        "error": error,
        "error_pct": None if error is None else 100.0 * error,
        "mae": float(np.mean(np.abs(predicted - actual))),
        "bucket_mae": float(np.mean(gaps)) if gaps else None,
        "unconditional_predicted": float(np.sum(unconditional)),
    }
    if amounts is not None and np.count_nonzero(cal.x > 0) >= 2:
        gg = gamma_gamma.fit(cal.x, cal.mean_value)
        value = predicted * gamma_gamma.expected_average(gg, cal.x, cal.mean_value)
        predicted_revenue, revenue = float(value.sum()), float(actual_revenue.sum())
        result["gamma_gamma"] = gg.as_dict()
        result["revenue"] = {
            "predicted": predicted_revenue,
            "actual": revenue,
            "error": (predicted_revenue - revenue) / revenue if revenue > 0 else None,
        }
    return _finite(result)


def _holdout(customer, time, amount, customers, calibration_end, holdout_end, unit, merge=True):
    """Holdout purchases (distinct periods when ``merge``) and revenue per calibration customer."""
    inside = (time > calibration_end) & (time <= holdout_end)
    who = customer[inside]
    position = np.searchsorted(customers, who)
    position = np.minimum(position, max(customers.size - 1, 0))
    known = customers[position] == who  # drop customers first seen in the holdout
    position = position[known]
    period = np.floor(time[inside][known] / unit)
    revenue = np.zeros(customers.size)
    if amount is not None:
        np.add.at(revenue, position, amount[inside][known])
    if merge and position.size:
        # Distinct (customer, period) pairs.
        position = np.unique(np.stack([position, period.astype(np.int64)]), axis=1)[0]
    counts = np.bincount(position.astype(np.intp), minlength=customers.size).astype(np.float64)
    return counts, revenue


def _buckets(x, predicted, actual) -> list[dict[str, Any]]:
    index = np.minimum(x, BUCKETS - 1).astype(np.intp)
    n = np.bincount(index, minlength=BUCKETS)
    pred = np.bincount(index, weights=predicted, minlength=BUCKETS)
    act = np.bincount(index, weights=actual, minlength=BUCKETS)
    abs_err = np.bincount(index, weights=np.abs(predicted - actual), minlength=BUCKETS)
    out = []
    for k in range(BUCKETS):
        count = int(n[k])
        out.append(
            {
                "x": k,
                "label": f"{k}+" if k == BUCKETS - 1 else str(k),
                "customers": count,
                "predicted": float(pred[k]),
                "actual": float(act[k]),
                "predicted_mean": float(pred[k] / count) if count else None,
                "actual_mean": float(act[k] / count) if count else None,
                "mae": float(abs_err[k] / count) if count else None,
            }
        )
    return out


def _finite(value):
    """NaN/inf become None: PostgreSQL's jsonb rejects them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
