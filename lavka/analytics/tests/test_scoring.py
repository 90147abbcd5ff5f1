"""Model scores: a simulated shop big enough for the data-sufficiency gate gets its fit, backtest and
scores written; a small one gets "not enough data" and no scores; churn risk and its reason."""

from __future__ import annotations

import datetime
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from lavka.analytics import lifecycle, metrics, scoring
from lavka.analytics.lifetime import bgnbd, gamma_gamma
from lavka.analytics.lifetime.simulate import transactions
from lavka.analytics.models import CustomerMetrics, ModelFit
from lavka.analytics.tests.metrics_kit import customer, customers, days_ago, load, order, row
from lavka.telephony.models import Call
from lavka.tracking.models import Cart, CartItem

BUYERS = 600
HISTORY_DAYS = 400
TRUE = bgnbd.BgNbdParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
SPEND = gamma_gamma.GammaGammaParams(p=6.0, q=4.0, gamma=300.0)


@pytest.fixture
def simulated(shop):
    """600 buyers acquired over 400 days, buying as BG/NBD says; order values from Gamma-Gamma. One
    buyer more with a single order long ago, and a customer without orders."""
    rng = np.random.default_rng(5)
    first = rng.uniform(0, HISTORY_DAYS - 1, BUYERS)
    who, when, amount = transactions(rng, TRUE, first, float(HISTORY_DAYS), SPEND)
    people = customers(shop.site, BUYERS)
    now = timezone.now()
    load(
        shop.site,
        [
            row(shop, people[c], days_ago(HISTORY_DAYS - t, now), [(shop.tea, f"{max(a, 1):.2f}")])
            for c, t, a in zip(who.tolist(), when.tolist(), amount.tolist(), strict=True)
        ],
    )
    lonely = customer(shop.site, "Lonely")
    order(shop, lonely, days_ago(HISTORY_DAYS - 1, now))
    nobody = customer(shop.site, "Nobody")
    return {"people": people, "lonely": lonely, "nobody": nobody, "orders": len(who) + 1}


def test_a_shop_with_enough_data_gets_fits_backtest_and_scores(shop, simulated):
    report = metrics.refresh_site(shop.site)
    fit = report.fit
    assert fit.sufficient and fit.reason == ""
    assert fit.customers == BUYERS + 1 and 100 <= fit.repeat_customers < BUYERS
    assert set(fit.bgnbd) >= {"r", "alpha", "a", "b", "log_likelihood"}
    assert {"p", "q", "gamma"} <= set(fit.gamma_gamma) and "error" not in fit.gamma_gamma
    # Simulated from known parameters: the fit lands in their neighbourhood (600 buyers only: loose).
    assert 0.3 < fit.bgnbd["r"] < 1.2 and 10 < fit.bgnbd["alpha"] < 60
    assert len(fit.backtest["buckets"]) == 8 and fit.backtest["total_actual"] > 0
    assert fit.backtest["sampled_customers"] == BUYERS + 1

    rows = {m.customer_id: m for m in CustomerMetrics.objects.filter(site=shop.site)}
    buyers = [m for m in rows.values() if m.orders_count]
    assert len(buyers) == BUYERS + 1
    for m in buyers:
        assert 0 <= m.p_alive <= 1 and 0 <= m.churn_risk <= 1
        assert 0 <= m.expected_purchases_30 <= m.expected_purchases_90 <= m.expected_purchases_365
        assert m.predicted_value == pytest.approx(m.expected_purchases_365 * m.expected_average_order)
        assert m.churn_reason
    assert rows[simulated["nobody"].pk].p_alive is None and rows[simulated["nobody"].pk].churn_reason == ""

    # One customer by hand, from the stored parameters and their metrics.
    some = max(buyers, key=lambda m: m.orders_count)
    bg = bgnbd.BgNbdParams.from_dict(fit.bgnbd)
    today = datetime.datetime.now(datetime.UTC).date()
    first, last = (
        some.first_order_at.astimezone(datetime.UTC).date(),
        some.last_order_at.astimezone(datetime.UTC).date(),
    )
    x, t_x, T = some.orders_count - 1.0, float((last - first).days), float((today - first).days)
    assert some.p_alive == pytest.approx(bgnbd.p_alive(bg, x, t_x, T).item(), rel=1e-6)
    assert some.expected_purchases_90 == pytest.approx(
        bgnbd.expected_purchases(bg, 90, x, t_x, T).item(), rel=1e-6
    )
    gg = gamma_gamma.GammaGammaParams.from_dict(fit.gamma_gamma)
    mean = float(some.revenue) / some.orders_count
    assert some.expected_average_order == pytest.approx(
        gamma_gamma.expected_average(gg, x, mean).item(), rel=1e-6
    )
    h = lifecycle.settings_of(shop.site).churned_days
    quiet = ((bg.alpha + T) / (bg.alpha + T + h)) ** (bg.r + x)
    assert some.churn_risk == pytest.approx(1 - some.p_alive * (1 - quiet), rel=1e-6)

    # A one-time buyer from long ago: P(alive) is 1 (the model cannot tell) but the risk is high.
    lonely = rows[simulated["lonely"].pk]
    assert lonely.p_alive == 1.0 and lonely.churn_risk > 0.5
    assert lonely.churn_reason.startswith("one order, ")


