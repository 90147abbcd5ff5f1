"""BG/NBD: the published CDNOW fit, parameter recovery, the gradient, and the collapse into weights.

No database: plain functions over arrays. The CDNOW data comes from the test-only `lifetimes` package.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from lavka.analytics.lifetime import bgnbd, simulate, sufficient, summary
from lavka.analytics.lifetime.bgnbd import BgNbdParams

# Fader, Hardie & Lee (2005), CDNOW cohort of 2,357 customers, 39 weeks of calibration, time in weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4


@pytest.fixture(scope="module")
def cdnow():
    datasets = pytest.importorskip("lifetimes.datasets")
    data = datasets.load_cdnow_summary(index_col=[0])
    # data["T"], not data.T (that is the transpose).
    return tuple(data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))


@pytest.fixture(scope="module")
def cdnow_fit(cdnow):
    return bgnbd.fit(*cdnow)


def test_cdnow_parameters_match_the_paper(cdnow_fit):
    got = cdnow_fit.as_dict()
    for name, value in PUBLISHED.items():
        assert got[name] == pytest.approx(value, rel=0.005), name
    assert abs(cdnow_fit.log_likelihood - PUBLISHED_LL) < 0.1


def test_cdnow_conditional_expectation_matches_the_spreadsheet(cdnow_fit):
    # Hardie's spreadsheet: x=2, t_x=30.43, T=38.86 makes 1.226 purchases in the next 39 weeks.
    value = bgnbd.expected_purchases(cdnow_fit, 39, 2, 30.43, 38.86)
    assert round(float(value), 3) == 1.226


def test_cdnow_agrees_with_lifetimes(cdnow, cdnow_fit):
    # The reference implementation reaches the same optimum (a cross-check; the paper is the reference).
    lifetimes = pytest.importorskip("lifetimes")
    ref = lifetimes.BetaGeoFitter().fit(*cdnow)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(cdnow_fit, name) == pytest.approx(ref.params_[name], rel=1e-4)
    x, t_x, T = cdnow
    ours = bgnbd.expected_purchases(cdnow_fit, 10.0, x, t_x, T)
    theirs = ref.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    np.testing.assert_allclose(
        bgnbd.p_alive(cdnow_fit, x, t_x, T), ref.conditional_probability_alive(x, t_x, T), rtol=1e-3
    )


# Two (three) known parameter sets in days, with observation windows of varying length.
RECOVERY = [
    pytest.param(BgNbdParams(0.243, 30.9, 0.793, 2.426), (60.0, 545.0), 11, id="cdnow-like"),
    pytest.param(BgNbdParams(2.0, 60.0, 0.5, 8.0), (90.0, 730.0), 12, id="frequent-loyal"),
    pytest.param(BgNbdParams(0.8, 100.0, 2.5, 6.0), (30.0, 365.0), 13, id="a-above-1"),
]
# Each estimate must be within 4 standard errors (inverse observed information) of the truth. A repeated
# simulation (docs/analytics-models.md) showed these z-scores have mean ~0 and s.d. ~1 at 50,000
# customers, so 4 s.e. fails by chance with probability ~6e-5 per parameter, and the seeds are fixed.
Z_TOLERANCE = 4.0


@pytest.mark.parametrize(("true", "window", "seed"), RECOVERY)
def test_parameter_recovery(true, window, seed):
    rng = np.random.default_rng(seed)
    x, t_x, T = simulate.summaries(rng, true, rng.uniform(*window, 50_000))
    fitted = bgnbd.fit(x, t_x, T)
    se = bgnbd.standard_errors(fitted, x, t_x, T)
    z = (fitted.values - true.values) / se
    assert np.all(np.abs(z) < Z_TOLERANCE), dict(zip(("r", "alpha", "a", "b"), z.round(2), strict=True))
    # The tolerance has teeth: r and alpha are pinned to within 10%, a and b to within 50%
    # (docs/analytics-models.md lists the tolerances each set works out to).
    assert np.all(Z_TOLERANCE * se / true.values < [0.10, 0.10, 0.50, 0.50])


def test_fit_is_the_same_in_weeks_and_days(cdnow, cdnow_fit):
    x, t_x, T = cdnow
    in_days = bgnbd.fit(x, t_x * 7, T * 7)
    assert in_days.alpha == pytest.approx(cdnow_fit.alpha * 7, rel=1e-6)
    for name in ("r", "a", "b"):
        assert getattr(in_days, name) == pytest.approx(getattr(cdnow_fit, name), rel=1e-6)
    # The likelihood of the same data in days differs by sum(x) * log(7) (the density of the times).
    assert in_days.log_likelihood == pytest.approx(cdnow_fit.log_likelihood - x.sum() * np.log(7), abs=1e-6)


def _reference_ll_rows(values, x, t_x, T):
    """The paper's per-customer log-likelihood written out plainly, row by row, no collapsing."""
    r, alpha, a, b = values
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    first = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(
            x > 0,
            special.betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(first, second)


def test_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(5)
    x, t_x, T = simulate.summaries(rng, BgNbdParams(0.7, 3.0, 0.9, 2.5), rng.uniform(0.5, 10.0, 3000))
    data = bgnbd._Data(x, t_x, T)
    for theta in (np.log([0.7, 3.0, 0.9, 2.5]), np.log([2.0, 0.5, 0.2, 7.0]), np.log([0.05, 20.0, 3.0, 0.6])):
        _, grad, hess = bgnbd._evaluate(theta, data, 2)
        numeric = optimize.approx_fprime(theta, lambda z: bgnbd._evaluate(z, data, 0), 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
        # The analytic Hessian (Newton steps, standard errors) against differences of the gradient.
        np.testing.assert_allclose(hess, bgnbd._hessian(theta, data), rtol=1e-5, atol=1e-8)
        # And the objective itself is the plain formula, averaged over raw rows.
        plain = -_reference_ll_rows(np.exp(theta), x, t_x, T).mean()
        assert bgnbd._objective(theta, data, with_grad=False) == pytest.approx(plain, rel=1e-12)


def test_collapsed_weighted_fit_equals_raw_fit():
    rng = np.random.default_rng(6)
    x, t_x, T = simulate.summaries(rng, BgNbdParams(0.5, 20.0, 0.8, 3.0), rng.uniform(30, 200, 20_000), True)
    ux, ut, uT, weights, inverse = summary.collapse(x, t_x, T)
    assert ux.size < 0.6 * x.size  # whole days: many customers share a row
    np.testing.assert_array_equal(ux[inverse], x)
    np.testing.assert_array_equal(ut[inverse], t_x)
    np.testing.assert_array_equal(uT[inverse], T)
    assert weights.sum() == x.size

    raw = bgnbd.fit(x, t_x, T)
    collapsed = bgnbd.fit(ux, ut, uT, weights=weights)
    np.testing.assert_allclose(collapsed.values, raw.values, rtol=1e-6)
    # The reported likelihood is the plain row-by-row one, and the fit is its maximum.
    plain = lambda v: _reference_ll_rows(v, x, t_x, T).sum()  # noqa: E731
    assert raw.log_likelihood == pytest.approx(plain(raw.values), rel=1e-10)
    for k in range(4):
        for step in (1.001, 0.999):
            moved = raw.values.copy()
            moved[k] *= step
            assert plain(moved) < raw.log_likelihood


def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(7)
    x, t_x, T = simulate.summaries(rng, BgNbdParams(0.5, 5.0, 0.8, 3.0), rng.uniform(5, 40, 3000))
    doubled = bgnbd.fit(np.tile(x, 2), np.tile(t_x, 2), np.tile(T, 2))
    weighted = bgnbd.fit(x, t_x, T, weights=np.full(x.size, 2.0))
    np.testing.assert_allclose(weighted.values, doubled.values, rtol=1e-6)
    assert weighted.log_likelihood == pytest.approx(doubled.log_likelihood, rel=1e-9)


def test_collapse_of_fractional_times_uses_the_general_path():
    x = np.array([0, 1, 1, 1, 0, 2.0])
    t_x = np.array([0, 0.5, 0.5, 0.25, 0, 3.5])
    T = np.array([4.5, 4.5, 4.5, 4.5, 4.5, 7.0])
    ux, ut, uT, weights, inverse = summary.collapse(x, t_x, T)
    assert list(zip(ux, ut, uT, weights, strict=True)) == [
        (0, 0, 4.5, 2),
        (1, 0.25, 4.5, 1),
        (1, 0.5, 4.5, 2),
        (2, 3.5, 7.0, 1),
    ]
    np.testing.assert_array_equal(ux[inverse], x)
    np.testing.assert_array_equal(ut[inverse], t_x)


def test_from_transactions_counts_repeat_days():
    # Customer 7: days 10, 10 (same day: one purchase of 30), 15, 40, and 50 after the end.
    # Customer 3: day 20 only.
    customer = np.array([7, 7, 3, 7, 7, 7])
    day = np.array([10.0, 10.2, 20.0, 15.0, 40.0, 50.0])
    amount = np.array([10.0, 20.0, 99.0, 5.0, 7.0, 1000.0])
    s = summary.from_transactions(customer, day, amount, observation_end=45)
    np.testing.assert_array_equal(s.customers, [3, 7])
    np.testing.assert_array_equal(s.x, [0, 2])
    np.testing.assert_array_equal(s.t_x, [0, 30])
    np.testing.assert_array_equal(s.T, [25, 35])
    np.testing.assert_allclose(s.mean_value, [0, 6.0])  # repeat purchases only: (5 + 7) / 2
    weeks = summary.from_transactions(customer, day, amount, observation_end=45, unit=7)
    np.testing.assert_array_equal(weeks.x, [0, 2])  # weeks 1, 2 and 5
    np.testing.assert_array_equal(weeks.T, [6 - 2, 6 - 1])
    every = summary.from_transactions(customer, day, amount, observation_end=45, merge_same_period=False)
    np.testing.assert_array_equal(every.x, [0, 3])
    np.testing.assert_allclose(every.mean_value, [0, (20 + 5 + 7) / 3])


def test_predictions_are_sane():
    p = BgNbdParams(0.5, 20.0, 0.8, 3.0)
    # x = 0: never seen dropping out; a long silence after many purchases: probably gone.
    assert bgnbd.p_alive(p, 0, 0, 100) == 1.0
    assert bgnbd.p_alive(p, 10, 20, 300) < 0.01 < bgnbd.p_alive(p, 10, 295, 300)
    horizons = np.array([0.0, 30, 90, 365])
    e = bgnbd.expected_purchases(p, horizons, 3, 80, 100)
    assert e[0] == 0 and np.all(np.diff(e) > 0)
    # Unconditional E[X(t)] is the population mean of simulated customers.
    rng = np.random.default_rng(8)
    x, _, _ = simulate.summaries(rng, p, np.full(200_000, 180.0))
    assert bgnbd.expected_number(p, 180.0) == pytest.approx(x.mean(), rel=0.02)
    # Continuous through a = 1, where the closed form has 0/0.
    near = [
        bgnbd.expected_purchases(BgNbdParams(0.5, 20, a, 3), 90, 3, 80, 100) for a in (1 - 1e-5, 1, 1 + 1e-5)
    ]
    assert near[1] == pytest.approx(near[0], rel=1e-4) and near[1] == pytest.approx(near[2], rel=1e-4)
    # Huge x and long horizons stay finite.
    assert np.isfinite(bgnbd.expected_purchases(p, 3650, 500, 700, 730))


def _posterior_reference(x, r, a, b, s, t):
    """E_p[(1 - (s/(s+pt))^(r+x)) / p] for p ~ Beta(a, b+x), by adaptive quadrature."""

    def integrand(p):
        return stats.beta.pdf(p, a, b + x) * -np.expm1(-(r + x) * np.log1p(p * t / s)) / p

    return integrate.quad(integrand, 0, 1, points=[a / (a + b + x)], limit=200)[0]


@pytest.mark.parametrize(
    ("a", "b", "x", "s", "t"),
    [
        (0.8, 2.5, 2, 60.0, 365.0),  # ordinary
        (0.8, 2.5, 400, 60.0, 3650.0),  # large x, long horizon: the textbook form overflows here
        (300.0, 900.0, 400, 10.0, 990.0),  # a in the hundreds
        (3e5, 1.6e6, 3, 100.0, 365.0),  # a, b -> infinity: the fit's boundary when dropout is homogeneous
    ],
)
def test_conditional_expectation_is_accurate_everywhere(a, b, x, s, t):
    r = 0.4
    body = bgnbd._alive_body(np.array([float(x)]), r, a, b, np.array([s]), np.array([t]))[0]
    assert body == pytest.approx(_posterior_reference(x, r, a, b, s, t), rel=1e-6)
    # The delta-method fallback is good wherever p's Beta is narrow.
    if a >= 300:
        delta = bgnbd._delta_body(np.array([float(x)]), r, a, b, np.array([s]), np.array([t]))[0]
        assert delta == pytest.approx(body, rel=1e-4)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError):
        bgnbd.fit([1, 0], [5, 0], [3, 10])  # t_x > T
    with pytest.raises(ValueError):
        bgnbd.fit([0.5], [0], [3])
    with pytest.raises(ValueError):
        bgnbd.fit([], [], [])


def test_sufficiency_gate():
    ok, reason = sufficient(np.zeros(100), np.full(100, 400.0))
    assert not ok and "customers" in reason
    x = np.zeros(1000)
    x[:50] = 1
    ok, reason = sufficient(x, np.full(1000, 400.0))
    assert not ok and "more than once" in reason
    x[:300] = 2
    ok, reason = sufficient(x, np.full(1000, 90.0))
    assert not ok and "days" in reason
    assert sufficient(x, np.full(1000, 400.0))[0]
