"""API v5 throughput on PostgreSQL: `orders/create` from 8 clients, and the history feed by sinceId.

    LAVKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/api_v5.py

Makes a scratch database on that server (dropped at the end), migrates it, loads a demo store of
100,000 orders through the bulk import (so the order history holds 100,000+ records), starts
`lavka serve --no-worker` (8 threads) and one `lavka worker`, as production runs them, with the API rate
limit off, and then measures from this process (the load generator shares the machine):

- baseline: `GET /api/api-versions` from the same 8 clients (the cost of the API's envelope, key
  lookup and one round trip);
- create: `POST orders/create` with 3 items and a new customer, 8 clients, for `--seconds`;
- history: one client reading `orders/history` by moving sinceId, 100 records a call: first the
  records the create run made (about 12 per order, several per order on a page), then the whole feed
  from sinceId 0 (mostly imported orders: one creation record per order, each carrying its full order,
  the feed's most expensive page).

Targets: create ≥ 150 orders/s with p99 < 300 ms; the whole history ≥ 5,000 records/s. Exits 1 when
one is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lavka.core.tests.processes import Lavka, free_port, scratch_database, wait_until  # noqa: E402

SEED = [sys.executable, "-m", "lavka.integrations.tests.seed_api"]
DEMO = [sys.executable, "-m", "lavka.cli", "demo", "--no-serve"]
CREATE_TARGET = 150.0
P99_TARGET_MS = 300.0
HISTORY_TARGET = 5000.0


class Client:
    """One keep-alive connection, like an integration's HTTP client."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"X-API-KEY": key}

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict]:
        body = urllib.parse.urlencode(form).encode() if form else None
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load(port: int, key: str, clients: int, seconds: float, request) -> tuple[float, list[float], int]:
    """Run `request(client, n)` from `clients` threads for `seconds`; rate/s, latencies (ms), errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(clients)

    def run(worker: int) -> None:
        client = Client(port, key)
        mine: list[float] = []
        failed = 0
        n = 0
        start.wait()
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            if not request(client, worker, n):
                failed += 1
            mine.append((time.perf_counter() - began) * 1000)
            n += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=run, args=(w,)) for w in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return len(latencies) / elapsed, latencies, errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the demo store (history size)")
    args = parser.parse_args()
    if not os.environ.get("LAVKA_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench: set LAVKA_DATABASE_URL to a PostgreSQL server (…/postgres); SQLite is not benchmarked"
        )

    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as db:
        lavka = Lavka(db, Path(tmp), LAVKA_API_RATE_LIMIT="0", LAVKA_LOG_LEVEL="WARNING")
        try:
            started = time.monotonic()
            lavka.migrate()
            key = lavka.run(SEED).strip().splitlines()[-1]
            lavka.run(
                [*DEMO, "--orders", str(args.orders), "--customers", str(args.orders // 5)], timeout=1800
            )
            print(
                f"bench: store loaded ({args.orders} orders) in {time.monotonic() - started:.0f} s",
                flush=True,
            )
            port = free_port()
            web = lavka.start("serve", "--port", str(port), "--no-worker", "--threads", "8")
            worker = lavka.start("worker")
            wait_until(lambda: _up(port), timeout=60, what="lavka serve")
            return measure(port, key, args, db, {"web": web.pid, "worker": worker.pid})
        finally:
            lavka.kill_all() if os.environ.get("BENCH_SHOW_LOGS") else _quiet_kill(lavka)


def _quiet_kill(lavka: Lavka) -> None:
    for process in lavka.logs:
        if process.poll() is None:
            process.kill()
            process.wait()


def _up(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def read_history(port: int, key: str, since: int) -> tuple[int, float]:
    """Read `orders/history` from `since` to the end by moving sinceId; records read and records/s."""
    client = Client(port, key)
    records, began = 0, time.monotonic()
    while True:
        status, body = client.call("GET", f"/api/v5/orders/history?filter%5BsinceId%5D={since}&limit=100")
        if status != 200:
            raise SystemExit(f"bench: history answered {status}: {body}")
        history = body["history"]
        if not history:
            break
        records += len(history)
        since = history[-1]["id"]
    return records, records / (time.monotonic() - began)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time used so far by the named processes, by PostgreSQL's processes and by this one (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys([*pids, "postgres", "load generator"], 0.0)
    names = {pid: name for name, pid in pids.items()} | {os.getpid(): "load generator"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        name = names.get(int(entry.name)) or ("postgres" if command.startswith("postgres") else None)
        if name:
            used[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return used


def measure(port: int, key: str, args: argparse.Namespace, db, pids: dict[str, int]) -> int:
    def versions(client: Client, worker: int, n: int) -> bool:
        return client.call("GET", "/api/api-versions")[0] == 200

    runs = iter(range(1000))
    run = [0]

    def create(client: Client, worker: int, n: int) -> bool:
        order = {
            "externalId": f"bench-{run[0]}-{worker}-{n}",
            "firstName": f"Client {worker}-{n}",
            "lastName": "Bench",
            "phone": f"+79{run[0]:02d}{worker:02d}{n:05d}",
            "email": f"c{run[0]}.{worker}.{n}@example.com",
            "items": [
                {"offer": {"externalId": "offer-1"}, "quantity": 2},
                {"offer": {"externalId": "offer-2"}, "quantity": 1},
                {"offer": {"xmlId": "xml-3"}, "quantity": 1},
            ],
        }
        status, body = client.call(
            "POST", "/api/v5/orders/create", {"order": json.dumps(order), "site": "shop"}
        )
        return status == 201

    # Warm up both paths (imports, caches, connections).
    load(port, key, args.clients, 2, versions)
    run[0] = next(runs)
    load(port, key, args.clients, 2, create)
    run[0] = next(runs)

    base_rate, base_lat, base_err = load(port, key, args.clients, 5, versions)

    before_run = db.scalar("SELECT coalesce(max(id), 0) FROM core_historyrecord")
    cpu_before = cpu_seconds(pids)
    rate, lat, err = load(port, key, args.clients, args.seconds, create)
    cpu_used = {name: spent - cpu_before[name] for name, spent in cpu_seconds(pids).items()}
    created = rate * args.seconds
    backlog = db.scalar("SELECT count(*) FROM core_outboxevent WHERE processed_at IS NULL")
    made, made_rate = read_history(port, key, before_run)
    records, history_rate = read_history(port, key, 0)

    p99 = percentile(lat, 99)
    print()
    print(f"{'measure':<34}{'value':>12}{'target':>12}{'ratio':>9}{'vs base':>9}")
    print(f"{'baseline api-versions, req/s':<34}{base_rate:>12.1f}{'':>12}{'':>9}{1.0:>9.2f}")
    print(f"{'baseline p99, ms':<34}{percentile(base_lat, 99):>12.1f}")
    print(
        f"{'orders/create, orders/s':<34}{rate:>12.1f}{CREATE_TARGET:>12.0f}{rate / CREATE_TARGET:>9.2f}"
        f"{rate / base_rate:>9.2f}"
    )
    print(f"{'orders/create p50, ms':<34}{statistics.median(lat):>12.1f}")
    print(f"{'orders/create p99, ms':<34}{p99:>12.1f}{P99_TARGET_MS:>12.0f}{p99 / P99_TARGET_MS:>9.2f}")
    print(f"{'orders/create errors':<34}{err + base_err:>12d}")
    print(f"{'outbox backlog at the end':<34}{backlog:>12d}")
    print(f"{'CPU per order, ms':<34}{sum(cpu_used.values()) * 1000 / created:>12.1f}")
    for name, spent in cpu_used.items():
        print(f"{'  ' + name:<34}{spent * 1000 / created:>12.1f}")
    for label, count, per_second in (
        ("history of this run", made, made_rate),
        ("whole history", records, history_rate),
    ):
        print(f"{label + ', records':<34}{count:>12d}")
        print(
            f"{'  read at, records/s':<34}{per_second:>12.0f}{HISTORY_TARGET:>12.0f}"
            f"{per_second / HISTORY_TARGET:>9.2f}{per_second / base_rate:>9.2f}"
        )
    met = rate >= CREATE_TARGET and p99 < P99_TARGET_MS and history_rate >= HISTORY_TARGET and err == 0
    print("bench: all targets met" if met else "bench: TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
