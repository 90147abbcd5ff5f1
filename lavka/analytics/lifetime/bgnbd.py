"""BG/NBD ("beta-geometric / negative binomial") model of repeat purchases.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
Model", Marketing Science 24(2). While alive, a customer buys as a Poisson process with rate
lambda ~ Gamma(r, alpha); after each purchase they drop out for good with probability p ~ Beta(a, b).
A customer is summarised by (x, t_x, T) (see :mod:`.summary`), and the likelihood of one customer is

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)).

It is computed in log space: the second term enters as softplus of its log-ratio to the first, so
nothing overflows for large x and the x = 0 rows simply have no second term. The fit maximises the
weighted log-likelihood over log-parameters (so they stay positive): L-BFGS-B with the analytic
gradient finds the basin, Newton steps with the analytic Hessian finish, in a rescaled time unit (T of
order 10) so that alpha is of order 1; alpha is scaled back afterwards, and the reported log-likelihood
is in the caller's time unit (the paper's -9582.4 for CDNOW in weeks). docs/analytics-models.md has
the formulas, the fitting procedure and the tests' tolerances.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from .summary import distinct, unique_rows

__all__ = [
    "BgNbdParams",
    "expected_number",
    "expected_purchases",
    "fit",
    "log_likelihood",
    "p_alive",
    "standard_errors",
]

_LOG_BOUND = 15.0  # |log parameter| in the scaled unit: wide, but keeps gamma functions finite


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BgNbdParams:
        return cls(
            **{k: float(data[k]) for k in ("r", "alpha", "a", "b")},
            log_likelihood=float(data.get("log_likelihood", float("nan"))),
        )

    @property
    def values(self) -> np.ndarray:
        return np.array([self.r, self.alpha, self.a, self.b])


class _Data:
    """The data as the likelihood needs it.

    Rows are collapsed to unique (x, t_x, T) with weights. Every term that depends on one of x, t_x or T
    alone is computed once per distinct value and gathered (in days there are a few hundred distinct T
    and t_x however many customers there are), and the x = 0 rows, whose likelihood has a single term,
    enter only through per-value sums. Only the repeat rows are touched row by row.
    """

    def __init__(self, x, t_x, T, weights=None):
        x, t_x, T = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
        _check(x, t_x, T)
        if weights is None:
            ux, ut, uT, w, _ = unique_rows(x, t_x, T, inverse=False)
        else:
            weights = np.asarray(weights, dtype=np.float64).ravel()
            if weights.shape != x.shape or np.any(weights < 0) or not np.all(np.isfinite(weights)):
                raise ValueError("weights must be finite, non-negative and aligned with x")
            ux, ut, uT, _, inverse = unique_rows(x, t_x, T, inverse=True)
            w = np.bincount(inverse, weights=weights, minlength=ux.size)
        self._set(ux, ut, uT, w)

    def _set(self, ux, ut, uT, w):
        keep = w > 0
        ux, ut, uT, w = ux[keep], ut[keep], uT[keep], w[keep]
        self.rows_ = (ux, ut, uT, w)
        self.rows = int(ux.size)
        self.total = float(w.sum())
        self.xv, xi = distinct(ux)
        self.wx = np.bincount(xi, weights=w, minlength=self.xv.size)  # weight per distinct x
        self.Tv, iT = distinct(uT)
        self.WT = np.bincount(iT, weights=w, minlength=self.Tv.size)  # weight per distinct T
        self.WXT = np.bincount(iT, weights=w * ux, minlength=self.Tv.size)  # weight * x per distinct T
        rep = ux > 0
        self.tv, self.it = distinct(ut[rep])
        self.iT, self.xi = iT[rep], xi[rep]
        self.x, self.w = ux[rep], w[rep]
        self.w_repeat = float(self.w.sum())

    def thinned(self, fraction: float, rng: np.random.Generator) -> _Data:
        """A random subset of about ``fraction`` of the customers (Poisson thinning of the weights)."""
        ux, ut, uT, w = self.rows_
        other = object.__new__(_Data)
        other._set(ux, ut, uT, rng.poisson(w * fraction).astype(np.float64))
        return other

    def scaled(self, s: float) -> _Data:
        other = object.__new__(_Data)
        other.__dict__.update(self.__dict__)
        other.Tv, other.tv = self.Tv / s, self.tv / s
        ux, ut, uT, w = self.rows_
        other.rows_ = (ux, ut / s, uT / s, w)
        return other


def _check(x, t_x, T):
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("x, t_x and T must have the same length")
    if x.size == 0:
        raise ValueError("no customers to fit")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("x, t_x and T must be finite")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("x must be non-negative integers")
    if np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need 0 <= t_x <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 when x is 0")


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    # Not np.dot: BLAS may thread a long ddot, which is slower than one core on a busy machine.
    return float(np.einsum("i,i->", u, v))


def _evaluate(theta: np.ndarray, d: _Data, order: int = 1):
    """Mean negative log-likelihood over log-parameters; with ``order`` 1 also its gradient, with 2
    also its Hessian, both analytic.

    Per customer, log L = log G(r+x) - log G(r) + r log(alpha) + log B(a, b+x) - log B(a, b)
    - (r+x) log(alpha+T) + softplus(delta), where delta = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))
    is the log-ratio of the second likelihood term to the first (no second term when x = 0).
    With s = sigmoid(delta), the second term's share, d softplus(delta) = s d delta and
    d2 softplus(delta) = s (1-s) d delta d delta' + s d2 delta, where
      d delta / d(r, alpha, a, b)
        = (log((alpha+T)/(alpha+t_x)), (r+x) (1/(alpha+T) - 1/(alpha+t_x)), 1/a, -1/(b+x-1)).
    The other terms' derivatives are digamma/trigamma functions of x alone or functions of T alone,
    summed once per distinct value. The chain rule to log-parameters multiplies by the parameters.
    """
    r, alpha, a, b = p = np.exp(theta)
    xv = d.xv
    lg_x = special.gammaln(r + xv) - special.gammaln(r) + special.betaln(a, b + xv) - special.betaln(a, b)
    L_T = np.log(alpha + d.Tv)
    L_t = np.log(alpha + d.tv)
    with np.errstate(divide="ignore", invalid="ignore"):
        logk_x = np.log(a) - np.log(b + xv - 1.0)  # only gathered for x >= 1
    # Repeat rows, in place where possible (these arrays are the whole cost of an evaluation).
    D = L_T[d.iT]
    D -= L_t[d.it]
    rx = d.x + r
    delta = rx * D
    delta += logk_x[d.xi]
    # softplus(delta) = max(delta, 0) + log1p(exp(-|delta|))
    tmp = np.abs(delta)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=tmp)
    softplus = np.maximum(delta, 0.0)
    softplus += tmp
    n = d.total
    ll = n * r * np.log(alpha) + _dot(d.wx, lg_x) - _dot(r * d.WT + d.WXT, L_T) + _dot(d.w, softplus)
    f = -float(ll) / n
    if order == 0:
        return f
    sig = np.subtract(delta, softplus, out=tmp)  # sigmoid(delta) = exp(delta - softplus(delta))
    np.exp(sig, out=sig)
    ws = d.w * sig
    I_T = 1.0 / (alpha + d.Tv)
    I_t = 1.0 / (alpha + d.tv)
    E = I_T[d.iT]
    E -= I_t[d.it]
    rxE = rx * E
    with np.errstate(divide="ignore"):
        c_x = np.where(xv > 0, 1.0 / (b + xv - 1.0), 0.0)
    c = c_x[d.xi]
    sum_ws = float(ws.sum())
    psi = special.digamma
    dg_ab = psi(a + b) - psi(a + b + xv)
    g = np.array(
        [
            _dot(d.wx, psi(r + xv) - psi(r)) + n * np.log(alpha) - _dot(d.WT, L_T) + _dot(ws, D),
            n * r / alpha - _dot(r * d.WT + d.WXT, I_T) + _dot(ws, rxE),
            _dot(d.wx, dg_ab) + sum_ws / a,
            _dot(d.wx, dg_ab + psi(b + xv) - psi(b)) - _dot(ws, c),
        ]
    )
    if order == 1:
        return f, -(g * p) / n
    s = ws * (1.0 - sig)  # w s (1 - s)
    sD, srxE, sc = s * D, s * rxE, s * c
    sum_s = float(s.sum())
    tri = special.polygamma
    t_ab = tri(1, a + b) - tri(1, a + b + xv)
    I2 = I_T[d.iT] ** 2
    I2 -= I_t[d.it] ** 2
    H = np.empty((4, 4))
    H[0, 0] = _dot(d.wx, tri(1, r + xv) - tri(1, r)) + _dot(sD, D)
    H[0, 1] = n / alpha - _dot(d.WT, I_T) + _dot(sD, rxE) + _dot(ws, E)
    H[0, 2] = float(sD.sum()) / a
    H[0, 3] = -_dot(sD, c)
    H[1, 1] = -n * r / alpha**2 + _dot(r * d.WT + d.WXT, I_T**2) + _dot(srxE, rxE) - _dot(ws * rx, I2)
    H[1, 2] = float(srxE.sum()) / a
    H[1, 3] = -_dot(srxE, c)
    H[2, 2] = _dot(d.wx, t_ab) + (sum_s - sum_ws) / a**2
    H[2, 3] = _dot(d.wx, t_ab) - float(sc.sum()) / a
    H[3, 3] = _dot(d.wx, t_ab + tri(1, b + xv) - tri(1, b)) + _dot(sc, c) + _dot(ws, c * c)
    H = np.triu(H) + np.triu(H, 1).T
    # Chain rule to log-parameters: d2/dlog_i dlog_j = p_i p_j H_ij + [i = j] p_i g_i.
    H_log = H * np.outer(p, p) + np.diag(p * g)
    return f, -(g * p) / n, -H_log / n


def _objective(theta: np.ndarray, d: _Data, with_grad: bool = True):
    """Mean negative log-likelihood (and its gradient) over log-parameters, for the optimiser."""
    return _evaluate(theta, d, 1 if with_grad else 0)


def log_likelihood(params: BgNbdParams, x, t_x, T, weights=None) -> float:
    """Total (weighted) log-likelihood of the data under ``params``, in the data's time unit."""
    d = _Data(x, t_x, T, weights)
    return _total_ll(params.values, d)