def test_the_incremental_path_scores_like_the_full_refresh(shop, simulated):
    metrics.refresh_site(shop.site)
    sample = list(CustomerMetrics.objects.filter(site=shop.site, orders_count__gt=1).order_by("pk")[:20])
    CustomerMetrics.objects.filter(pk__in=[m.pk for m in sample]).delete()
    for m in sample:
        metrics.refresh_customer(m.pk)
    again = CustomerMetrics.objects.in_bulk([m.pk for m in sample])
    for m in sample:
        got = again[m.pk]
        for name in (*scoring.SCORE_COLUMNS, "churn_reason", "rfm_segment", "lifecycle"):
            expected = getattr(m, name)
            assert getattr(got, name) == (
                pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected
            )


def test_behaviour_raises_the_churn_risk(shop, simulated):
    metrics.refresh_site(shop.site)
    m = CustomerMetrics.objects.filter(site=shop.site, orders_count__gt=1).order_by("pk").first()
    before = m.churn_risk
    now = timezone.now()
    cart = Cart.objects.create(site=shop.site, customer_id=m.pk, dropped_at=now)
    CartItem.objects.create(cart=cart, offer=shop.tea, quantity=1, price=Decimal("450"))
    for days in (100, 120, 150):  # three calls in the 90 days before the last 90, one since
        Call.objects.create(
            site=shop.site,
            direction="in",
            phone="+79160000000",
            customer_id=m.pk,
            started_at=now - datetime.timedelta(days=days),
        )
    Call.objects.create(
        site=shop.site,
        direction="in",
        phone="+79160000000",
        customer_id=m.pk,
        started_at=now - datetime.timedelta(days=3),
    )
    metrics.refresh_site(shop.site)
    after = CustomerMetrics.objects.get(pk=m.pk)
    # 1 − (1 − model)(1 − 0.2)(1 − 0.2 · (1 − 1/3))
    assert after.churn_risk == pytest.approx(1 - (1 - before) * 0.8 * (1 - 0.2 * (2 / 3)), rel=1e-3)
    assert "left a cart unpaid" in after.churn_reason
    assert "fewer contacts: 1 calls in the last 90 days, 3 before" in after.churn_reason
    metrics.refresh_customer(m.pk)  # the incremental path sees the same signals
    assert CustomerMetrics.objects.get(pk=m.pk).churn_risk == pytest.approx(after.churn_risk, rel=1e-4)


def test_too_little_data_stores_the_reason_and_no_scores(shop):
    people = customers(shop.site, 3)
    for n, who in enumerate(people):
        order(shop, who, days_ago(10 + n))
    # Scores left from an earlier fit must go.
    metrics.refresh_site(shop.site)
    CustomerMetrics.objects.filter(site=shop.site).update(p_alive=0.5, churn_risk=0.5, churn_reason="old")
    report = metrics.refresh_site(shop.site)
    assert not report.fit.sufficient and "at least 500" in report.fit.reason
    assert ModelFit.objects.filter(site=shop.site).count() == 2
    assert not CustomerMetrics.objects.filter(site=shop.site, p_alive__isnull=False).exists()
    assert not CustomerMetrics.objects.exclude(churn_reason="").exists()
    metrics.refresh_customer(people[0].pk)
    assert CustomerMetrics.objects.get(pk=people[0].pk).churn_risk is None


def test_combine_and_reason():
    model = np.array([0.0, 0.5, 0.9])
    assert scoring.combine(model, np.zeros(3), np.zeros(3)) == pytest.approx(model)
    assert scoring.combine(model, np.ones(3), np.zeros(3)) == pytest.approx([0.2, 0.6, 0.92])
    assert scoring.combine(np.ones(1), np.ones(1), np.ones(1)) == pytest.approx([1.0])
    assert scoring.fewer_contacts(np.array([1, 3, 0]), np.array([4, 2, 0])) == pytest.approx([0.75, 0, 0])
    assert scoring.reason(5, 210.4, 39.6, False, 0, 0) == "no order for 210 days, usually every 40"
    assert scoring.reason(1, 12.9, None, True, 0, 2) == (
        "one order, 12 days ago; left a cart unpaid; fewer contacts: 0 calls in the last 90 days, 2 before"
    )


def test_score_site_alone_rewrites_the_scores_from_the_stored_metrics(shop, simulated):
    metrics.refresh_site(shop.site)
    before = {m.pk: m for m in CustomerMetrics.objects.filter(site=shop.site)}
    CustomerMetrics.objects.filter(site=shop.site).update(p_alive=None, churn_risk=None, churn_reason="")
    fit = metrics.score_site(shop.site)
    assert fit.sufficient and ModelFit.objects.filter(site=shop.site).count() == 2
    after = CustomerMetrics.objects.in_bulk(list(before))
    for pk, m in before.items():
        for name in (*scoring.SCORE_COLUMNS, "churn_reason"):
            expected = getattr(m, name)
            got = getattr(after[pk], name)
            assert got == (pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected), (
                name
            )
