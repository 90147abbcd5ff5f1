"""The worker loop: outbox dispatch, queued jobs and periodic jobs. Runs as `lavka worker` or as a
thread inside `lavka serve`. SIGTERM stops it after the current batch; SIGKILL loses nothing, because
unfinished claims come back when their lease expires.

Without LAVKA_REDIS_URL the worker polls the database: it claims the oldest pending events and due jobs,
and when there are none it waits for an in-process nudge or the poll interval. With it, the worker
first polls the database the same way until a poll no longer fills a batch (what committed while no
worker ran, or while Redis was away, may be missing from the streams), then takes its work from Redis
(lavka.core.redisq): it blocks on the streams for up to the poll interval, claims exactly the ids it
reads, and every LAVKA_REDIS_SWEEP_SECONDS takes over what dead workers left and lets the fleet's
sweeper re-publish what Redis lost. When Redis fails it logs a warning, polls the database again, and
tries Redis again a few seconds later. Periodic jobs run in every worker either way: they are written
to be safe to run concurrently.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from django.db import close_old_connections

from lavka.core import dispatcher, jobs, redisq
from lavka.core.events import nudge
from lavka.core.models import Job

log = logging.getLogger(__name__)
# Jobs may be slow (an HTTP call): a worker takes few at a time, so that the others get their share.
JOB_BATCH = 10
# How many due jobs a worker polling the database claims at a time.
JOB_POLL = 20
# After Redis failed, how long a worker polls the database before it tries Redis again.
REDIS_RETRY_SECONDS = 5.0


class Worker:
    def __init__(
        self, name: str | None = None, poll_seconds: float | None = None, redis_url: str | None = None
    ) -> None:
        self.name = name or dispatcher.new_worker_name()
        self.poll_seconds = poll_seconds or settings.LAVKA_WORKER_POLL_SECONDS
        self.stopping = threading.Event()
        self._last_periodic: dict[str, float] = {}
        url = settings.REDIS_URL if redis_url is None else redis_url
        self.queue = redisq.Consumer(self.name, url) if url else None
        # True while the work comes from Redis; False while the database is polled (at first, and
        # whenever Redis fails).
        self.via_redis = False
        self._redis_failed = False
        self._retry_redis_at = 0.0
        self._next_upkeep = 0.0

    def stop(self, *_: object) -> None:
        self.stopping.set()
        # Called as a signal handler, this may interrupt the main thread inside nudge.wait()/clear(),
        # which holds nudge's non-reentrant lock: setting it from here would deadlock.
        threading.Thread(target=nudge.set, daemon=True).start()

    def run_periodic(self) -> None:
        now = time.monotonic()
        for name, (every, fn) in jobs.periodic_jobs.items():
            # The first tick runs every job: the monotonic clock may start near zero (a fresh boot).
            last = self._last_periodic.get(name)
            if last is None or now - last >= every:
                self._last_periodic[name] = now
                try:
                    fn()
                except Exception:
                    log.exception("periodic job %s failed", name)

    def tick(self, block: float = 0) -> int:
        """One round: a batch of events and of jobs, then the periodic jobs that are due; how many
        events and jobs (or, from Redis, stream entries) it handled. With Redis it may wait up to
        `block` seconds for something to arrive."""
        if self.via_redis:
            try:
                done = self._from_redis(block)
            except redis.RedisError as exc:
                self._lose_redis(exc)
                done = self._from_database()
        else:
            events_done, jobs_done = self._poll_database()
            done = events_done + jobs_done
            # Caught up when a poll no longer fills a batch: what is left is fresh, and on the streams.
            if self.queue is not None and events_done < settings.LAVKA_OUTBOX_BATCH and jobs_done < JOB_POLL:
                self._try_redis()
        self.run_periodic()
        return done

    def _from_database(self) -> int:
        return sum(self._poll_database())

    def _poll_database(self) -> tuple[int, int]:
        return dispatcher.dispatch_once(self.name), jobs.run_due(self.name, limit=JOB_POLL)

    def _try_redis(self) -> None:
        """The last poll did not fill a batch: go over to Redis, if it answers."""
        if time.monotonic() < self._retry_redis_at:
            return
        assert self.queue is not None
        try:
            self.queue.ensure_groups()
        except redis.RedisError as exc:
            self._lose_redis(exc)
            return
        self.via_redis, self._redis_failed, self._next_upkeep = True, False, 0.0
        log.info("worker %s takes its work from Redis (streams %s:*)", self.name, self.queue.prefix)

    def _lose_redis(self, exc: Exception) -> None:
        if not self._redis_failed:
            log.warning(
                "worker %s: Redis is unavailable (%r); polling the database until it answers", self.name, exc
            )
        self.via_redis, self._redis_failed = False, True
        self._retry_redis_at = time.monotonic() + REDIS_RETRY_SECONDS

    def _from_redis(self, block: float) -> int:
        assert self.queue is not None
        done = 0
        if time.monotonic() >= self._next_upkeep:
            done = self.upkeep()
        counts = {redisq.EVENTS: settings.LAVKA_OUTBOX_BATCH, redisq.JOBS: JOB_BATCH}
        return done + self._handle(self.queue.read(counts, block=0 if done else block))

    def upkeep(self) -> int:
        """Take over the entries of dead workers, and sweep (if no other worker just did)."""
        assert self.queue is not None
        self._next_upkeep = time.monotonic() + settings.LAVKA_REDIS_SWEEP_SECONDS
        taken = {
            redisq.EVENTS: self.queue.reclaim(
                redisq.EVENTS, settings.LAVKA_OUTBOX_LEASE_SECONDS, settings.LAVKA_OUTBOX_BATCH
            ),
            redisq.JOBS: self.queue.reclaim(redisq.JOBS, jobs.LEASE_SECONDS, JOB_BATCH),
        }
        done = self._handle(taken)
        self.queue.sweep(settings.LAVKA_REDIS_SWEEP_SECONDS)
        return done

    def _handle(self, entries: dict[str, list[redisq.Entry]]) -> int:
        """Claim the ids the entries carry, process what this worker got, acknowledge every entry once
        its work has committed (or at once if there was nothing for us)."""
        queue = self.queue
        assert queue is not None
        events_in = entries.get(redisq.EVENTS, [])
        if events_in:
            batch = dispatcher.claim_ids(self.name, [e.pk for e in events_in if e.pk is not None])
            if batch:
                dispatcher.process_batch(batch, self.name)
            queue.ack(redisq.EVENTS, [e.entry_id for e in events_in])
        jobs_in = entries.get(redisq.JOBS, [])
        if jobs_in:
            claimed = jobs.claim_ids(self.name, [e.pk for e in jobs_in if e.pk is not None])
            mine = {job.pk for job in claimed}
            queue.ack(redisq.JOBS, [e.entry_id for e in jobs_in if e.pk not in mine])

            def over(job: Job) -> None:
                # A slow job holds only its own entries: each is acknowledged when its job is over.
                queue.ack(redisq.JOBS, [e.entry_id for e in jobs_in if e.pk == job.pk])

            jobs.run_claimed(claimed, after_each=over)
        return len(events_in) + len(jobs_in)

    def run(self) -> None:
        log.info("worker %s started", self.name)
        while not self.stopping.is_set():
            failed = False
            try:
                busy = self.tick(block=self.poll_seconds if self.via_redis else 0)
            except Exception:
                log.exception("worker tick failed")
                busy, failed = 0, True
            finally:
                close_old_connections()
            # From Redis, the tick itself waited for work; after a failure, pause before the next try.
            if not busy and (failed or not self.via_redis):
                nudge.wait(self.poll_seconds)
                nudge.clear()
        log.info("worker %s stopped", self.name)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="lavka-worker", daemon=True)
        thread.start()
        return thread