def _total_ll(values: np.ndarray, d: _Data) -> float:
    return -_objective(np.log(values), d, with_grad=False) * d.total


def _starts(d: _Data) -> list[np.ndarray]:
    # In the scaled unit; one generic start and one from the observed repeat rate.
    rate = max(float(d.WXT.sum()) / max(_dot(d.WT, d.Tv), 1e-12), 1e-6)
    repeaters = d.w_repeat / d.total
    b0 = 1.0 + 4.0 * repeaters
    return [np.zeros(4), np.log([1.0, 1.0 / rate, 1.0, b0])]


def _minimise(d: _Data, start: np.ndarray):
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    start = np.clip(start, -_LOG_BOUND + 1, _LOG_BOUND - 1)
    return optimize.minimize(
        _objective,
        start,
        args=(d,),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        # Tight enough to reach the Newton basin; tighter only makes the line search fail on round-off.
        options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8, "maxcor": 20},
    )


def _newton(evaluate, theta: np.ndarray, max_steps: int = 30) -> tuple[np.ndarray, bool]:
    """Damped Newton with an analytic Hessian, from a point near the optimum; ``evaluate(theta, order)``
    gives f, (f, g) or (f, g, H). Returns the point and whether it converged (False when the Hessian is
    not positive definite or no step helps: the caller then falls back to L-BFGS). Shared with
    Gamma-Gamma."""
    f, g, H = evaluate(theta, 2)
    for _ in range(max_steps):
        try:
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return theta, False
        size = float(np.max(np.abs(step)))
        if not np.isfinite(size):
            return theta, False
        if size < 1e-9:
            return theta, True
        step *= min(1.0, 1.0 / size)  # at most a factor e per parameter per step
        slope = float(np.dot(g, step))
        if size < 1e-3 and slope < 1e-13 * (1.0 + abs(f)):
            # The predicted gain is below round-off: a line search would only see noise. The full
            # step (Newton is quadratic this close) is the optimum.
            return np.clip(theta - step, -_LOG_BOUND, _LOG_BOUND), True
        t = 1.0
        while t > 1e-6:
            trial = np.clip(theta - t * step, -_LOG_BOUND, _LOG_BOUND)
            f2 = evaluate(trial, 0)
            if np.isfinite(f2) and f2 <= f - 1e-4 * t * slope:
                break
            t /= 2
        else:
            # No decrease left within round-off: converged if the step was already tiny.
            return theta, size < 1e-6
        theta = trial
        f, g, H = evaluate(theta, 2)
        if t * size < 1e-10:
            return theta, True
    return theta, False


