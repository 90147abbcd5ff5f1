"""Acceptance, with real processes: after `lavka analytics refresh` has scored a shop, an order created
through the API v5 and one created in the UI (a logged-in form POST with its CSRF token) update their
customers' metrics — order count, RFM scores and segment, lifecycle — within 5 seconds, with the worker
that `lavka serve` runs. Segment membership is a query over these metrics, so it is current too."""

from __future__ import annotations

import http.cookiejar
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from lavka.analytics import rfm
from lavka.core.tests.processes import Lavka, free_port, scratch_database, wait_until

pytestmark = pytest.mark.slow

LIMIT_SECONDS = 5.0
SEED = """
import django, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
django.setup()
from lavka.accounts.actions import create_api_key
from lavka.core.actor import Actor
from lavka.core.testing import make_shop
from lavka.analytics.tests.metrics_kit import customers, days_ago, load, row

shop = make_shop()
people = customers(shop.site, 30)
rows = []
for n, who in enumerate(people):
    for k in range(1 + n % 3):
        rows.append(row(shop, who, days_ago(10 + 5 * n + 40 * k), [(shop.tea, str(100 + 37 * n))]))
load(shop.site, rows)
_key, raw = create_api_key("e2e", actor=Actor.system("e2e"))
print(json.dumps({"key": raw, "api_customer": people[3].pk, "ui_customer": people[4].pk,
                  "tea": shop.tea.pk, "alice": shop.alice.pk}))
"""


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def served(tmp_path: Path):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path)
        try:
            lavka.migrate()
            seeded = json.loads(lavka.run([sys.executable, "-c", SEED]).strip().splitlines()[-1])
            refreshed = lavka.run([sys.executable, "-m", "lavka.cli", "analytics", "refresh"])
            assert "shop: 30 customers, 30 with orders" in refreshed, refreshed
            port = free_port()
            lavka.start("serve", "--port", str(port))
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _up(base), timeout=60, what="lavka serve")
            yield lavka, base, seeded
        finally:
            lavka.kill_all()


def metrics_of(db, customer_id: int) -> dict:
    columns = ("orders_count", "r_score", "f_score", "m_score", "rfm_segment", "lifecycle")
    found = db.rows(
        f"SELECT {', '.join(columns)} FROM analytics_customermetrics WHERE customer_id = {customer_id}"
    )
    return dict(zip(columns, found[0], strict=True)) if found else {}


def wait_for_order_count(db, customer_id: int, count: int, since: float) -> tuple[dict, float]:
    got = wait_until(
        lambda: (m := metrics_of(db, customer_id)).get("orders_count") == count and m,
        timeout=30,
        what=f"customer {customer_id} to show {count} orders",
        interval=0.02,
    )
    return got, time.monotonic() - since


def assert_current(got: dict, count: int) -> None:
    # Just ordered: the most recent buyer of the shop (R = 5 against the stored edges), repeat stage,
    # and the segment that those scores give.
    assert got["orders_count"] == count and got["r_score"] == 5 and got["lifecycle"] == "repeat"
    assert got["rfm_segment"] == rfm.segment_of(got["r_score"], got["f_score"], got["m_score"]) != ""


def test_orders_from_the_api_and_the_ui_update_their_customers_within_5_seconds(served) -> None:
    lavka, base, seeded = served
    db = lavka.db

    # API v5: orders/create for an existing customer.
    customer = seeded["api_customer"]
    before = metrics_of(db, customer)
    assert before["orders_count"] == 1 and before["lifecycle"] != "repeat"
    order = {"customer": {"id": customer}, "items": [{"offer": {"id": seeded["tea"]}, "quantity": 2}]}
    body = urllib.parse.urlencode({"site": "shop", "order": json.dumps(order)}).encode()
    request = urllib.request.Request(
        f"{base}/api/v5/orders/create", data=body, headers={"X-API-KEY": seeded["key"]}
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.read()
    got, seconds = wait_for_order_count(db, customer, 2, started)
    print(f"API order: metrics current after {seconds:.2f} s")
    assert seconds < LIMIT_SECONDS, f"API order: metrics current after {seconds:.2f} s"
    assert_current(got, 2)

    # UI: log in as a manager and post the order form, with the CSRF token from the cookie.
    customer = seeded["ui_customer"]
    before = metrics_of(db, customer)["orders_count"]
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def token() -> str:
        return next(cookie.value for cookie in jar if cookie.name == "csrftoken")

    browser.open(f"{base}/accounts/login/", timeout=10).read()
    login = {"username": "alice", "password": "correct-horse-42", "csrfmiddlewaretoken": token()}
    with browser.open(f"{base}/accounts/login/", urllib.parse.urlencode(login).encode(), timeout=10) as page:
        assert "/accounts/login/" not in page.url, "login failed"
    browser.open(f"{base}/orders/new/", timeout=10).read()
    form = {
        "csrfmiddlewaretoken": token(),
        "site": "shop",
        "customer": str(customer),
        "order_type": "eshop-individual",
        "order_method": "phone",
        "manager": str(seeded["alice"]),
        "delivery_type": "courier",
        "delivery_cost": "300",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "200",
        "items-0-offer": str(seeded["tea"]),
        "items-0-quantity": "1",
    }
    started = time.monotonic()
    with browser.open(f"{base}/orders/new/", urllib.parse.urlencode(form).encode(), timeout=10) as page:
        assert "/orders/new/" not in page.url, page.read().decode()[:2000]
    got, seconds = wait_for_order_count(db, customer, before + 1, started)
    print(f"UI order: metrics current after {seconds:.2f} s")
    assert seconds < LIMIT_SECONDS, f"UI order: metrics current after {seconds:.2f} s"
    assert_current(got, before + 1)
