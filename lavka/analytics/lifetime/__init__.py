"""Lifetime-value models: BG/NBD (repeat purchases, P(alive)) and Gamma-Gamma (order value).

Pure NumPy/SciPy, no database: callers pass per-customer arrays (time in days unless stated).
See docs/analytics-models.md for the formulas, the tests' tolerances and the data-sufficiency gate.

    from lavka.analytics.lifetime import bgnbd, gamma_gamma, summary, sufficient
"""

from __future__ import annotations

import numpy as np

# Data-sufficiency gate (docs/analytics-models.md, "When is there enough data"). Below these the shop
# sees "not enough data" instead of P(alive) and predicted values.
MIN_CUSTOMERS = 500  # buyers with a first purchase in the fitted history
MIN_REPEAT_CUSTOMERS = 100  # of whom bought again at least once (what identifies the dropout and rate mix)
MIN_HISTORY_DAYS = 180  # age of the oldest customer: enough time to see repeat intervals and silences


def sufficient(x, T) -> tuple[bool, str]:
    """Whether there is enough data to fit and trust the models; the reason says what is missing.

    ``x``: repeat purchases per customer; ``T``: customer age in days (time since first purchase).
    """
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    customers = int(x.size)
    repeat = int(np.count_nonzero(x > 0))
    history = float(T.max()) if T.size else 0.0
    if customers < MIN_CUSTOMERS:
        return False, f"{customers} customers with purchases; at least {MIN_CUSTOMERS} are needed"
    if repeat < MIN_REPEAT_CUSTOMERS:
        return False, f"{repeat} customers bought more than once; at least {MIN_REPEAT_CUSTOMERS} are needed"
    if history < MIN_HISTORY_DAYS:
        return False, f"{history:.0f} days of order history; at least {MIN_HISTORY_DAYS} are needed"
    return True, f"{customers} customers, {repeat} repeat customers, {history:.0f} days of history"
