"""In a real Chromium against a real `lavka serve` holding the demo store (`lavka demo`, then
`lavka analytics refresh`): the supervisor opens the owner's dashboard and sees its charts drawn — trend
lines with points, a cohort heatmap with cells, the RFM grid, the lifecycle funnel — switches to one site
(htmx swaps the body), and opens the backtest and thresholds pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lavka.core.tests.processes import LAVKA, Lavka, free_port, scratch_database
from lavka.orders.tests.test_browser import CHROMIUM_ARGS, wait_until_up

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def demo_lavka(tmp_path: Path):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path)
        try:
            lavka.migrate()
            lavka.run([*LAVKA, "demo", "--no-serve", "--customers", "300", "--orders", "3000"], timeout=600)
            lavka.run([*LAVKA, "analytics", "refresh"], timeout=600)
            port = free_port()
            server = lavka.start("serve", "--port", str(port), "--no-worker")
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz")
            yield base
            assert lavka.terminate(server, timeout=30) == 0
        finally:
            lavka.kill_all()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_the_dashboard_draws_its_charts_on_the_demo_store(demo_lavka, browser, tmp_path):
    from lavka.demo import DEMO_PASSWORD

    base = demo_lavka
    page = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "sveta")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/orders/my/"))

    page.click("nav.mainnav >> text=Dashboard")
    page.wait_for_url(re.compile(r".*/analytics/$"))
    page.wait_for_selector("#tile-revenue")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # A year of the demo's orders: money in the tiles, points on both trend lines (12 months this
    # period, 12 the period before), cells in the cohort heatmap.
    assert re.search(r"\d", page.inner_text("#tile-revenue .value"))
    assert page.inner_text("#tile-orders .value") not in ("0", "—")
    for chart in ("#trend-revenue", "#trend-orders"):
        assert page.locator(f"{chart} svg.line-chart circle.point.current").count() >= 12
        assert page.locator(f"{chart} svg.line-chart polyline.line.current").count() >= 1
        assert page.locator(f"{chart} svg.line-chart circle.point.previous").count() >= 1
    cells = page.locator("#cohorts svg.heatmap g.cell")
    assert cells.count() >= 12 + 11  # twelve cohorts with their size, and retention after the first
    assert page.locator("#cohorts svg.heatmap g.cell rect").first.bounding_box()["width"] > 0
    # The customer metrics of the refresh: a full 5 × 5 RFM grid and the five lifecycle stages.
    assert page.locator("#rfm svg.heatmap g.cell").count() == 25
    assert page.locator("#lifecycle svg.bars g.bar").count() == 5
    assert page.locator("#sources table tbody tr").count() >= 3  # yandex, google, vk, direct, …
    assert "yandex" in page.inner_text("#sources")

    # One site: htmx replaces the body; the address follows.
    page.select_option("select[name=site]", "tea")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*site=tea.*"))
    page.wait_for_function("document.querySelectorAll('#cohorts svg g.cell').length > 0")
    assert "Lifecycle" in page.inner_text("#dashboard-body")

    page.click("nav.tabs >> text=Model backtest")
    page.wait_for_url(re.compile(r".*/analytics/backtest/.*"))
    body = page.inner_text("main")
    assert "Not enough data" in body or page.locator("#backtest svg.line-chart circle.point").count() > 0
    page.click("nav.tabs >> text=Lifecycle thresholds")
    page.wait_for_selector("#thresholds-form input[name=churned_days]")
    assert int(page.input_value("#thresholds-form input[name=churned_days]")) > 0