def _hessian(theta: np.ndarray, d: _Data, g0: np.ndarray | None = None, h: float = 1e-5) -> np.ndarray:
    """Finite-difference Hessian (of the analytic gradient), to check the analytic one in tests:
    forward differences when ``g0`` (the gradient at theta) is given, central otherwise."""
    H = np.empty((4, 4))
    for i in range(4):
        e = np.zeros(4)
        e[i] = h
        if g0 is None:
            H[i] = (_objective(theta + e, d)[1] - _objective(theta - e, d)[1]) / (2 * h)
        else:
            H[i] = (_objective(theta + e, d)[1] - g0) / h
    return (H + H.T) / 2


# Above this many customers (and distinct rows) the fit starts from a fit on a random subset of
# _WARM_CUSTOMERS, whose optimum is close enough for Newton on the full data to finish in a few steps.
_WARM_CUSTOMERS = 100_000
_WARM_ROWS = 30_000


def fit(x, t_x, T, weights=None) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for customers ``(x, t_x, T)`` (optionally weighted).

    Identical rows are collapsed first, so passing raw per-customer arrays is as fast as passing
    unique rows with weights. L-BFGS-B from the better of two starting points finds the basin (on a
    fixed-seed random subset when the data is large), and Newton steps with the analytic Hessian on the
    full data finish; if Newton cannot, L-BFGS-B runs on the full data. The result does not depend on
    the subset: it is the optimum of the full likelihood.
    """
    d = _Data(x, t_x, T, weights)
    if d.total <= 0:
        raise ValueError("no customers to fit")
    scale = max(float(d.Tv.max()) / 10.0, 1e-12)
    ds = d.scaled(scale)
    warm = ds
    if ds.total > 2 * _WARM_CUSTOMERS and ds.rows > _WARM_ROWS:
        warm = ds.thinned(_WARM_CUSTOMERS / ds.total, np.random.default_rng(0))

    def full(theta, order):
        return _evaluate(theta, ds, order)

    theta, converged = _newton(full, _lbfgs(warm))
    if not converged:
        theta, _ = _newton(full, _lbfgs(ds, [theta]))
    r, alpha, a, b = np.exp(theta)
    alpha *= scale
    return BgNbdParams(float(r), float(alpha), float(a), float(b), _total_ll(np.array([r, alpha, a, b]), d))


def _lbfgs(d: _Data, starts: list[np.ndarray] | None = None) -> np.ndarray:
    """L-BFGS-B from the starts ranked by likelihood; the next start is tried only when the optimiser
    fails or stops on a bound."""
    starts = sorted(starts or _starts(d), key=lambda theta: _evaluate(theta, d, 0))
    best = None
    for start in starts:
        res = _minimise(d, start)
        if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
        if res.success and np.all(np.abs(res.x) < _LOG_BOUND - 1e-6):
            break
    if best is None:
        raise RuntimeError("BG/NBD fit failed")
    return best.x


def standard_errors(params: BgNbdParams, x, t_x, T, weights=None) -> np.ndarray:
    """Asymptotic standard errors of (r, alpha, a, b) from the observed information (inverse Hessian
    of the total log-likelihood), by the delta method from the log-parameters."""
    d = _Data(x, t_x, T, weights)
    theta = np.log(params.values)
    H = _evaluate(theta, d, 2)[2] * d.total  # Hessian of the total negative log-likelihood in log-params
    cov = np.linalg.inv(H)
    return params.values * np.sqrt(np.diag(cov))


def p_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T). The model cannot drop a customer who never bought again, so
    rows with x = 0 get 1."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    return special.expit(-_log_odds_dead(params, x, t_x, T))


def _log_odds_dead(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore"):
        logk = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0)
        out = logk + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, out, -np.inf)


def _alive_body(x, r: float, a: float, b: float, s, t) -> np.ndarray:
    """E[Y(t) | alive, x purchases, s = alpha+T]: the posterior of p given alive is Beta(a, b+x) and of
    lambda Gamma(r+x, s), so this is E_p[(1 - (s/(s+pt))^(r+x)) / p], in closed form

        c/(a-1) * (1 - F),   F = (s/(s+t))^(r+x) 2F1(r+x, b+x; c; z),   c = a+b+x-1, z = t/(s+t).

    The 2F1 grows like (1-z)^(a-1-r-x) while the power shrinks, so F is computed as written when
    a - 1 >= r + x, and otherwise in its Euler-transformed form (1-z)^(a-1) 2F1(a-1, a+b-1-r; c; z),
    which has two small parameters (large x, long horizons). Where both under/overflow (a in the
    hundreds or more: p's Beta is then narrow) the expectation is taken by the delta method to second
    order (relative error ~1/a^2). At a = 1 the closed form is 0/0: the mean of a = 1 +- 1e-6 is used.
    """
    x, s, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, s, t)))
    if abs(a - 1.0) < 1e-7:
        eps = 1e-6
        return 0.5 * (_alive_body(x, r, 1 + eps, b, s, t) + _alive_body(x, r, 1 - eps, b, s, t))
    c = a + b + x - 1.0
    k = r + x
    z = t / (s + t)
    direct = (a - 1.0) >= k
    F = np.empty(x.shape)
    with np.errstate(all="ignore"):
        i = direct
        F[i] = (1.0 - z[i]) ** k[i] * special.hyp2f1(k[i], b + x[i], c[i], z[i])
        i = ~direct
        F[i] = (1.0 - z[i]) ** (a - 1.0) * special.hyp2f1(a - 1.0, a + b - 1.0 - r, c[i], z[i])
        body = c / (a - 1.0) * (1.0 - F)
    bad = ~np.isfinite(body)
    if bad.any():
        body[bad] = _delta_body(x[bad], r, a, b, s[bad], t[bad])
    return body


def _delta_body(x, r, a, b, s, t):
    """E[g(p)] ~ g(mu) + g''(mu) var / 2 for p ~ Beta(a, b+x), g(p) = (1 - (s/(s+pt))^(r+x)) / p."""
    n = a + b + x
    mu = a / n
    var = mu * (1.0 - mu) / (n + 1.0)

    def g(p):
        return -np.expm1(-(r + x) * np.log1p(p * t / s)) / p

    h = 1e-3 * mu
    second = (g(mu + h) - 2.0 * g(mu) + g(mu - h)) / (h * h)
    return g(mu) + 0.5 * second * var


def expected_purchases(params: BgNbdParams, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units (eq. 10 of the paper),

    (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
    * P(alive | x, t_x, T).
    """
    x, t_x, T, t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T, t))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return _alive_body(x, r, a, b, alpha + T, t) * p_alive(params, x, t_x, T)


def expected_number(params: BgNbdParams, t) -> np.ndarray:
    """Unconditional E[X(t)]: expected repeat purchases in the first ``t`` time units after a
    customer's first purchase (eq. 9 of the paper),
    (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
    t = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    body = _alive_body(np.zeros_like(t), r, a, b, alpha, t)
    return body if body.ndim else body[()]
