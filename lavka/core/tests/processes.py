"""Real `lavka` processes for the end-to-end tests (DESIGN.md §11).

`scratch_database` makes a database that the processes share with the test: a SQLite file, or a fresh
PostgreSQL database (dropped afterwards) when the test session itself runs on PostgreSQL. `Lavka` runs
commands against it and kills whatever is still running at the end. The test reads the results with
plain SQL, so it needs no Django connection to that database.

`python -m lavka.core.tests.processes seed N` creates a site, a manager, an offer and N orders, each for a
new customer, through the real action path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import dj_database_url

LAVKA = [sys.executable, "-m", "lavka.cli"]
SEED = [sys.executable, "-m", "lavka.core.tests.processes", "seed"]
T = TypeVar("T")


class Database:
    """The scratch database, read with plain SQL in autocommit mode."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgres://", "postgresql://"))
        self._connection: Any = None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self._connection is None:
            if self.postgres:
                import psycopg

                self._connection = psycopg.connect(self.url, autocommit=True)
            else:
                self._connection = sqlite3.connect(dj_database_url.parse(self.url)["NAME"], timeout=30,
                                                   isolation_level=None)
        return list(self._connection.execute(sql).fetchall())

    def scalar(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _server_params(session: dict[str, Any], dbname: str) -> dict[str, Any]:
    params = {"dbname": dbname, "user": session["USER"], "password": session["PASSWORD"],
              "host": session["HOST"], "port": session["PORT"]}
    return {key: value for key, value in params.items() if value}


@contextlib.contextmanager
def scratch_database(directory: Path) -> Iterator[Database]:
    session_url = os.environ.get("LAVKA_DATABASE_URL", "")
    if not session_url.startswith(("postgres://", "postgresql://")):
        db = Database(f"sqlite:///{directory / 'db.sqlite3'}")
        try:
            yield db
        finally:
            db.close()
        return

    import psycopg
    from psycopg import sql

    name = f"lavka_e2e_{uuid.uuid4().hex[:12]}"
    server = _server_params(dj_database_url.parse(session_url), "postgres")
    with psycopg.connect(**server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = Database(urlsplit(session_url)._replace(path=f"/{name}").geturl())
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(**server, autocommit=True) as admin:
            # FORCE: a killed worker's backend may not have noticed yet that its client is gone.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Lavka:
    """Starts `lavka` commands on one database, each logging to its own file; kills them at the end."""

    def __init__(self, db: Database, directory: Path, **settings: str) -> None:
        self.db = db
        self.directory = directory
        self.settings = settings
        self.logs: dict[subprocess.Popen[bytes], Path] = {}

    def env(self) -> dict[str, str]:
        # Nothing from the test session's LAVKA_* settings leaks into the processes.
        env = {key: value for key, value in os.environ.items() if not key.startswith("LAVKA_")}
        env.update(LAVKA_DATABASE_URL=self.db.url, LAVKA_VAR_DIR=str(self.directory),
                   LAVKA_SECRET_KEY="e2e-not-secret", LAVKA_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        env.update(self.settings)
        return env

    def run(self, argv: list[str], timeout: float = 120) -> str:
        done = subprocess.run(argv, env=self.env(), cwd=self.directory, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode:
            raise AssertionError(f"{argv} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def migrate(self) -> None:
        self.run([*LAVKA, "migrate"])

    def seed(self, orders: int) -> None:
        self.run([*SEED, str(orders)])

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        path = self.directory / f"{len(self.logs)}-{args[0]}.log"
        with path.open("wb") as log:
            process = subprocess.Popen([*LAVKA, *args], env=self.env(), cwd=self.directory, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.logs[process] = path
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[process].read_text(errors="replace")

    def terminate(self, process: subprocess.Popen[bytes], timeout: float) -> int:
        """SIGTERM, and the exit code once it has stopped (fails if it takes longer than `timeout`)."""
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            message = f"{process.args} ignored SIGTERM for {timeout} s:\n{self.log(process)}"
            raise AssertionError(message) from exc

    def kill_all(self) -> None:
        for process in self.logs:
            if process.poll() is None:
                process.kill()
                process.wait()
        for process in self.logs:
            # Shown by pytest when the test fails.
            print(f"--- {process.args} (exit {process.returncode})\n{self.log(process)[-3000:]}")


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(orders: int) -> None:
    from decimal import Decimal

    from lavka.accounts.actions import create_user
    from lavka.catalog.models import Offer, Product
    from lavka.core.actor import Actor
    from lavka.core.models import Site
    from lavka.customers.actions import CustomerData
    from lavka.orders.actions import ItemData, OrderData, create_order

    site = Site.objects.create(code="shop", name="Shop", order_suffix="A")
    manager = create_user("alice", role="manager", password="correct-horse-42", actor=Actor.system("e2e"),
                          site_codes=[site.code])
    product = Product.objects.create(site=site, name="Tea")
    offer = Offer.objects.create(product=product, sku="TEA-1", name="Tea", price=Decimal("450.00"))
    actor = Actor.for_user(manager)
    for n in range(orders):
        customer = CustomerData(first_name=f"Customer {n}", phones=[f"+7 912 {n:07d}"])
        items = [ItemData(offer_id=offer.pk, quantity=1 + n % 3)]
        create_order(site, OrderData(new_customer=customer, items=items, manager=manager, manager_set=True),
                     actor=actor)


if __name__ == "__main__":
    import django

    command, count = sys.argv[1:]
    if command != "seed":
        sys.exit(f"unknown command {command!r}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    django.setup()
    seed(int(count))
