"""Server-side time of the orders pages on a large store in PostgreSQL (the order desk's acceptance figures).

    LAVKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/orders_ui.py

Runs against that database as it is (no test database): if it holds no store yet, bench/bulk_load.py
loads one first (300,000 customers, 1,000,000 orders). Requests go through Django's test client in
this process, so the full middleware stack, the view, the queries and the template rendering are
timed, not the network. Logged in as the manager with the largest queue and as a supervisor, it times
after a warm-up: the orders list's first page, a search by phone written the way people type it
("8 (916) 123-45-67") and the cards of random orders the user may see; and, as the baseline of the
same run, /healthz through the same client (session and user lookup included). It prints p50, p95 and
max in ms, the p95 against the 150 ms target and against the baseline, and the queries per request at
20 and at 100 rows a page, which must be equal. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk_load import load, setup  # noqa: E402

TARGET_MS = 150.0


@dataclass
class Timing:
    user: str
    page: str
    times: list[float]
    queries: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.times, n=20, method="inclusive")[18]


def as_typed(e164: str) -> str:
    """+79161234567 → 8 (916) 123-45-67, the way a manager types a number read out on the phone."""
    n = e164[2:]
    return f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}"


def measure(client, urls: list[str], warmup: int, check: Callable[[str, bytes], bool] | None) -> list[float]:
    """Milliseconds per request, after `warmup` untimed ones; every answer must be 200 and pass `check`."""
    for url in urls[:warmup]:
        client.get(url)
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200 or (check and not check(url, response.content)):
            raise SystemExit(f"bench: {url} answered {response.status_code} without the expected order")
    return times


def query_count(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured)


def run_for(user, requests: int, warmup: int) -> tuple[list[Timing], bool]:
    from django.db.models import Q
    from django.test import Client
    from django.urls import reverse

    from lavka.customers.models import CustomerPhone
    from lavka.orders.models import Order

    client = Client()
    client.force_login(user)
    visible = Order.objects.visible_to(user)
    own = visible.filter(manager=user) if user.role == "manager" else visible  # their queue
    # Orders spread evenly over the user's whole history: the same sample on every run.
    rows = own.order_by("id").values_list("id", "number", "phone")
    sample = rows[:: max(own.count() // requests, 1)][:requests]
    listing = reverse("orders:list")

    def latest(phone: str) -> str:
        """The order a search for this phone must show first (the list is newest first)."""
        customers = list(CustomerPhone.objects.filter(number=phone).values_list("customer_id", flat=True))
        found = visible.filter(Q(phone=phone) | Q(customer_id__in=customers)).order_by("-created_at", "-id")
        return found.values_list("number", flat=True)[0]

    searches = [
        (f"{listing}?{urlencode({'q': as_typed(phone)})}", latest(phone)) for _pk, _n, phone in sample
    ]
    cards = [(reverse("orders:detail", args=[pk]), number) for pk, number, _phone in sample]
    expected = dict(searches + cards)

    def shows_order(url: str, content: bytes) -> bool:
        return expected[url].encode() in content

    timings = [
        Timing(user.username, "baseline /healthz", measure(client, ["/healthz"] * requests, warmup, None)),
        Timing(user.username, "orders list, page 1", measure(client, [listing] * requests, warmup, None)),
        Timing(
            user.username, "search by phone", measure(client, [u for u, _n in searches], warmup, shows_order)
        ),
        Timing(user.username, "order card", measure(client, [u for u, _n in cards], warmup, shows_order)),
    ]
    same = True
    for timing, url in ((timings[1], f"{listing}?"), (timings[2], f"{searches[0][0]}&")):
        small, large = (query_count(client, f"{url}per_page={n}") for n in (20, 100))
        timing.queries = f"{small} / {large}"
        same = same and small == large
    timings[0].queries = str(query_count(client, "/healthz"))
    timings[3].queries = str(query_count(client, cards[0][0]))
    return timings, same


def main() -> int:
    parser = argparse.ArgumentParser(description="Time the orders pages on a large PostgreSQL store.")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page and user")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--customers", type=int, default=300_000, help="when the store must be loaded first")
    parser.add_argument("--orders", type=int, default=1_000_000, help="when the store must be loaded first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    setup()
    from django.db.models import Count

    from lavka.accounts.models import User
    from lavka.orders.models import Order

    if not Order.objects.exists():
        print("bench: the database holds no store; loading one with bench/bulk_load.py")
        load(args.customers, args.orders, args.seed, sys.stdout)
    managers = User.objects.filter(role="manager").annotate(n=Count("orders")).order_by("-n")
    manager, supervisor = managers.first(), User.objects.filter(role="supervisor").first()
    print(
        f"bench: {Order.objects.count()} orders; manager {manager.username} has {manager.n} of them; "
        f"supervisor {supervisor.username}; {args.requests} requests each after {args.warmup} warm-up"
    )
    timings, equal = [], True
    for user in (manager, supervisor):
        found, same = run_for(user, args.requests, args.warmup)
        timings += found
        equal = equal and same
    print(
        f"\n{'user':<8} {'page':<22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95/150ms':>10} "
        f"{'p95/base':>9}  queries (20 / 100 rows)"
    )
    missed = []
    for timing in timings:
        base = next(t for t in timings if t.user == timing.user and t.page.startswith("baseline"))
        is_base = timing is base
        figures = f"{timing.p50:8.1f} {timing.p95:8.1f} {max(timing.times):8.1f}"
        ratios = f"{timing.p95 / TARGET_MS:10.2f} {timing.p95 / base.p95:9.1f}"
        print(f"{timing.user:<8} {timing.page:<22} {figures} {ratios}  {timing.queries}")
        if not is_base and timing.p95 > TARGET_MS:
            missed.append(f"{timing.user}: {timing.page} p95 {timing.p95:.0f} ms > {TARGET_MS:.0f} ms")
    if not equal:
        missed.append("the query count changes with the page size")
    for line in missed:
        print(f"MISSED: {line}")
    print("bench: all targets met" if not missed else "bench: targets missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
