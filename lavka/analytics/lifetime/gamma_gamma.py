"""Gamma-Gamma model of the average order value.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", Journal
of Marketing Research 42(4); the note "The Gamma-Gamma Model of Monetary Value" (Fader & Hardie, 2013).
A customer's order values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers, independent of
the purchase process. For a customer with x purchases of mean value m the likelihood is

    f(m | x) = G(px+q) / (G(px) G(q)) * gamma^q * m^(px-1) * x^(px) / (gamma + m x)^(px+q)

and the expected value of their next orders is

    E[M | x, m] = p (gamma + x m) / (p x + q - 1)
                = (q-1)/(px+q-1) * p gamma/(q-1)  +  px/(px+q-1) * m,

a weighted mean of the population mean p gamma/(q-1) and the customer's own mean (q > 1 needed).
Fit on customers with x >= 1 (x = repeat purchases, m = mean repeat order value), over log-parameters
with L-BFGS-B and the analytic gradient, with money rescaled to order 1 and gamma scaled back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from . import bgnbd
from .bgnbd import _dot
from .summary import distinct

__all__ = [
    "GammaGammaParams",
    "expected_average",
    "fit",
    "log_likelihood",
    "predicted_value",
    "standard_errors",
]

DAYS_PER_MONTH = 365.25 / 12
_LOG_BOUND = 20.0


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GammaGammaParams:
        return cls(
            float(data["p"]),
            float(data["q"]),
            float(data["gamma"]),
            float(data.get("log_likelihood", float("nan"))),
        )

    @property
    def population_mean(self) -> float:
        """Mean order value of a new customer, p gamma / (q - 1) (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")


class _Data:
    """Customers with x >= 1. Every term of the likelihood but log(gamma + m x) depends on x alone or
    is a fixed sum, so rows cost one log (and a reciprocal for the derivatives) per evaluation."""

    def __init__(self, x, mean_value, weights=None):
        x = np.asarray(x, dtype=np.float64).ravel()
        m = np.asarray(mean_value, dtype=np.float64).ravel()
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        if not (x.shape == m.shape == w.shape):
            raise ValueError("x, mean_value and weights must have the same length")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(w)) and np.all(w >= 0)):
            raise ValueError("x and weights must be finite, weights non-negative")
        keep = (x >= 1) & (w > 0)
        x, m, w = x[keep], m[keep], w[keep]
        if x.size == 0:
            raise ValueError("Gamma-Gamma needs customers with at least one repeat purchase")
        if not (np.all(np.isfinite(m)) and np.all(m > 0)):
            raise ValueError("mean_value must be positive for customers with x >= 1")
        self.n = float(w.sum())
        self.xv, xi = distinct(x)
        self.Wx = np.bincount(xi, weights=w, minlength=self.xv.size)
        self.w, self.wx = w, w * x
        self.xm = x * m
        log_m = np.log(m)
        self.sum_log_m, self.sum_x_log_m = _dot(w, log_m), _dot(self.wx, log_m)

    def scaled(self, s: float) -> _Data:
        """The same data with money divided by ``s`` (gamma scales with it)."""
        other = object.__new__(_Data)
        other.__dict__.update(self.__dict__)
        other.xm = self.xm / s
        other.sum_log_m = self.sum_log_m - self.n * np.log(s)
        other.sum_x_log_m = self.sum_x_log_m - float(self.wx.sum()) * np.log(s)
        return other


def _evaluate(theta: np.ndarray, d: _Data, order: int = 1):
    """Mean negative log-likelihood over log-parameters, with its analytic gradient (order 1) and
    Hessian (order 2). With u = log(gamma + m x) and v = 1 / (gamma + m x):
      d/dp     = x (psi(px+q) - psi(px) + log x + log m - u)
      d/dq     = psi(px+q) - psi(q) + log gamma - u
      d/dgamma = q/gamma - (px+q) v
    and second derivatives with trigamma for the x-only terms and v, v^2 for the rows."""
    p, q, gamma = par = np.exp(theta)
    xv, Wx, n = d.xv, d.Wx, d.n
    pxv = p * xv
    u = np.log(gamma + d.xm)
    sum_u, sum_xu = _dot(d.w, u), _dot(d.wx, u)
    gl = special.gammaln
    ll = (
        _dot(Wx, gl(pxv + q) - gl(pxv) + pxv * np.log(xv))
        - n * gl(q)
        + n * q * np.log(gamma)
        + p * d.sum_x_log_m
        - d.sum_log_m
        - p * sum_xu
        - q * sum_u
    )
    f = -float(ll) / n
    if order == 0:
        return f
    psi = special.digamma
    v = np.reciprocal(gamma + d.xm, out=u)
    sum_v, sum_xv = _dot(d.w, v), _dot(d.wx, v)
    psi_pq = psi(pxv + q)
    g = np.array(
        [
            _dot(Wx, xv * (psi_pq - psi(pxv) + np.log(xv))) + d.sum_x_log_m - sum_xu,
            _dot(Wx, psi_pq) - n * psi(q) + n * np.log(gamma) - sum_u,
            n * q / gamma - p * sum_xv - q * sum_v,
        ]
    )
    if order == 1:
        return f, -(g * par) / n
    tri_pq = special.polygamma(1, pxv + q)
    v *= v
    H = np.empty((3, 3))
    H[0, 0] = _dot(Wx, xv * xv * (tri_pq - special.polygamma(1, pxv)))
    H[0, 1] = H[1, 0] = _dot(Wx, xv * tri_pq)
    H[1, 1] = _dot(Wx, tri_pq) - n * special.polygamma(1, q)
    H[0, 2] = H[2, 0] = -sum_xv
    H[1, 2] = H[2, 1] = n / gamma - sum_v
    H[2, 2] = -n * q / gamma**2 + p * _dot(d.wx, v) + q * _dot(d.w, v)
    H_log = H * np.outer(par, par) + np.diag(par * g)
    return f, -(g * par) / n, -H_log / n


