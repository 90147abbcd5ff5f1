"""`lavka apikey create|list|revoke`, run as the real command on a scratch database."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from lavka.accounts.scopes import API_SCOPES
from lavka.core.tests.processes import LAVKA, SEED, Database, Lavka, scratch_database

pytestmark = pytest.mark.slow


class Cli:
    def __init__(self, lavka: Lavka) -> None:
        self.lavka = lavka

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LAVKA, "apikey", *args],
            env=self.lavka.env(),
            cwd=self.lavka.directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    directory: Path = tmp_path_factory.mktemp("cli-apikey")
    with scratch_database(directory) as db:
        lavka = Lavka(db, directory)
        lavka.migrate()
        lavka.run([*SEED, "0"])  # the site "shop"
        yield Cli(lavka), db


def key_row(db: Database, key_id: int) -> dict:
    names = ["name", "prefix", "key_hash", "scopes", "site_access", "rate_limit", "revoked_at"]
    row = db.rows(f"SELECT {', '.join(names)} FROM accounts_apikey WHERE id = {key_id}")[0]
    return dict(zip(names, row, strict=True))


def json_list(value: object) -> list[str]:
    """A JSON column: text on SQLite, already decoded by psycopg on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else list(value)


def created_id(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"created API key (\d+)", result.stderr)
    assert match, result.stderr
    return int(match.group(1))


def test_create_defaults_to_every_scope_and_site_and_prints_the_key_once(store):
    cli, db = store
    result = cli("create", "Shop plugin")
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", raw), result.stdout
    row = key_row(db, created_id(result))
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr(row)
    assert row["prefix"] == raw[:6]
    assert sorted(json_list(row["scopes"])) == sorted(API_SCOPES)
    assert row["site_access"] == "access_full" and row["rate_limit"] is None
    listed = cli("list")
    assert listed.returncode == 0
    assert "Shop plugin" in listed.stdout and row["prefix"] in listed.stdout
    assert raw not in listed.stdout


def test_create_with_sites_scopes_and_rate_limit(store):
    cli, db = store
    result = cli(
        "create",
        "Woo",
        "--site",
        "shop",
        "--scope",
        "order_read",
        "order_write,customer_read",
        "--scope",
        "store_read",
        "--rate-limit",
        "5",
    )
    assert result.returncode == 0, result.stderr
    key_id = created_id(result)
    row = key_row(db, key_id)
    assert json_list(row["scopes"]) == ["order_read", "order_write", "customer_read", "store_read"]
    assert row["site_access"] == "access_selective" and row["rate_limit"] == 5
    sites = db.rows(
        "SELECT s.code FROM accounts_apikey_sites k JOIN core_site s ON s.id = k.site_id "
        f"WHERE k.apikey_id = {key_id}"
    )
    assert sites == [("shop",)]
    line = next(line for line in cli("list").stdout.splitlines() if "Woo" in line)
    assert "shop" in line and " 4 " in line and "active" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--site", "nope"], "unknown site: nope"),
        (["--scope", "order_read", "root_access"], "Unknown scope: root_access"),
        (["--rate-limit", "0"], "--rate-limit"),
    ],
)
def test_bad_input_exits_with_2_and_creates_nothing(store, args, message):
    cli, db = store
    before = db.scalar("SELECT COUNT(*) FROM accounts_apikey")
    result = cli("create", "bad", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and result.stdout == ""
    assert db.scalar("SELECT COUNT(*) FROM accounts_apikey") == before


def test_revoke(store):
    cli, db = store
    key_id = created_id(cli("create", "Old script"))
    result = cli("revoke", str(key_id))
    assert result.returncode == 0, result.stderr
    assert f"revoked API key {key_id}" in result.stdout
    assert key_row(db, key_id)["revoked_at"] is not None
    line = next(line for line in cli("list").stdout.splitlines() if "Old script" in line)
    assert "revoked" in line
    missing = cli("revoke", "987654")
    assert missing.returncode == 2 and "no API key with id 987654" in missing.stderr
    assert cli("revoke", "abc").returncode == 2  # argparse: not an id
