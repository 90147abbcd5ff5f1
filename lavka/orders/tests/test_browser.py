"""In a real Chromium against a real `lavka serve`: a manager takes an order for a new customer, moves it
on and sees it in the history; another manager cannot find it."""

from __future__ import annotations

import re
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lavka.core.tests.processes import Lavka, scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEED = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lavka.settings'); django.setup();"
    "from lavka.core.testing import make_shop; make_shop()"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def live_lavka(tmp_path: Path):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path)
        try:
            lavka.migrate()
            lavka.run([sys.executable, "-c", SEED])
            port = free_port()
            server = lavka.start("serve", "--port", str(port))
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


def log_in(page, base: str, username: str) -> None:
    from lavka.core.testing import PASSWORD

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/orders/my/"))


def pick_offer(page, row: int, query: str) -> None:
    prefix = f"items-{row}"
    page.fill(f"#{prefix}-offer-q", query)
    page.locator(f"#{prefix}-results button.pick").first.click()
    page.wait_for_function(f"document.getElementById('id_{prefix}-offer').value !== ''")


def test_manager_takes_an_order_and_another_cannot_see_it(live_lavka, browser, tmp_path):
    base = live_lavka
    alice = browser.new_context(locale="en-US").new_page()
    log_in(alice, base, "alice")

    alice.goto(f"{base}/orders/new/")
    alice.fill("#id_last_name", "Соколова")
    alice.fill("#id_first_name", "Мария")
    alice.fill("#id_phone", "8 (916) 555-12-34")
    pick_offer(alice, 0, "Пуэр")
    alice.fill("#id_items-0-quantity", "2")
    alice.click("#add-line")
    alice.wait_for_selector("#items-1-offer-q")
    pick_offer(alice, 1, "Чашка")
    alice.fill("#id_items-1-quantity", "3")
    alice.click("#order-form button[type=submit]")
    alice.wait_for_url(re.compile(r".*/orders/\d+/$"))
    order_url = alice.url
    header = alice.inner_text("h1")
    number = re.search(r"\d+A", header).group(0)
    body = alice.inner_text("main")
    assert "Соколова" in body and "Пуэр 100 г" in body and "Чашка" in body
    assert "1 899,99" in body or "1899.99" in body or "1,899.99" in body  # 2 × 450.00 + 3 × 333.33

    alice.select_option("#status select[name=status]", "availability-confirmed")
    alice.click("#status button[type=submit]")
    alice.wait_for_load_state()
    history = alice.inner_text("ol.timeline li:first-child")
    assert "availability-confirmed" in history or "Наличие подтверждено" in history
    assert "alice" in history.lower()
    alice.screenshot(path=str(tmp_path / "order-card.png"), full_page=True)

    bob = browser.new_context(locale="en-US").new_page()
    log_in(bob, base, "bob")
    bob.goto(f"{base}/orders/?q={number}")
    assert number not in bob.inner_text("main")
    bob.goto(f"{base}/orders/?q=%2B79165551234")
    assert number not in bob.inner_text("main")
    response = bob.goto(order_url)
    assert response.status == 404
