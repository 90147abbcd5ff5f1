"""Load a large store into PostgreSQL through the bulk import: 300,000 customers and 1,000,000 orders.

    LAVKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bulk_load.py

The data is the demo store (lavka.demo) at scale, written by lavka.orders.bulk: validated rows, COPY into
the big tables, one history record per customer and per order in the hash chain (so `lavka audit verify`
passes afterwards), no events. Target: under 10 minutes including the final ANALYZE; exits 1 if missed.
Refuses to run on SQLite, and does nothing if the database already holds the demo store.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TextIO

TARGET_SECONDS = 600


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit(
            "bench: set LAVKA_DATABASE_URL to a PostgreSQL database (…/bench); SQLite is not benchmarked"
        )


def load(customers: int, orders: int, seed: int, out: TextIO) -> float | None:
    """Migrate and load; the seconds it took, or None when the store was there already."""
    from django.core.management import call_command
    from django.db import connection

    from lavka.demo import build_demo

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    # One process per site: the machine has two cores, and PostgreSQL takes concurrent writers.
    summary = build_demo(seed=seed, customers=customers, orders=orders, out=out, workers=2)
    if not summary.created:
        return None
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    setup()
    from django.db import connection

    print(f"bench: loading into {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    elapsed = load(args.customers, args.orders, args.seed, sys.stdout)
    if elapsed is None:
        print("bench: the database already holds the store; drop and create it to load again")
        return 0
    print(
        f"bench: loaded {args.customers} customers and {args.orders} orders, ANALYZE included, "
        f"in {elapsed:.0f} s; target {TARGET_SECONDS} s, ratio {elapsed / TARGET_SECONDS:.2f}"
    )
    return 0 if elapsed < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
