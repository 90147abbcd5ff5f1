"""The one seam for background work (DESIGN.md §7).

`enqueue("lavka.app.jobs.fn", *args, delay=…, key=…)` stores a job in the database queue; a worker
claims it like an outbox row. A `key` makes enqueueing idempotent. `periodic(seconds)` declares a job the
worker's scheduler runs on a fixed interval. Jobs are idempotent functions that take ids.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from lavka.core.events import nudge
from lavka.core.models import Job

log = logging.getLogger(__name__)
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
    return job


def periodic(seconds: float) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        periodic_jobs[job_path(fn)] = (seconds, fn)
        return fn

    return register


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def run_due(worker: str, limit: int = 20, lease_seconds: int = 300) -> int:
    now = timezone.now()
    free = Q(done_at__isnull=True, run_after__lte=now)
    free &= Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    lease = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        due = Job.objects.filter(free).order_by("run_after", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:limit])
        if ids:
            Job.objects.filter(free, id__in=ids).update(claimed_by=worker, lease_until=lease)
    for job in Job.objects.filter(id__in=ids, claimed_by=worker, lease_until=lease):
        try:
            _resolve(job.name)(*job.args)
        except Exception as exc:
            log.exception("job %s failed", job.name)
            backoff = timedelta(seconds=min(3600, 2 ** min(job.attempts + 1, 12)))
            Job.objects.filter(pk=job.pk).update(
                attempts=job.attempts + 1, last_error=repr(exc)[:2000], lease_until=None,
                run_after=timezone.now() + backoff,
            )
        else:
            Job.objects.filter(pk=job.pk).update(done_at=timezone.now(), lease_until=None)
    return len(ids)
