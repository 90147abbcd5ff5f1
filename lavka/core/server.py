"""`lavka serve`: waitress for the web, and the worker as a thread in the same process."""

from __future__ import annotations

import contextlib
import logging
import signal

from waitress import create_server

from lavka.core.worker import Worker
from lavka.wsgi import application

log = logging.getLogger(__name__)
WORKER_STOP_SECONDS = 30


def serve(host: str, port: int, *, with_worker: bool = True, threads: int = 8) -> int:
    worker = Worker() if with_worker else None
    worker_thread = worker.start_thread() if worker else None
    server = create_server(application, host=host, port=port, threads=threads, ident="lavka")

    def stop(*_: object) -> None:
        if worker:
            worker.stop()
        server.close()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"Serving on http://{host}:{port}/" + (" with a worker" if worker else ""), flush=True)
    with contextlib.suppress(SystemExit):
        server.run()
    if worker_thread:
        # Let the worker finish its batch; a batch cut short would only be re-claimed after its lease.
        worker_thread.join(WORKER_STOP_SECONDS)
    return 0
