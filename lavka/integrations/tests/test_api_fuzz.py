"""Schemathesis fuzzes every operation of the OpenAPI document served by a real `lavka serve`.

Checks: no 5xx; every answer is JSON in the retailCRM envelope (`success: false` and a string
`errorMsg` for status >= 400). Entity fields (`format: json`) get JSON built from retailCRM field names,
so the fuzz reaches the endpoints' validation rather than stopping at "not JSON".

Every operation runs twice: as documented, and from a loosened copy (see `loosened`). The run is seeded
(`LAVKA_FUZZ_SEED`, "random" for a fresh one) so that CI is repeatable; `LAVKA_FUZZ_EXAMPLES` caps the
examples per run, which shrink to fit the time budget as endpoints are added.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from lavka.core.tests.processes import LAVKA, Lavka, free_port, scratch_database, wait_until
from lavka.integrations.api_v5.openapi import FORM
from lavka.integrations.api_v5.router import endpoints

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LAVKA_FUZZ_EXAMPLES", "15"))
MIN_EXAMPLES = 3
SEED = os.environ.get("LAVKA_FUZZ_SEED", "20240501")
BUDGET_SECONDS = 120  # for the fuzz itself; fewer examples per operation rather than a longer run

# Field names the retailCRM entities use, so that generated entities hit real validation paths.
FIELDS = [
    "id", "externalId", "number", "site", "status", "items", "offer", "xmlId", "quantity", "initialPrice",
    "discountManualAmount", "customer", "contact", "company", "type", "firstName", "lastName", "patronymic",
    "phone", "phones", "email", "createdAt", "payments", "amount", "paidAt", "delivery", "code", "cost",
    "address", "text", "name", "active", "orderType", "orderMethod", "customFields", "managerId",
    "performerId", "comment", "datetime", "event", "offers", "stores", "stock", "prices", "price", "date",
    "ordering", "group", "summ", "sources", "dateFrom", "dateTo", "costItem", "userId", "hangupStatus",
    "isMain", "contragent", "subscriptions", "birthday", "tags", "vip", "bad", "manager",
]  # fmt: skip
# Values that reach real rows and branches; "³" and "١٢" are digits to str.isdigit() but not to int().
SAMPLES = ["shop", "other", "new", "1", "0", "³", "١٢", "2024-05-01 10:00:00", "+79161234567", "offer-1"]


def json_entities() -> st.SearchStrategy[str]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(SAMPLES)
    )
    keys = st.sampled_from(FIELDS) | st.text(max_size=8)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )
    entity = st.dictionaries(keys, values, max_size=6)
    return st.one_of(
        entity.map(json.dumps),
        st.lists(entity, max_size=3).map(json.dumps),
        values.map(json.dumps),
        st.text(),
    )


@dataclass
class Server:
    url: str
    key: str
    lavka: Lavka

    def log(self) -> str:
        return "\n".join(self.lavka.log(process) for process in self.lavka.logs)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("api-fuzz")
    with scratch_database(directory) as db:
        lavka = Lavka(db, directory, LAVKA_API_RATE_LIMIT="0", LAVKA_API_TELEPHONY_RATE_LIMIT="0")
        try:
            lavka.migrate()
            lavka.seed(3)
            key = lavka.run([*LAVKA, "apikey", "create", "fuzz"]).strip()
            port = free_port()
            lavka.start("serve", "--port", str(port))
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _up(url), timeout=60, what="lavka serve")
            yield Server(url, key, lavka)
        finally:
            lavka.kill_all()


def envelope_problem(response: requests.Response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} server error"
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return f"{response.status_code} with Content-Type {response.headers.get('Content-Type')!r}"
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} with a body that is not JSON"
    if not isinstance(body, dict):
        return f"{response.status_code} with a JSON {type(body).__name__}, not an object"
    if response.status_code >= 400:
        if body.get("success") is not False or not isinstance(body.get("errorMsg"), str):
            return f"{response.status_code} without success: false and a string errorMsg"
        if "errors" in body and not isinstance(body["errors"], dict | list):
            return f"{response.status_code} with errors that are neither an object nor a list"
    elif body.get("success") is not True:
        return f"{response.status_code} without success: true"
    return None


def _tracebacks(log: str) -> list[str]:
    """The last line of each server-side traceback: what actually failed."""
    return re.findall(r"^Traceback.*?\n(?:[ \t].*\n)+(.+)$", log, flags=re.MULTILINE)


def loosened(document: dict[str, Any]) -> dict[str, Any]:
    """The same operations with every scalar input any text and nothing required.

    Schemathesis' own negative mode is too slow for a per-commit run (seconds per operation); fuzzing
    this copy reaches the same error paths: `limit=abc`, `by=foo`, a missing entity, a filter of junk.
    """
    document = copy.deepcopy(document)
    text = {"type": "string"}
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation["parameters"]:
                if parameter["in"] == "query":
                    schema = parameter["schema"]
                    parameter["schema"] = {**schema, "properties": {}} if schema["type"] == "object" else text
            form = operation.get("requestBody", {}).get("content", {}).get(FORM)
            if form:
                operation["requestBody"]["required"] = False
                form["schema"].pop("required", None)
                properties = form["schema"]["properties"]
                form["schema"]["properties"] = {
                    name: spec if spec.get("format") == "json" else text for name, spec in properties.items()
                }
    return document


def fuzz(server: Server, operation: Any, examples: int, failures: dict[str, str]) -> None:
    session = requests.Session()
    headers = {"X-API-KEY": server.key}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # every failure is recorded as found: no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=30)
        problem = envelope_problem(response)
        name = f"{operation.verbose_name}: {problem}"
        if problem and name not in failures:
            failures[name] = f"{case.as_curl_command(headers=headers)}\n  -> {response.text[:300]}"

    if SEED != "random":
        run = seed(int(SEED))(run)
    run()


def test_document_on_the_live_server_lists_every_endpoint(server: Server) -> None:
    schema = schemathesis.from_uri(
        f"{server.url}/api/v5/openapi.json", base_url=server.url, validate_schema=True
    )
    served = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    registered = {
        (e.method, e.pattern if e.pattern.startswith("/api/") else f"/api/v5/{e.pattern}")
        for e in endpoints()
    }
    assert served == registered


def test_fuzz_every_operation(server: Server) -> None:
    document = requests.get(f"{server.url}/api/v5/openapi.json", timeout=30).json()
    schemathesis.openapi.format("json", json_entities())
    try:
        runs = [
            result.ok()
            for doc in (document, loosened(document))
            for result in schemathesis.from_dict(doc, base_url=server.url).get_all_operations()
        ]
        failures: dict[str, str] = {}
        started, sent = time.monotonic(), 0
        for done, operation in enumerate(runs):
            # Examples per operation shrink as needed to fit the budget, never below MIN_EXAMPLES.
            elapsed = time.monotonic() - started
            per_example = elapsed / sent if sent else 0.05
            share = (BUDGET_SECONDS - elapsed) / (len(runs) - done) / per_example
            examples = max(MIN_EXAMPLES, min(EXAMPLES, int(share)))
            fuzz(server, operation, examples, failures)
            sent += examples
    finally:
        schemathesis.openapi.unregister_string_format("json")
    print(f"fuzz: {len(runs)} runs, {sent} examples, {time.monotonic() - started:.0f} s")
    report = [f"{name}\n  {request}" for name, request in sorted(failures.items())]
    if failures:
        report.append("Server-side errors:\n  " + "\n  ".join(sorted(set(_tracebacks(server.log())))))
    assert not failures, "\n\n".join(report)