def _objective(theta: np.ndarray, d: _Data):
    return _evaluate(theta, d, 1)


def log_likelihood(params: GammaGammaParams, x, mean_value, weights=None) -> float:
    """Total (weighted) log-likelihood over the customers with x >= 1."""
    d = _Data(x, mean_value, weights)
    return -_evaluate(np.log([params.p, params.q, params.gamma]), d, 0) * d.n


def fit(x, mean_value, weights=None) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters; rows with x = 0 (or weight 0) are ignored.

    L-BFGS-B from the better of two starts (money rescaled so the mean order value is 1), then Newton
    steps with the analytic Hessian; p and q lie on a long ridge that L-BFGS can leave a little early.
    """
    d = _Data(x, mean_value, weights)
    scale = float(d.xm.sum() / d.wx.sum()) if d.wx.sum() > 0 else 1.0  # mean order value
    ds = d.scaled(scale)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 3
    best = None
    # A generic start, and one with q > 1 whose population mean p gamma/(q-1) is the scaled mean 1.
    starts = sorted((np.zeros(3), np.log([2.0, 3.0, 1.0])), key=lambda theta: _evaluate(theta, ds, 0))
    for start in starts:
        res = optimize.minimize(
            _objective,
            start,
            args=(ds,),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8},
        )
        if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
        if res.success and np.all(np.abs(res.x) < _LOG_BOUND - 1e-6):
            break
    if best is None:
        raise RuntimeError("Gamma-Gamma fit failed")

    def full(theta, order):
        return _evaluate(theta, ds, order)

    theta, _ = bgnbd._newton(full, best.x)
    p, q, gamma = np.exp(theta)
    gamma *= scale
    ll = -_evaluate(np.log([p, q, gamma]), d, 0) * d.n
    return GammaGammaParams(float(p), float(q), float(gamma), float(ll))


def standard_errors(params: GammaGammaParams, x, mean_value, weights=None) -> np.ndarray:
    """Asymptotic standard errors of (p, q, gamma) from the inverse observed information."""
    d = _Data(x, mean_value, weights)
    values = np.array([params.p, params.q, params.gamma])
    H = _evaluate(np.log(values), d, 2)[2] * d.n
    return values * np.sqrt(np.diag(np.linalg.inv(H)))


def expected_average(params: GammaGammaParams, x, mean_value) -> np.ndarray:
    """E[order value | x, mean_value]; for x = 0 this is the population mean p gamma / (q - 1)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.where(x > 0, np.asarray(mean_value, dtype=np.float64), 0.0)
    p, q, gamma = params.p, params.q, params.gamma
    return p * (gamma + x * m) / (p * x + q - 1.0)


def predicted_value(
    bg_params: bgnbd.BgNbdParams,
    gg_params: GammaGammaParams,
    x,
    t_x,
    T,
    mean_value,
    horizon_days: float,
    monthly_discount: float = 0.0,
) -> np.ndarray:
    """Expected revenue from each customer over the next ``horizon_days``: expected purchases x
    expected order value (spend is independent of the purchase process in this pair of models).

    ``x, t_x, T`` must be in days. With ``monthly_discount`` d > 0 the horizon is cut into months of
    365.25/12 days (the last one possibly partial) and the purchases expected in month k are
    discounted by (1 + d)^-k, i.e. as if paid at the end of that month.
    """
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    value = expected_average(gg_params, x, mean_value)
    if monthly_discount == 0.0:
        return bgnbd.expected_purchases(bg_params, horizon_days, x, t_x, T) * value
    ends = np.append(np.arange(DAYS_PER_MONTH, horizon_days, DAYS_PER_MONTH), horizon_days)
    total = np.zeros(np.broadcast(x, t_x, T).shape)
    previous = np.zeros_like(total)
    for k, end in enumerate(ends, start=1):
        cumulative = bgnbd.expected_purchases(bg_params, end, x, t_x, T)
        total = total + (cumulative - previous) / (1.0 + monthly_discount) ** k
        previous = cumulative
    return total * value
