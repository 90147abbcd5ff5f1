"""Acceptance, with real processes: 1,000 orders whose events match 3 rules; the worker is killed with
SIGKILL again and again while it works and started again; afterwards every (event, rule) has exactly
one run and every task a rule made exists exactly once. Twice: with workers polling the database, and
over the local Redis, where the killed worker takes its work from the streams and two workers then
share what is left."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lavka.core.tests.processes import Lavka, scratch_database, wait_until

pytestmark = pytest.mark.slow

ORDERS = 1000
RULES = 3
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
for name, actions in [
    ("call", [("create_task", {{"title": "Call {{{{ order.number }}}}", "performer": "manager"}})]),
    ("check", [("create_task", {{"title": "Check {{{{ order.number }}}}", "performer": "supervisor"}})]),
    ("tag", [("add_tag", {{"tag": "first-order"}})]),
]:
    rule = save_rule(None, RuleData(name=name, trigger="orders.created", condition="order.total_summ > 0",
                                    actions=actions), actor=actor)
    set_rule_active(rule, True, actor=actor)
for n in range({ORDERS}):
    data = OrderData(new_customer=CustomerData(first_name=f"Buyer {{n}}"),
                     items=[ItemData(offer_id=shop.tea.pk)], manager=shop.alice, manager_set=True)
    create_order(shop.site, data, actor=actor)
"""
UNDONE = "SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL"
SETTINGS = {"LAVKA_OUTBOX_LEASE_SECONDS": "3", "LAVKA_OUTBOX_BATCH": "20", "LAVKA_WORKER_POLL_SECONDS": "0.2"}


def runs(db) -> int:
    return db.scalar("SELECT count(*) FROM automation_rulerun")


REDIS_URL = os.environ.get("LAVKA_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["database", "redis"])
def transport(request) -> Iterator[dict[str, str]]:
    if request.param == "database":
        yield {}
        return
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis server answers at {REDIS_URL} ({exc}); start the local one")
    prefix = f"lavka-rules-e2e-{uuid.uuid4().hex[:12]}"
    yield {"LAVKA_REDIS_URL": REDIS_URL, "LAVKA_REDIS_PREFIX": prefix}
    client = redis.Redis.from_url(REDIS_URL)
    leftovers = client.keys(f"{prefix}:*")
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def lavka(tmp_path: Path, transport: dict[str, str]):
    with scratch_database(tmp_path) as db:
        lavka = Lavka(db, tmp_path, **SETTINGS, **transport)
        try:
            lavka.migrate()
            lavka.run([sys.executable, "-c", SEED], timeout=900)
            yield lavka
        finally:
            lavka.kill_all()


def test_killed_workers_leave_one_run_per_event_and_rule_and_one_task_each(lavka: Lavka, transport) -> None:
    db = lavka.db
    created = [row[0] for row in db.rows("SELECT id FROM core_outboxevent WHERE type = 'orders.created'")]
    assert len(created) == ORDERS
    over_redis = bool(transport)

    rng = random.Random(7)
    kills = 0
    for attempt in range(30):
        worker = lavka.start("worker", "--name", f"doomed-{attempt}")
        start = runs(db)
        wait_until(
            lambda start=start: runs(db) > start, timeout=60, what="the worker's progress", interval=0.02
        )
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        kills += 1
        if kills >= 6 or db.scalar(UNDONE) == 0:
            break
    assert kills >= 3
    assert runs(db) < ORDERS * RULES, "the kills came too late to land in the middle of the work"

    # The rest: one worker, or two sharing the load over Redis.
    finishers = [
        lavka.start("worker", "--name", name)
        for name in (["steady", "survivor"] if over_redis else ["survivor"])
    ]
    wait_until(lambda: db.scalar(UNDONE) == 0, timeout=600, what="every event to be processed")
    for finisher in finishers:
        assert lavka.terminate(finisher, timeout=30) == 0
    if over_redis:
        engine_workers = {
            row[0]
            for row in db.rows(
                "SELECT DISTINCT worker FROM core_receiverdelivery WHERE receiver = 'automation.engine'"
            )
        }
        assert {"steady", "survivor"} <= engine_workers, engine_workers

    per_pair = db.rows(
        "SELECT r.event_id, r.rule_id, count(*) FROM automation_rulerun r JOIN core_outboxevent e"
        " ON e.id = r.event_id WHERE e.type = 'orders.created' GROUP BY r.event_id, r.rule_id"
    )
    assert len(per_pair) == ORDERS * RULES
    assert {count for _event, _rule, count in per_pair} == {1}
    assert db.scalar("SELECT count(*) FROM automation_rulerun WHERE outcome <> 'done'") == 0

    tasks = db.rows("SELECT order_id, text, count(*) FROM tasks_task GROUP BY order_id, text")
    assert len(tasks) == ORDERS * 2
    assert {count for _order, _text, count in tasks} == {1}
    assert db.scalar("SELECT count(*) FROM automation_actioneffect") == ORDERS * RULES
    tags = db.scalar(
        "SELECT count(*) FROM customers_customer_tags ct JOIN customers_tag t ON t.id = ct.tag_id"
        " WHERE t.name = 'first-order'"
    )
    assert tags == ORDERS
