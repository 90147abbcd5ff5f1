"""Automation throughput and latency on PostgreSQL, with 100 enabled rules.

    LAVKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/automation.py

Makes a scratch database on that server (dropped at the end), migrates it and, from this process
(a Django client of that database), makes a shop with 500 orders and 100 rules spread over the order and
customer triggers the way a shop's rules would be: most conditions are false for most events (a total
threshold, a tag, the number of lines, a changed field), and one rule gives the order's manager a task
when the manager comment becomes "call me". Then, with `--workers` (2) `lavka worker` processes:

- baseline: N `orders.updated` events with no rule enabled (the dispatcher's own cost: claim, deliver,
  mark done; the engine is skipped);
- throughput: the same N events with the 100 rules enabled: events per second from the first claim to
  the last event done, all rules judged, every run recorded;
- latency: events at a steady 100 per second for `--seconds`, each of which the "call me" rule turns
  into a task; the time from the event's commit to its task's commit, p50 and p95.

Events are written to the outbox as the order actions write them (the same type and payload, with
the changed field's old and new values), so that the figures are the automation's, not the order
desk's. Workers poll every 0.1 s (LAVKA_WORKER_POLL_SECONDS). Targets: ≥ 500 events/s; p95 < 1 s at
100 events/s. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lavka.core.tests.processes import Lavka, scratch_database, wait_until  # noqa: E402

THROUGHPUT_TARGET = 500.0
P95_TARGET_S = 1.0
LATENCY_RATE = 100


def django_for(url: str) -> None:
    os.environ["LAVKA_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    import django

    django.setup()


def make_shop(orders: int) -> list[int]:
    from lavka.core.actor import Actor
    from lavka.core.testing import make_shop
    from lavka.customers.actions import CustomerData
    from lavka.orders.actions import ItemData, OrderData, create_order

    shop = make_shop()
    actor = Actor.system("bench")
    ids = []
    for n in range(orders):
        data = OrderData(
            new_customer=CustomerData(first_name=f"Client {n}"),
            items=[
                ItemData(offer_id=shop.tea.pk, quantity=1 + n % 5),
                ItemData(offer_id=shop.cup.pk, quantity=1),
            ],
            manager=shop.alice if n % 2 else shop.bob,
            manager_set=True,
        )
        ids.append(create_order(shop.site, data, actor=actor).pk)
    return ids


def make_rules() -> None:
    from lavka.automation.actions import RuleData, save_rule, set_rule_active
    from lavka.core.actor import Actor

    actor = Actor.system("bench")
    specs: list[tuple[str, str, list]] = []
    tag = [("add_tag", {"tag": "seen"})]
    for n in range(40):
        specs.append(
            ("orders.updated", f'changed("manager_comment") and order.total_summ >= {100_000 + n}', tag)
        )
    for n in range(20):
        specs.append(
            ("orders.updated", f'"vip-{n}" in order.customer.tags and count(order.items) > {n % 4}', tag)
        )
    for n in range(25):
        specs.append(
            ("orders.status_changed", f'new("status") == "complete" and order.total_summ > {n * 1000}', tag)
        )
    for n in range(14):
        specs.append(("customers.updated", f"customer.orders_count > {50 + n}", tag))
    specs.append(
        (
            "orders.updated",
            'changed("manager_comment") and new("manager_comment") == "call me"',
            [
                (
                    "create_task",
                    {"title": "Call about {{ order.number }}", "performer": "manager", "working_time": False},
                )
            ],
        )
    )
    for n, (trigger, condition, actions) in enumerate(specs):
        rule = save_rule(
            None,
            RuleData(name=f"bench {n}", trigger=trigger, condition=condition, actions=actions),
            actor=actor,
        )
        set_rule_active(rule, True, actor=actor)


def switch_rules(on: bool) -> None:
    from lavka.automation.actions import set_rule_active
    from lavka.automation.models import Rule
    from lavka.core.actor import Actor

    for rule in Rule.objects.all():
        set_rule_active(rule, on, actor=Actor.system("bench"))


def write_events(order_ids: list[int], count: int, comment: str) -> list[int]:
    """`orders.updated` events as update_order writes them, for random orders of the shop."""
    from django.db import transaction

    from lavka.core.actor import Actor
    from lavka.core.events import emit
    from lavka.orders.events import OrderUpdated
    from lavka.orders.models import Order

    customers = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "customer_id"))
    actor = Actor.system("bench")
    with transaction.atomic():
        rows = [
            emit(
                OrderUpdated(
                    pk, "shop", customers[pk], ["manager_comment"], {"manager_comment": [None, comment]}
                ),
                actor=actor,
            )
            for pk in random.choices(order_ids, k=count)
        ]
    return [row.pk for row in rows]


def pending(db) -> int:
    return db.scalar("SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL")


def drain_rate(lavka: Lavka, db, workers: int, count: int) -> float:
    """Start the workers on `count` waiting events; events/s from start to the last one done."""
    started = time.monotonic()
    procs = [lavka.start("worker", "--name", f"bench-{n}") for n in range(workers)]
    wait_until(lambda: pending(db) == 0, timeout=3600, what="the events to be processed", interval=0.05)
    elapsed = time.monotonic() - started
    for proc in procs:
        lavka.terminate(proc, timeout=60)
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--orders", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("LAVKA_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench: set LAVKA_DATABASE_URL to a PostgreSQL server (…/postgres); SQLite is not benchmarked"
        )

    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as db:
        lavka = Lavka(db, Path(tmp), LAVKA_LOG_LEVEL="WARNING", LAVKA_WORKER_POLL_SECONDS="0.1")
        try:
            lavka.migrate()
            django_for(db.url)
            began = time.monotonic()
            order_ids = make_shop(args.orders)
            make_rules()
            switch_rules(False)
            lavka.start("worker", "--name", "settle")  # the shop's own events, before measuring
            wait_until(lambda: pending(db) == 0, timeout=600, what="the setup's events", interval=0.2)
            lavka.terminate(next(iter(lavka.logs)), timeout=60)
            print(
                f"bench: {args.orders} orders and 100 rules ready in {time.monotonic() - began:.0f} s",
                flush=True,
            )

            write_events(order_ids, args.events, "note")
            base = drain_rate(lavka, db, args.workers, args.events)
            switch_rules(True)
            write_events(order_ids, args.events, "note")
            runs_before = db.scalar("SELECT count(*) FROM automation_rulerun")
            rate = drain_rate(lavka, db, args.workers, args.events)
            runs = db.scalar("SELECT count(*) FROM automation_rulerun") - runs_before

            latencies = measure_latency(lavka, db, order_ids, args)
        finally:
            lavka.kill_all() if os.environ.get("BENCH_SHOW_LOGS") else _quiet_kill(lavka)
            from django.db import connections

            connections.close_all()

    p50, p95 = statistics.median(latencies), _percentile(latencies, 95)
    print()
    print(f"{'measure':<40}{'value':>12}{'target':>12}{'ratio':>9}{'vs base':>9}")
    print(f"{'baseline: no rule enabled, events/s':<40}{base:>12.1f}{'':>12}{'':>9}{1.0:>9.2f}")
    print(
        f"{'100 rules enabled, events/s':<40}{rate:>12.1f}{THROUGHPUT_TARGET:>12.0f}"
        f"{rate / THROUGHPUT_TARGET:>9.2f}{rate / base:>9.2f}"
    )
    print(f"{'  rule runs recorded':<40}{runs:>12d}")
    print(f"{'event → task at 100/s, p50 s':<40}{p50:>12.3f}")
    print(f"{'event → task at 100/s, p95 s':<40}{p95:>12.3f}{P95_TARGET_S:>12.1f}{p95 / P95_TARGET_S:>9.2f}")
    print(f"{'  tasks made':<40}{len(latencies):>12d}")
    met = rate >= THROUGHPUT_TARGET and p95 < P95_TARGET_S
    print("bench: all targets met" if met else "bench: TARGET MISSED")
    return 0 if met else 1


def measure_latency(lavka: Lavka, db, order_ids: list[int], args: argparse.Namespace) -> list[float]:
    """100 "call me" events a second for `args.seconds`; seconds from each event's commit to its task's."""
    procs = [lavka.start("worker", "--name", f"latency-{n}") for n in range(args.workers)]
    time.sleep(2)  # the workers are up
    first = db.scalar("SELECT coalesce(max(id), 0) FROM core_outboxevent")
    stop = time.monotonic() + args.seconds
    tick = 1 / LATENCY_RATE
    next_at = time.monotonic()
    while time.monotonic() < stop:
        write_events(order_ids, 1, "call me")
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    wait_until(lambda: pending(db) == 0, timeout=600, what="the latency events", interval=0.1)
    for proc in procs:
        lavka.terminate(proc, timeout=60)
    rows = db.rows(
        "SELECT EXTRACT(EPOCH FROM t.created_at - e.created_at) FROM core_outboxevent e"
        " JOIN automation_rulerun r ON r.event_id = e.id"
        " JOIN automation_actioneffect a ON a.run_id = r.id AND a.kind = 'create_task'"
        " JOIN tasks_task t ON t.id = (a.result->>'task_id')::bigint"
        f" WHERE e.id > {first}"
    )
    return [float(row[0]) for row in rows]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _quiet_kill(lavka: Lavka) -> None:
    for process in lavka.logs:
        if process.poll() is None:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
