"""Background jobs (DESIGN.md §7): enqueueing with a key is idempotent, a job runs once, a failed job
comes back later, and periodic jobs run on their interval."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from lavka.core import jobs
from lavka.core.models import Job
from lavka.core.worker import Worker

CALLS: list[Any] = []


def record(*args: Any) -> None:
    CALLS.append(list(args))


def fail_once(key: str) -> None:
    CALLS.append(key)
    if CALLS.count(key) == 1:
        raise RuntimeError("the first try fails")


@pytest.fixture(autouse=True)
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


def make_due() -> None:
    """What the clock does to a delayed job, a failed job's back-off, or a dead worker's lease."""
    now = timezone.now()
    Job.objects.update(run_after=now, lease_until=now - timedelta(seconds=1))


def test_enqueue_with_a_key_is_idempotent(db) -> None:
    first = jobs.enqueue(record, 1, key="welcome:1")
    second = jobs.enqueue(record, 2, key="welcome:1")

    assert second.pk == first.pk
    assert list(Job.objects.values_list("name", "args")) == [("lavka.core.tests.test_jobs.record", [1])]
    jobs.enqueue(record, 3)
    jobs.enqueue(record, 3)
    assert Job.objects.count() == 3  # no key, no de-duplication


def test_run_due_runs_a_job_once(db, calls) -> None:
    job = jobs.enqueue(record, 7, "x")

    assert jobs.run_due("w1") == 1
    assert jobs.run_due("w2") == 0

    assert calls == [[7, "x"]]
    job.refresh_from_db()
    assert job.done_at is not None
    assert job.claimed_by == "w1"
    assert job.lease_until is None


def test_a_delayed_job_waits_for_its_time(db, calls) -> None:
    jobs.enqueue(record, 1, delay=timedelta(minutes=5))
    assert jobs.run_due("w1") == 0

    make_due()
    assert jobs.run_due("w1") == 1
    assert calls == [[1]]


def test_a_failing_job_is_retried_later_with_a_back_off(db, calls) -> None:
    job = jobs.enqueue(fail_once, "k")
    before = timezone.now()

    assert jobs.run_due("w1") == 1
    job.refresh_from_db()
    assert job.done_at is None
    assert job.attempts == 1
    assert "the first try fails" in job.last_error
    assert job.run_after >= before + timedelta(seconds=2)
    assert job.lease_until is None
    assert jobs.run_due("w1") == 0  # backing off

    make_due()
    assert jobs.run_due("w2") == 1
    job.refresh_from_db()
    assert job.done_at is not None
    assert calls == ["k", "k"]


def test_a_claimed_job_waits_for_its_lease(db, calls) -> None:
    jobs.enqueue(record, 1)
    # A worker claimed it and died before running it.
    Job.objects.update(claimed_by="dead", lease_until=timezone.now() + timedelta(minutes=5))
    assert jobs.run_due("w1") == 0

    make_due()
    assert jobs.run_due("w1") == 1
    assert calls == [[1]]


@pytest.fixture
def clock(monkeypatch):
    """The worker's monotonic clock, on a machine that booted five seconds ago."""
    fake = SimpleNamespace(now=5.0)
    monkeypatch.setattr("lavka.core.worker.time", SimpleNamespace(monotonic=lambda: fake.now))
    return fake


@pytest.fixture
def periodic():
    registered: list[str] = []

    def register(seconds: float, fn: Any) -> None:
        jobs.periodic(seconds)(fn)
        registered.append(jobs.job_path(fn))

    yield register
    for name in registered:
        del jobs.periodic_jobs[name]


def hourly() -> None:
    CALLS.append("hourly")


def every_ten_seconds() -> None:
    CALLS.append("ten")


def broken() -> None:
    raise RuntimeError("a bug in a periodic job")


def test_periodic_jobs_run_on_their_interval(clock, periodic, calls) -> None:
    periodic(3600, hourly)
    periodic(10, every_ten_seconds)
    worker = Worker(name="w1")

    worker.run_periodic()  # the first tick runs every periodic job
    assert calls == ["hourly", "ten"]
    for _ in range(3):
        clock.now += 9
        worker.run_periodic()
    assert calls == ["hourly", "ten", "ten"]
    clock.now += 3600
    worker.run_periodic()
    assert calls == ["hourly", "ten", "ten", "hourly", "ten"]


def test_a_failing_periodic_job_does_not_stop_the_others(clock, periodic, calls) -> None:
    periodic(60, broken)
    periodic(60, hourly)

    Worker(name="w1").run_periodic()

    assert calls == ["hourly"]


def test_a_worker_tick_runs_queued_jobs(db, calls) -> None:
    jobs.enqueue(record, 1)
    jobs.enqueue(record, 2, delay=timedelta(hours=1))

    assert Worker(name="w1").tick() == 1
    assert calls == [[1]]
