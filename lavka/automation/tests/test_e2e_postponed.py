"""Acceptance, with real processes: a rule's "wait" outlives a restart of every process and goes on once,
on time (within the scheduler's tick)."""

from __future__ import annotations

import datetime
import os
import signal
import sys
from pathlib import Path

import pytest

from lavka.core.tests.processes import Lavka, free_port, scratch_database, wait_until

pytestmark = pytest.mark.slow

ORDERS = 20
TICK = 2
SEED = f"""
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
django.setup()
from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.core.actor import Actor
from lavka.core.testing import make_shop
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, create_order

shop = make_shop()
actor = Actor.system("e2e")
rule = save_rule(None, RuleData(name="follow up", trigger="orders.created", actions=[
    ("wait", {{"minutes": 1, "recheck": 'order.status == "new"'}}),
    ("add_tag", {{"tag": "followed-up"}}),
]), actor=actor)
set_rule_active(rule, True, actor=actor)
for n in range({ORDERS}):
    create_order(shop.site, OrderData(new_customer=CustomerData(first_name=f"Buyer {{n}}"),
                 items=[ItemData(offer_id=shop.tea.pk)]), actor=actor)
"""


@pytest.fixture
def lavka(tmp_path: Path):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path, LAVKA_AUTOMATION_TICK_SECONDS=str(TICK), LAVKA_WORKER_POLL_SECONDS="0.2")
        try:
            lavka.migrate()
            lavka.run([sys.executable, "-c", SEED], timeout=300)
            yield lavka
        finally:
            lavka.kill_all()


def _moments(value: object) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromisoformat(str(value)).replace(tzinfo=datetime.UTC)


def test_a_wait_survives_a_restart_of_every_process_and_goes_on_once_on_time(lavka: Lavka) -> None:
    db = lavka.db
    waiting = "SELECT count(*) FROM automation_postponedstep WHERE done_at IS NULL"
    server = lavka.start("serve", "--port", str(free_port()))  # web and worker in one process
    worker = lavka.start("worker", "--name", "second")
    wait_until(lambda: db.scalar(waiting) == ORDERS, timeout=120, what="every run to start waiting")

    for process in (server, worker):  # everything dies at once, long before the waits are over
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert db.scalar(waiting) == ORDERS
    assert db.scalar("SELECT count(*) FROM customers_customer_tags") == 0

    lavka.start("serve", "--port", str(free_port()))
    lavka.start("worker", "--name", "third")
    wait_until(lambda: db.scalar(waiting) == 0, timeout=180, what="the waits to be over")

    steps = db.rows("SELECT due_at, done_at FROM automation_postponedstep")
    assert len(steps) == ORDERS
    for due, done in steps:
        late = (_moments(done) - _moments(due)).total_seconds()
        assert 0 <= late <= TICK + 5, f"went on {late:.1f} s after it was due"
    tags = db.rows(
        "SELECT ct.customer_id, count(*) FROM customers_customer_tags ct"
        " JOIN customers_tag t ON t.id = ct.tag_id WHERE t.name = 'followed-up' GROUP BY ct.customer_id"
    )
    assert len(tags) == ORDERS and {count for _customer, count in tags} == {1}
    assert db.scalar("SELECT count(*) FROM automation_rulerun WHERE outcome = 'done'") == ORDERS
    assert db.scalar("SELECT count(*) FROM automation_actioneffect WHERE kind = 'add_tag'") == ORDERS
