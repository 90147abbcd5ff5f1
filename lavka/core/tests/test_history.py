import subprocess
import sys

import pytest
from django.db import connection

from lavka.core.history import verify_chain
from lavka.core.models import HistoryRecord
from lavka.customers.actions import CustomerData, create_customer, update_customer


@pytest.fixture
def some_history(shop):
    actor = shop.actor(shop.alice)
    customer = create_customer(
        shop.site, CustomerData(first_name="Иван", phones=["+79161234567"]), actor=actor
    )
    for name in ("Пётр", "Павел", "Фёдор"):
        update_customer(customer, CustomerData(first_name=name), actor=actor)
    return list(HistoryRecord.objects.order_by("id"))


def test_chain_verifies(some_history):
    checked, problem = verify_chain()
    assert problem is None and checked == len(some_history) >= 5


def test_ids_are_consecutive_and_linked(some_history):
    assert [r.id for r in some_history] == list(range(1, len(some_history) + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(some_history, some_history[1:], strict=False))


def test_records_cannot_be_edited_or_deleted_through_the_orm(some_history):
    record = some_history[2]
    record.new_value = "forged"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(PermissionError):
        HistoryRecord.objects.filter(pk=record.pk).update(new_value="forged")
    with pytest.raises(PermissionError):
        HistoryRecord.objects.all().delete()


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_raw_sql_alteration_is_detected_and_named(some_history):
    victim = some_history[3]
    _raw("UPDATE core_historyrecord SET new_value = %s WHERE id = %s", ['"Злоумышленник"', victim.id])
    _checked, problem = verify_chain()
    assert problem is not None and problem.record_id == victim.id and "altered" in problem.reason


def test_raw_sql_removal_is_detected(some_history):
    victim = some_history[2]
    _raw("DELETE FROM core_historyrecord WHERE id = %s", [victim.id])
    _checked, problem = verify_chain()
    assert problem is not None and problem.record_id == victim.id


def test_removing_the_last_record_is_detected(some_history):
    _raw("DELETE FROM core_historyrecord WHERE id = %s", [some_history[-1].id])
    _checked, problem = verify_chain()
    assert problem is not None


def test_rewriting_a_record_with_a_recomputed_hash_breaks_the_next_link(some_history):
    from lavka.core.history import _digest

    victim = some_history[1]
    victim.actor_name = "someone else"
    _raw(
        "UPDATE core_historyrecord SET actor_name = %s, hash = %s WHERE id = %s",
        [victim.actor_name, _digest(victim), victim.id],
    )
    _checked, problem = verify_chain()
    assert problem is not None and problem.record_id == some_history[2].id


@pytest.mark.slow
def test_audit_verify_command_on_a_real_database(tmp_path):
    """`lavka audit verify` passes, then fails naming the record after a raw SQL edit."""
    import sqlite3

    env = {
        "LAVKA_VAR_DIR": str(tmp_path),
        "LAVKA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PATH": "/usr/bin:/bin",
    }
    lavka = [sys.executable, "-m", "lavka.cli"]
    subprocess.run([*lavka, "migrate"], env=env, check=True, timeout=120)
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='lavka.settings'; django.setup();"
        "from lavka.core.models import Site; from lavka.core.actor import Actor;"
        "from lavka.customers.actions import CustomerData, create_customer, update_customer;"
        "s=Site.objects.create(code='s', name='S');"
        "c=create_customer(s, CustomerData(first_name='A', phones=['+79161234567']), actor=Actor.system());"
        "update_customer(c, CustomerData(first_name='B'), actor=Actor.system())"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    ok = subprocess.run([*lavka, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        db.execute("UPDATE core_historyrecord SET old_value = '\"Z\"' WHERE id = 3")
    bad = subprocess.run([*lavka, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "history record 3" in bad.stderr
