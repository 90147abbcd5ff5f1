"""The owner's dashboard, the backtest page and the lifecycle thresholds form: who may open them, what
they show, the cache, CSRF on the form."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lavka.analytics import charts, dashboard, shop_kpi
from lavka.analytics.kpi import Period
from lavka.analytics.models import ModelFit, SiteAnalytics
from lavka.analytics.tests.test_shop_kpi import at, customer, march_shop, order  # noqa: F401  (fixture)

MARCH = "from=2024-03-01&to=2024-03-31"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def client_for(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", ["analytics:dashboard", "analytics:backtest", "analytics:settings"])
def test_managers_operators_and_strangers_get_404(shop, name):
    url = reverse(name)
    assert Client().get(url)["Location"].startswith(reverse("accounts:login"))
    for user in (shop.alice, shop.operator, shop.outsider):
        assert client_for(user).get(url).status_code == 404


def test_supervisor_sees_the_dashboard_of_their_site(march_shop):  # noqa: F811
    shop = march_shop
    response = client_for(shop.supervisor).get(f"{reverse('analytics:dashboard')}?{MARCH}")
    assert response.status_code == 200
    page = response.content.decode()
    # The tiles: March against February (see test_shop_kpi.test_period_figures for the arithmetic).
    revenue = _tile(page, "revenue")
    assert "7,400" in revenue and "800" in revenue and "+825.0 %" in revenue  # (7400 − 800) / 800
    assert "1,480" in _tile(page, "average_order")
    assert "50.0 %" in _tile(page, "repeat_share") and "+50.0 pp" in _tile(page, "repeat_share")
    assert "3,333.3" in _tile(page, "complaints")
    assert "2.3 d" in _tile(page, "delivery") and "24.0 h" in _tile(page, "delivery")  # 56 h; 24 h
    # The charts are there, with data.
    assert 'class="chart line-chart"' in page and re.search(r'data-points="[1-9]\d*"', page)
    assert 'class="chart heatmap cohorts"' in page
    # Other sites' money never shows: the other site's 9,999 order.
    assert "9,999" not in page
    assert "All sites" not in page  # one site: nothing to choose


def _tile(page: str, key: str) -> str:
    found = re.search(rf'id="tile-{key}".*?</div>\s*</div>', page, re.S)
    assert found, key
    return re.sub(r"\s+", " ", found.group(0).replace("\xa0", " "))


def test_a_site_the_viewer_may_not_see_is_404(march_shop):  # noqa: F811
    shop = march_shop
    supervisor = client_for(shop.supervisor)
    assert supervisor.get(f"{reverse('analytics:dashboard')}?site=other").status_code == 404
    assert supervisor.get(f"{reverse('analytics:backtest')}?site=other").status_code == 404
    assert supervisor.get(f"{reverse('analytics:settings')}?site=other").status_code == 404
    admin = client_for(shop.admin)
    both = admin.get(f"{reverse('analytics:dashboard')}?{MARCH}").content.decode()
    assert "All sites" in both and "17,399" in _tile(both, "revenue")  # 7400 + 9999
    other = admin.get(f"{reverse('analytics:dashboard')}?{MARCH}&site=other").content.decode()
    assert "9,999" in _tile(other, "revenue")


def test_bad_dates_fall_back_with_a_message(shop):
    page = client_for(shop.supervisor).get(f"{reverse('analytics:dashboard')}?from=2024-13-01").content
    assert b"Enter dates as YYYY-MM-DD." in page


def test_htmx_gets_the_body_only(march_shop):  # noqa: F811
    response = client_for(march_shop.supervisor).get(
        f"{reverse('analytics:dashboard')}?{MARCH}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard-body"
    )
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page and 'id="tile-revenue"' in page


def test_figures_are_cached_until_recomputed(march_shop):  # noqa: F811
    shop = march_shop
    supervisor = client_for(shop.supervisor)
    url = f"{reverse('analytics:dashboard')}?{MARCH}"
    assert "7,400" in _tile(supervisor.get(url).content.decode(), "revenue")
    order(shop, customer(shop, "Late"), at(3, 30), "600")
    assert "7,400" in _tile(supervisor.get(url).content.decode(), "revenue")  # the cached figures
    assert "8,000" in _tile(supervisor.get(f"{url}&fresh=1").content.decode(), "revenue")  # 7400 + 600


def test_snapshot_key_includes_sites_and_period(march_shop):  # noqa: F811
    shop = march_shop
    march = Period(datetime.date(2024, 3, 1), datetime.date(2024, 3, 31))
    mine = dashboard.snapshot([shop.site.pk], march)
    assert dashboard.snapshot([shop.other_site.pk], march).kpis.current.revenue != mine.kpis.current.revenue
    assert dashboard.snapshot([shop.site.pk], shop_kpi.previous_period(march)).kpis.current.orders == 1


def test_warm_caches_the_default_view_of_every_site_set(march_shop):  # noqa: F811
    shop = march_shop
    sets = dashboard.site_sets()
    # Each site alone, both (admins); the supervisor's set is the shop alone, already there.
    assert sorted(sets) == sorted(
        [[shop.site.pk], [shop.other_site.pk], sorted([shop.site.pk, shop.other_site.pk])]
    )
    assert dashboard.warm() == 3
    key_period = shop_kpi.last_months(dashboard.DEFAULT_MONTHS)
    warmed = dashboard.snapshot([shop.site.pk], key_period)
    order(shop, customer(shop, "After"), timezone.now() - datetime.timedelta(hours=1), "600")
    assert dashboard.snapshot([shop.site.pk], key_period).computed_at == warmed.computed_at  # from the cache


# --- the backtest page --------------------------------------------------------------------------------


def test_backtest_without_a_fit_says_not_enough_data(shop):
    page = client_for(shop.supervisor).get(reverse("analytics:backtest")).content.decode()
    assert 'id="not-enough-data"' in page and "have not been fitted" in page


def test_backtest_of_an_insufficient_fit_gives_the_reason(shop):
    ModelFit.objects.create(
        site=shop.site, fitted_at=timezone.now(), sufficient=False, reason="Only 12 repeat buyers; 50 needed."
    )
    page = client_for(shop.supervisor).get(reverse("analytics:backtest")).content.decode()
    assert "Not enough data" in page and "Only 12 repeat buyers; 50 needed." in page


def test_backtest_shows_the_newest_fit(shop):
    old = timezone.now() - datetime.timedelta(days=7)
    ModelFit.objects.create(site=shop.site, fitted_at=old, sufficient=False, reason="old and thin")
    ModelFit.objects.create(
        site=shop.site,
        fitted_at=timezone.now(),
        sufficient=True,
        customers=900,
        repeat_customers=300,
        bgnbd={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        gamma_gamma={"p": 6.25, "q": 3.74, "gamma": 15.44},
        backtest={
            "calibration_end": 19723.0,  # days since 1970-01-01: 1 January 2024
            "holdout_days": 90,
            "buckets": [
                {"x": 0, "label": "0", "customers": 600, "predicted": 60.0, "actual": 54},
                {"x": 1, "label": "1", "customers": 200, "predicted": 80.0, "actual": 90},
                {"x": 2, "label": "2+", "customers": 100, "predicted": 70.0, "actual": 66},
            ],
            "total_predicted": 210.0,
            "total_actual": 210,
            "error": 0.0,
        },
    )
    page = client_for(shop.supervisor).get(reverse("analytics:backtest")).content.decode()
    assert "old and thin" not in page
    assert "r = 0.2430" in page and "gamma = 15.4400" in page
    assert 'data-points="6"' in page  # predicted and actual per customer for three buckets
    assert "0.400" in page and "0.450" in page  # bucket 1: 80 / 200 predicted, 90 / 200 actual
    assert "error 0.0 %" in page
    assert "up to Jan. 1, 2024" in page


def test_backtest_that_could_not_run_says_why(shop):
    ModelFit.objects.create(
        site=shop.site,
        fitted_at=timezone.now(),
        sufficient=True,
        bgnbd={"r": 1},
        backtest={"error": "no orders"},
    )
    page = client_for(shop.supervisor).get(reverse("analytics:backtest")).content.decode()
    assert "The backtest could not run: no orders" in page and "line-chart" not in page


# --- the thresholds form ------------------------------------------------------------------------------


def test_thresholds_form_shows_the_current_values(shop):
    SiteAnalytics.objects.create(site=shop.site, active_days=30, sleeping_days=60, churned_days=120)
    page = client_for(shop.supervisor).get(reverse("analytics:settings")).content.decode()
    assert 'name="active_days" value="30"' in page and 'name="churned_days" value="120"' in page


def test_thresholds_are_saved_through_the_action(shop):
    client = client_for(shop.supervisor, enforce_csrf_checks=True)
    url = reverse("analytics:settings")
    data = {"site": "shop", "active_days": "40", "sleeping_days": "100", "churned_days": "200"}
    assert client.post(url, data).status_code == 403  # no CSRF token
    assert not SiteAnalytics.objects.filter(site=shop.site, thresholds_edited=True).exists()

    client.get(url)  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(url, {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    saved = SiteAnalytics.objects.get(site=shop.site)
    assert (saved.active_days, saved.sleeping_days, saved.churned_days, saved.thresholds_edited) == (
        40,
        100,
        200,
        True,
    )
    assert shop_kpi.churn_window([shop.site.pk]) == {shop.site.pk: 200}  # the dashboard's churn window


def test_thresholds_out_of_order_are_refused(shop):
    client = client_for(shop.supervisor)
    url = reverse("analytics:settings")
    response = client.post(
        url, {"site": "shop", "active_days": "90", "sleeping_days": "60", "churned_days": "400"}
    )
    assert response.status_code == 400
    assert "Must be more than the active period." in response.content.decode()
    assert not SiteAnalytics.objects.filter(site=shop.site, thresholds_edited=True).exists()


def test_a_manager_cannot_post_thresholds(shop):
    data = {"site": "shop", "active_days": "40", "sleeping_days": "100", "churned_days": "200"}
    assert client_for(shop.alice).post(reverse("analytics:settings"), data).status_code == 404
    assert not SiteAnalytics.objects.filter(site=shop.site).exists()


def test_nav_links_to_the_dashboard_for_supervisors_only(shop):
    link = f'href="{reverse("analytics:dashboard")}"'.encode()
    assert link in client_for(shop.supervisor).get(reverse("orders:my_work")).content
    assert link not in client_for(shop.alice).get(reverse("orders:my_work")).content


# --- the charts ---------------------------------------------------------------------------------------


def test_charts_escape_labels_and_count_marks():
    svg = charts.line_chart(
        ["<b>1", "2"], [charts.Series("a&b", [1.0, None]), charts.Series("c", [2.0, 3.0])], label="x<y"
    )
    assert "<b>" not in svg and "&lt;b&gt;1" in svg and "a&amp;b" in svg
    assert 'data-points="3"' in svg and svg.count('class="point') == 3
    grid = charts.heatmap(["r"], ["c1", "c2"], [[charts.Cell(0.5, "50%", "<script>"), None]], label="grid")
    assert 'data-cells="1"' in grid and "<script>" not in grid
    assert charts.axis(7400) == (8000, 2000) and charts.axis(230) == (300, 100) and charts.axis(2) == (2, 0.5)
    assert charts.compact(1_234_567) == "1.2M" and charts.compact(45_300) == "45.3k"
