"""Simulated customers from known BG/NBD and Gamma-Gamma parameters, for tests and benchmarks.

BG/NBD's story, drawn directly: lambda ~ Gamma(r, rate alpha) and p ~ Beta(a, b) per customer; after
the first purchase at time 0, repeat purchases arrive as a Poisson process with rate lambda, and after
each repeat purchase the customer drops out for good with probability p. So the number of repeat
purchases before dropping out is J ~ Geometric(p) on {1, 2, ...}, and a customer observed for T has
x = min(N(T), J) with N(T) ~ Poisson(lambda T). Given N(T) = n, the n purchase times are uniform
order statistics on [0, T], so the x-th one is T * Beta(x, n - x + 1): no per-customer loop.
Order values (Gamma-Gamma): nu ~ Gamma(q, rate gamma) per customer, each value ~ Gamma(p, rate nu).
"""

from __future__ import annotations

import numpy as np

from .bgnbd import BgNbdParams
from .gamma_gamma import GammaGammaParams

__all__ = ["summaries", "transactions"]


def _rates(rng: np.random.Generator, params: BgNbdParams, n: int) -> tuple[np.ndarray, np.ndarray]:
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    return lam, p


def summaries(
    rng: np.random.Generator, params: BgNbdParams, T: np.ndarray, whole_days: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, t_x, T)`` for customers observed for ``T`` (one customer per element).

    ``whole_days`` floors t_x and T to integers, as summaries built from order dates are.
    """
    T = np.asarray(T, dtype=np.float64)
    n = T.size
    lam, p = _rates(rng, params, n)
    events = rng.poisson(lam * T)
    dropout_after = rng.geometric(np.maximum(p, 1e-300))
    x = np.minimum(events, dropout_after)
    t_x = np.zeros(n)
    buyers = x > 0
    t_x[buyers] = T[buyers] * rng.beta(x[buyers], events[buyers] - x[buyers] + 1)
    if whole_days:
        T = np.floor(T)
        t_x = np.minimum(np.floor(t_x), T)
    return x.astype(np.float64), t_x, T


def transactions(
    rng: np.random.Generator,
    params: BgNbdParams,
    first: np.ndarray,
    end: float,
    spend: GammaGammaParams | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All purchases up to ``end`` of customers whose first purchase is at ``first`` (one each).

    Returns ``(customer, time, amount)`` sorted by customer then time; amounts are 0 without ``spend``.
    """
    first = np.asarray(first, dtype=np.float64)
    n = first.size
    horizon = end - first
    lam, p = _rates(rng, params, n)
    events = rng.poisson(lam * horizon)
    kept = np.minimum(events, rng.geometric(np.maximum(p, 1e-300)))
    # Draw all `events` uniform times per customer, sort within customer, keep the first `kept`.
    owner = np.repeat(np.arange(n), events)
    times = rng.uniform(0.0, 1.0, owner.size) * horizon[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    starts = np.cumsum(events) - events
    rank = np.arange(owner.size) - starts[owner]
    keep = rank < kept[owner]
    customer = np.concatenate([np.arange(n), owner[keep]])
    time = np.concatenate([first, first[owner[keep]] + times[keep]])
    order = np.lexsort((time, customer))
    customer, time = customer[order], time[order]
    if spend is None:
        amount = np.zeros_like(time)
    else:
        nu = rng.gamma(spend.q, 1.0 / spend.gamma, n)
        amount = rng.gamma(spend.p, 1.0 / nu[customer])
    return customer, time, amount
