"""Settings for the end-to-end processes: Lavka's own, plus webhook timings from the environment (the
production settings do not read these, so the test passes them this way)."""

import os

from lavka.settings import *  # noqa: F403

for _name in (
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "TIMEOUT_SECONDS",
    "LEASE_SECONDS",
    "POLL_SECONDS",
):
    if f"LAVKA_WEBHOOK_{_name}" in os.environ:
        globals()[f"LAVKA_WEBHOOK_{_name}"] = float(os.environ[f"LAVKA_WEBHOOK_{_name}"])
