"""The worker loop: outbox dispatch, queued jobs and periodic jobs. Runs as `lavka worker` or as a
thread inside `lavka serve`. SIGTERM stops it after the current batch; SIGKILL loses nothing, because
unfinished claims come back when their lease expires."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from lavka.core import dispatcher, jobs
from lavka.core.events import nudge

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str | None = None, poll_seconds: float | None = None) -> None:
        self.name = name or dispatcher.new_worker_name()
        self.poll_seconds = poll_seconds or settings.LAVKA_WORKER_POLL_SECONDS
        self.stopping = threading.Event()
        self._last_periodic: dict[str, float] = {}

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

    def tick(self) -> int:
        done = dispatcher.dispatch_once(self.name)
        done += jobs.run_due(self.name)
        self.run_periodic()
        return done

    def run(self) -> None:
        log.info("worker %s started", self.name)
        while not self.stopping.is_set():
            try:
                busy = self.tick()
            except Exception:
                log.exception("worker tick failed")
                busy = 0
            finally:
                close_old_connections()
            if not busy:
                nudge.wait(self.poll_seconds)
                nudge.clear()
        log.info("worker %s stopped", self.name)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="lavka-worker", daemon=True)
        thread.start()
        return thread
