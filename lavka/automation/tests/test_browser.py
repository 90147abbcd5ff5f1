"""In a real Chromium against a real `lavka serve` (with its worker): a supervisor writes a rule in the
editor, a manager takes a big order, and the rule's task shows up in the supervisor's task list."""

from __future__ import annotations

import re
import time

from lavka.orders.tests.test_browser import (  # noqa: F401  (fixtures)
    browser,
    live_lavka,
    log_in,
    pick_offer,
    pytestmark,
)


def test_a_rule_written_in_the_editor_gives_the_supervisor_a_task(live_lavka, browser, tmp_path):  # noqa: F811
    base = live_lavka
    sveta = browser.new_context(locale="en-US").new_page()
    sveta.set_default_timeout(90_000)  # a loaded CI machine; nothing here waits on purpose
    log_in(sveta, base, "sveta")
    sveta.goto(f"{base}/rules/new/")
    sveta.fill("#id_name", "Big orders to the supervisor")
    sveta.select_option("#id_trigger", "orders.created")
    sveta.fill("#id_condition", "order.total_summ >= ")
    sveta.wait_for_selector("#condition-check [role=alert]")  # checked as it is typed: incomplete
    sveta.fill("#id_condition", "order.total_summ >= 10000")
    sveta.wait_for_selector("#condition-check .ok")
    # The first action row is a task already (changing its kind re-renders the row through htmx).
    assert sveta.input_value("#actions-0-kind") == "create_task"
    sveta.fill("input[name=actions-0-title]", "Check the big order {{ order.number }}")
    sveta.select_option("select[name=actions-0-performer]", "supervisor")
    sveta.click("#rule-form button[type=submit]")
    sveta.wait_for_url(re.compile(r".*/rules/\d+/$"))
    sveta.click("text=Enable")
    sveta.wait_for_load_state()
    assert "Rule enabled." in sveta.inner_text("main")

    alice = browser.new_context(locale="en-US").new_page()
    alice.set_default_timeout(90_000)
    log_in(alice, base, "alice")
    alice.goto(f"{base}/orders/new/")
    alice.fill("#id_last_name", "Орлова")
    alice.fill("#id_first_name", "Анна")
    alice.fill("#id_phone", "8 (916) 555-00-11")
    pick_offer(alice, 0, "Пуэр")
    alice.fill("#id_items-0-quantity", "30")  # 30 × 450.00 = 13,500.00
    alice.click("#order-form button[type=submit]")
    alice.wait_for_url(re.compile(r".*/orders/\d+/$"))
    number = re.search(r"\d+A", alice.inner_text("h1")).group(0)

    title = f"Check the big order {number}"
    deadline = time.monotonic() + 20
    while True:  # the worker inside `lavka serve` runs the rule within a moment
        sveta.goto(f"{base}/tasks/")
        if title in sveta.inner_text("main") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    sveta.screenshot(path=str(tmp_path / "supervisor-tasks.png"), full_page=True)
    assert title in sveta.inner_text("main")
