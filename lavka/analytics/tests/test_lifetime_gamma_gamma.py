"""Gamma-Gamma: the published CDNOW fit, recovery, the gradient, and the value helpers. No database."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from lavka.analytics.lifetime import bgnbd, gamma_gamma
from lavka.analytics.lifetime.bgnbd import BgNbdParams
from lavka.analytics.lifetime.gamma_gamma import GammaGammaParams

# Fader, Hardie & Lee (2005), "RFM and CLV", CDNOW: 946 customers with repeat purchases.
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def cdnow():
    datasets = pytest.importorskip("lifetimes.datasets")
    data = datasets.load_cdnow_summary_data_with_monetary_value()
    data = data[data["frequency"] > 0]
    return data["frequency"].to_numpy(dtype=float), data["monetary_value"].to_numpy(dtype=float)


def test_cdnow_parameters_match_the_paper(cdnow):
    x, m = cdnow
    assert x.size == 946
    fitted = gamma_gamma.fit(x, m)
    for name, value in PUBLISHED.items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.01), name
    lifetimes = pytest.importorskip("lifetimes")
    ref = lifetimes.GammaGammaFitter().fit(x, m)
    np.testing.assert_allclose([fitted.p, fitted.q, fitted.gamma], ref.params_[["p", "q", "v"]], rtol=1e-4)
    np.testing.assert_allclose(
        gamma_gamma.expected_average(fitted, x, m), ref.conditional_expected_average_profit(x, m), rtol=1e-4
    )


def test_zero_frequency_rows_are_ignored(cdnow):
    x, m = cdnow
    with_zeros = gamma_gamma.fit(np.append(x, [0, 0, 0]), np.append(m, [0, 0, 0]))
    assert with_zeros == gamma_gamma.fit(x, m)


def _simulate(rng, true: GammaGammaParams, n: int):
    x = rng.integers(1, 12, n).astype(float)
    nu = rng.gamma(true.q, 1.0 / true.gamma, n)
    # The mean of x Gamma(p, nu) values is Gamma(p x, rate nu x).
    m = rng.gamma(true.p * x, 1.0 / (nu * x))
    return x, m


@pytest.mark.parametrize(
    "true",
    [GammaGammaParams(6.0, 4.0, 150.0), GammaGammaParams(2.0, 8.0, 2000.0)],
    ids=["cdnow-like", "wide"],
)
def test_parameter_recovery(true):
    rng = np.random.default_rng(21)
    x, m = _simulate(rng, true, 50_000)
    fitted = gamma_gamma.fit(x, m)
    se = gamma_gamma.standard_errors(fitted, x, m)
    z = (np.array([fitted.p, fitted.q, fitted.gamma]) - [true.p, true.q, true.gamma]) / se
    assert np.all(np.abs(z) < 4.0), z
    assert np.all(4.0 * se < 0.25 * np.array([true.p, true.q, true.gamma]))  # the tolerance has teeth


def test_gradient_and_hessian_match_finite_differences():
    rng = np.random.default_rng(22)
    x, m = _simulate(rng, GammaGammaParams(3.0, 5.0, 40.0), 2000)
    data = gamma_gamma._Data(x, m)
    for theta in (np.log([3.0, 5.0, 4.0]), np.log([0.5, 1.5, 20.0]), np.log([12.0, 30.0, 0.3])):
        f, grad, hess = gamma_gamma._evaluate(theta, data, 2)
        numeric = optimize.approx_fprime(theta, lambda z: gamma_gamma._evaluate(z, data, 0), 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
        numeric_hess = optimize.approx_fprime(theta, lambda z: gamma_gamma._evaluate(z, data, 1)[1], 1e-6)
        np.testing.assert_allclose(hess, numeric_hess, rtol=1e-4, atol=1e-6)
        # The objective is the plain formula, averaged over the rows.
        assert f == pytest.approx(-_plain_ll(np.exp(theta), x, m).mean(), rel=1e-12)


def _plain_ll(values, x, m):
    p, q, gamma = values
    return (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gamma + m * x)
    )


def test_weights_equal_repeated_rows(cdnow):
    x, m = cdnow
    weights = np.arange(x.size) % 3 + 1.0
    weighted = gamma_gamma.fit(x, m, weights=weights)
    repeated = gamma_gamma.fit(np.repeat(x, weights.astype(int)), np.repeat(m, weights.astype(int)))
    np.testing.assert_allclose(
        [weighted.p, weighted.q, weighted.gamma], [repeated.p, repeated.q, repeated.gamma], rtol=1e-6
    )


def test_expected_average_shrinks_towards_the_population_mean():
    params = GammaGammaParams(6.25, 3.74, 15.44)
    population = params.population_mean
    assert population == pytest.approx(6.25 * 15.44 / 2.74)
    values = gamma_gamma.expected_average(params, [0, 1, 10, 1000], [123.0, 100.0, 100.0, 100.0])
    assert values[0] == pytest.approx(population)  # x = 0: the mean value is not used
    assert population < values[1] < values[2] < values[3] < 100.0
    assert values[3] == pytest.approx(100.0, rel=0.01)


def test_predicted_value():
    bg = BgNbdParams(0.5, 20.0, 0.8, 3.0)
    gg = GammaGammaParams(6.0, 4.0, 150.0)
    x, t_x, T, m = (
        np.array([0.0, 3, 10]),
        np.array([0.0, 80, 290]),
        np.array([100.0, 100, 300]),
        np.array([0, 200, 400.0]),
    )
    plain = gamma_gamma.predicted_value(bg, gg, x, t_x, T, m, 365)
    expected = bgnbd.expected_purchases(bg, 365, x, t_x, T) * gamma_gamma.expected_average(gg, x, m)
    np.testing.assert_allclose(plain, expected)
    # Monthly steps add up to the whole horizon when nothing is discounted, and discounting lowers it.
    undiscounted = gamma_gamma.predicted_value(bg, gg, x, t_x, T, m, 365, monthly_discount=1e-15)
    np.testing.assert_allclose(undiscounted, plain, rtol=1e-9)
    discounted = gamma_gamma.predicted_value(bg, gg, x, t_x, T, m, 365, monthly_discount=0.01)
    assert np.all(discounted < plain) and np.all(discounted > plain / 1.01**12)
