"""In a real Chromium against a real `lavka serve`: a supervisor builds a segment from two conditions,
watches the live count follow each of them, saves it and opens it again."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from lavka.core.tests.processes import Lavka, scratch_database
from lavka.orders.tests.test_browser import (  # noqa: F401  (fixtures)
    browser,
    free_port,
    log_in,
    pytestmark,
    wait_until_up,
)

# VIPs: Anna (sleeping), Boris (active), Gleb (no metrics yet); Vera is sleeping but no VIP.
SEED = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
django.setup()
from django.utils import timezone
from lavka.analytics.models import CustomerMetrics
from lavka.core.actor import Actor
from lavka.core.testing import make_shop
from lavka.customers.actions import CustomerData, create_customer

shop = make_shop()
for name, vip, stage in [("Анна", True, "sleeping"), ("Борис", True, "active"), ("Вера", False, "sleeping"),
                         ("Глеб", True, None)]:
    c = create_customer(shop.site, CustomerData(first_name=name, vip=vip), actor=Actor.system("seed"))
    if stage:
        CustomerMetrics.objects.create(customer=c, site=shop.site, lifecycle=stage, updated_at=timezone.now())
"""


@pytest.fixture
def live_shop(tmp_path: Path):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path)
        try:
            lavka.migrate()
            lavka.run([sys.executable, "-c", SEED])
            port = free_port()
            server = lavka.start("serve", "--port", str(port), "--no-worker")
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz")
            yield base
            assert lavka.terminate(server, timeout=30) == 0
        finally:
            lavka.kill_all()


def settled(page) -> None:
    """Wait until htmx has finished swapping and wired up the new builder: a select changed before its
    listeners are attached (htmx does that after the settle delay) would change nothing."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def test_a_supervisor_builds_saves_and_reopens_a_segment(live_shop, browser, tmp_path):  # noqa: F811
    base = live_shop
    page = browser.new_context(locale="en-US").new_page()
    page.set_default_timeout(90_000)  # a loaded CI machine; nothing here waits on purpose
    log_in(page, base, "sveta")
    page.goto(f"{base}/analytics/segments/")
    page.click("#new-segment")
    page.wait_for_url(re.compile(r".*/analytics/segments/new/$"))
    page.fill("#id_name", "Sleeping VIPs")
    settled(page)

    # First condition: VIP is yes. Choosing the field re-renders the builder with its operator and values.
    page.select_option("select[name='field@items.0']", "vip")
    page.wait_for_selector("select[name='value@items.0']")
    settled(page)
    page.select_option("select[name='value@items.0']", "true")
    page.wait_for_selector("#live-count[data-count='3']")

    # Second condition: lifecycle stage is "sleeping".
    page.click("#group-root > .seg-tools .add-condition")
    page.wait_for_selector("select[name='field@items.1']")
    settled(page)
    page.select_option("select[name='field@items.1']", "metrics.lifecycle")
    page.wait_for_selector("select[name='value@items.1'] option[value='sleeping']")
    settled(page)
    page.select_option("select[name='value@items.1']", ["sleeping"])
    page.wait_for_selector("#live-count[data-count='1']")
    assert "1 customer matches now" in page.inner_text("#live-count")
    page.screenshot(path=str(tmp_path / "segment-builder.png"), full_page=True)

    page.click("#save-segment")
    page.wait_for_url(re.compile(r".*/analytics/segments/\d+/$"))
    segment_url = page.url
    assert page.get_attribute("#segment-count", "data-count") == "1"
    assert "Анна" in page.inner_text("main") and "Борис" not in page.inner_text("main")
    page.screenshot(path=str(tmp_path / "segment-page.png"), full_page=True)

    # Open it again from the list: its definition, its count, and the builder with both conditions.
    page.goto(f"{base}/analytics/segments/")
    page.click("text=Sleeping VIPs")
    page.wait_for_url(segment_url)
    definition = page.inner_text("#segment-definition")
    assert "VIP is yes" in definition and "sleeping" in definition
    page.click("text=Edit")
    page.wait_for_selector("#live-count[data-count='1']")
    assert page.input_value("select[name='field@items.0']") == "vip"
    assert page.input_value("select[name='field@items.1']") == "metrics.lifecycle"
