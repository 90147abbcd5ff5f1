"""The one seam for background work (DESIGN.md §7).

`enqueue("lavka.app.jobs.fn", *args, delay=…, key=…)` stores a job in the database queue; a worker
claims it like an outbox row. A `key` makes enqueueing idempotent. `periodic(seconds)` declares a job the
worker's scheduler runs on a fixed interval. Jobs are idempotent functions that take ids.

A worker polling the database calls `run_due`; with LAVKA_REDIS_URL set, a job due now is also announced
on Redis when its transaction commits, and workers claim the ids they read with `claim_ids` and run them
with `run_claimed` (lavka.core.redisq). The Job row stays the queue: Redis only says what to look at.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from lavka.core import redisq
from lavka.core.events import nudge
from lavka.core.models import Job

log = logging.getLogger(__name__)
LEASE_SECONDS: int = settings.LAVKA_JOB_LEASE_SECONDS
periodic_jobs: dict[str, tuple[float, Callable[[], Any]]] = {}


def job_path(fn: Callable[..., Any] | str) -> str:
    return fn if isinstance(fn, str) else f"{fn.__module__}.{fn.__qualname__}"


def enqueue(
    fn: Callable[..., Any] | str, *args: Any, delay: timedelta | None = None, key: str | None = None
) -> Job:
    run_after = timezone.now() + (delay or timedelta())
    try:
        with transaction.atomic():
            job = Job.objects.create(name=job_path(fn), args=list(args), run_after=run_after, key=key)
    except IntegrityError:
        return Job.objects.get(key=key)
    transaction.on_commit(nudge.set)
    if not delay:  # a delayed job is announced by the sweeper once it is due
        redisq.publish_on_commit(redisq.JOBS, job)
    return job


def periodic(seconds: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        periodic_jobs[job_path(fn)] = (seconds, fn)
        return fn

    return register


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def run_due(worker: str, limit: int = 20, lease_seconds: int = LEASE_SECONDS) -> int:
    """Claim and run the jobs that are due (the database polling path); how many were claimed."""
    return run_claimed(claim_due(worker, limit, lease_seconds))


def claim_ids(worker: str, ids: Collection[int], lease_seconds: int = LEASE_SECONDS) -> list[Job]:
    """Lease those of `ids` that are due, not done and free (the Redis path); the others are done,
    running elsewhere, or waiting for their time or back-off."""
    ids = sorted({int(pk) for pk in ids})
    return claim_due(worker, len(ids), lease_seconds, ids) if ids else []


def claim_due(
    worker: str, limit: int = 20, lease_seconds: int = LEASE_SECONDS, ids: list[int] | None = None
) -> list[Job]:
    now = timezone.now()
    free = Q(done_at__isnull=True, run_after__lte=now)
    free &= Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if ids is not None:
        free &= Q(id__in=ids)
    lease = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        due = Job.objects.filter(free).order_by("run_after", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = list(due.values_list("id", flat=True)[:limit])
        if claimed:
            Job.objects.filter(free, id__in=claimed).update(claimed_by=worker, lease_until=lease)
    if not claimed:
        return []
    return list(
        Job.objects.filter(id__in=claimed, claimed_by=worker, lease_until=lease).order_by("run_after", "id")
    )


def run_claimed(claimed: list[Job], after_each: Callable[[Job], Any] | None = None) -> int:
    """Run jobs this worker has claimed, each on its own; `after_each` is told when one is over."""
    for job in claimed:
        run_one(job)
        if after_each is not None:
            after_each(job)
    return len(claimed)


def run_one(job: Job) -> None:
    try:
        _resolve(job.name)(*job.args)
    except Exception as exc:
        log.exception("job %s failed", job.name)
        backoff = timedelta(seconds=min(3600, 2 ** min(job.attempts + 1, 12)))
        Job.objects.filter(pk=job.pk).update(
            attempts=job.attempts + 1,
            last_error=repr(exc)[:2000],
            lease_until=None,
            run_after=timezone.now() + backoff,
        )
    else:
        Job.objects.filter(pk=job.pk).update(done_at=timezone.now(), lease_until=None)
