"""The official Python client `retailcrm==5.3.0` and PHP-module-style requests against a real
`lavka serve` (issue 3 acceptance): what a shop's existing integration does, end to end."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import retailcrm

from lavka.core.tests.processes import Database, Lavka, free_port, scratch_database, wait_until

pytestmark = pytest.mark.slow
SEED = [sys.executable, "-m", "lavka.integrations.tests.seed_api"]


class Server:
    def __init__(self, lavka: Lavka, key: str, ports: list[int]) -> None:
        self.lavka, self.key, self.ports = lavka, key, ports

    def url(self, n: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[n]}"

    def client(self, n: int = 0) -> retailcrm.v5:
        return retailcrm.v5(self.url(n), self.key)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    directory: Path = tmp_path_factory.mktemp("api-e2e")
    with scratch_database(directory) as db:
        lavka = Lavka(db, directory, LAVKA_API_RATE_LIMIT="0", LAVKA_WORKER_POLL_SECONDS="0.2")
        try:
            lavka.migrate()
            key = lavka.run(SEED).strip().splitlines()[-1]
            ports = [free_port(), free_port()]
            lavka.start("serve", "--port", str(ports[0]))
            lavka.start("serve", "--port", str(ports[1]), "--no-worker")
            for port in ports:
                wait_until(lambda port=port: _up(f"http://127.0.0.1:{port}"), timeout=60, what="lavka serve")
            yield Server(lavka, key, ports)
        finally:
            lavka.kill_all()


def ok(response: retailcrm.response.Response) -> dict:
    assert response.is_successful(), (response.get_status_code(), response.get_response())
    return response.get_response()


def test_reference_books(server: Server) -> None:
    client = server.client()
    statuses = ok(client.statuses())["statuses"]
    assert statuses["new"]["group"] == "new"
    sites = ok(client.sites())["sites"]
    assert sites["shop"]["code"] == "shop"
    assert "courier" in ok(client.delivery_types())["deliveryTypes"] or ok(client.delivery_types())
    ok(client.payment_types())


def test_customer_and_order_lifecycle_through_the_official_client(server: Server) -> None:
    client = server.client()
    ext = f"c-{uuid.uuid4().hex[:8]}"
    created = client.customer_create(
        {
            "externalId": ext,
            "firstName": "Ivan",
            "lastName": "Petrov",
            "email": "ivan@example.com",
            "phones": [{"number": "+7 (912) 345-67-89"}],
        },
        site="shop",
    )
    assert created.get_status_code() == 201
    customer_id = ok(created)["id"]
    ok(client.customer_edit({"externalId": ext, "firstName": "Ivan I."}, site="shop"))
    customer = ok(client.customer(ext, site="shop"))["customer"]
    assert customer["id"] == customer_id and customer["firstName"] == "Ivan I."
    found = ok(client.customers({"name": "89123456789"}))["customers"]
    assert [c["id"] for c in found] == [customer_id]

    order_ext = f"o-{uuid.uuid4().hex[:8]}"
    order = {
        "externalId": order_ext,
        "customer": {"externalId": ext},
        "firstName": "Ivan",
        "phone": "+79123456789",
        "items": [
            {"offer": {"externalId": "offer-1"}, "quantity": 2, "initialPrice": 450},
            {"offer": {"xmlId": "xml-2"}, "quantity": 1},
        ],
        "delivery": {"code": "courier", "cost": 300, "address": {"text": "Moscow, Tverskaya 1"}},
        "payments": [
            {"type": "cash", "status": "not-paid", "amount": 1233.33, "externalId": f"p-{order_ext}"}
        ],
    }
    response = client.order_create(order, site="shop")
    assert response.get_status_code() == 201, response.get_response()
    order_id = ok(response)["id"]
    got = ok(client.order(order_ext, site="shop"))["order"]
    assert got["id"] == order_id and len(got["items"]) == 2
    assert got["customer"]["id"] == customer_id
    assert isinstance(got["payments"], dict) and len(got["payments"]) == 1

    # A retry of the same create is refused, not duplicated.
    again = client.order_create(order, site="shop")
    assert again.get_status_code() == 400 and again.get_error_msg() == "Order already exists."

    # Edit: status and items (the list is the full new list).
    ok(client.order_edit({"externalId": order_ext, "status": "cancel-other"}, site="shop"))
    edited = ok(
        client.order_edit(
            {"externalId": order_ext, "items": [{"offer": {"externalId": "offer-3"}, "quantity": 1}]},
            site="shop",
        )
    )["order"]
    assert edited["status"] == "cancel-other"
    assert [item["offer"]["externalId"] for item in edited["items"]] == ["offer-3"]

    # Payments: edit by externalId, then delete by id.
    payment_id = int(next(iter(got["payments"])))
    ok(client.order_payment_edit({"externalId": f"p-{order_ext}", "status": "paid"}, site="shop"))
    assert ok(client.order(order_ext, site="shop"))["order"]["payments"][str(payment_id)]["status"] == "paid"
    ok(client.order_payment_delete(payment_id))
    assert ok(client.order(order_ext, site="shop"))["order"]["payments"] in ({}, [])


def test_upload_with_one_bad_order_is_460_and_fix_external_ids(server: Server) -> None:
    client = server.client()
    good = {
        "externalId": f"u-{uuid.uuid4().hex[:8]}",
        "firstName": "Good",
        "items": [{"offer": {"externalId": "offer-1"}, "quantity": 1}],
    }
    bad = {
        "externalId": f"u-{uuid.uuid4().hex[:8]}",
        "firstName": "Bad",
        "items": [{"offer": {"id": 987654}, "quantity": 1}],
    }
    response = client.orders_upload([good, bad], site="shop")
    assert response.get_status_code() == 460
    body = response.get_response()
    assert body["errorMsg"] == "Orders are loaded with errors"
    assert [o["externalId"] for o in body["uploadedOrders"]] == [good["externalId"]]
    assert [o["externalId"] for o in body["failedOrders"]] == [bad["externalId"]]
    assert body["errors"]

    crm_made = client.order_create(
        {"firstName": "Made in CRM", "items": [{"offer": {"externalId": "offer-2"}}]}, site="shop"
    )
    crm_id = ok(crm_made)["id"]
    ok(client.orders_fix_external_ids([{"id": crm_id, "externalId": f"fixed-{crm_id}"}]))
    assert ok(client.order(f"fixed-{crm_id}", site="shop"))["order"]["id"] == crm_id


def test_history_by_moving_since_id_returns_every_change_once_in_order(server: Server) -> None:
    client = server.client()
    first = f"h0-{uuid.uuid4().hex[:8]}"
    ok(
        client.order_create(
            {"externalId": first, "items": [{"offer": {"externalId": "offer-2"}}]}, site="shop"
        )
    )
    ok(client.order_edit({"externalId": first, "managerComment": "call first"}, site="shop"))
    seen: list[int] = []
    since = 0
    while True:
        body = ok(client.orders_history({"sinceId": since}, limit=20))
        ids = [record["id"] for record in body["history"]]
        seen.extend(ids)
        if not ids:
            break
        since = ids[-1]
        if body["pagination"]["currentPage"] >= body["pagination"]["totalPageCount"]:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) and seen
    # A change made now appears after the cursor, exactly once.
    ext = f"h-{uuid.uuid4().hex[:8]}"
    ok(client.order_create({"externalId": ext, "items": [{"offer": {"externalId": "offer-1"}}]}, site="shop"))
    fresh = ok(client.orders_history({"sinceId": since}, limit=100))["history"]
    assert fresh and all(record["id"] > since for record in fresh)
    assert any(record.get("created") and record["order"]["externalId"] == ext for record in fresh)
    assert all(record["apiKey"]["current"] is True for record in fresh if record["source"] == "api")
    # sinceId together with page is refused.
    paged = client.orders_history({"sinceId": since}, limit=20, page=2)
    assert paged.get_status_code() == 400


def test_inventories_upload_changes_stock(server: Server) -> None:
    client = server.client()
    stores = client.inventories_upload(
        [
            {"externalId": "offer-1", "stores": [{"code": "main", "available": 7}]},
            {"externalId": "no-such-offer", "stores": [{"code": "main", "available": 1}]},
        ],
        site="shop",
    )
    body = ok(stores)
    assert body["processedOffersCount"] == 1
    assert body["notFoundOffers"]
    offers = ok(client.inventories({"offerExternalId": "offer-1"}, limit=250))["offers"]
    assert offers[0]["quantity"] == 7


def test_task_and_call_event_linked_to_the_customer(server: Server) -> None:
    client = server.client()
    ext = f"t-{uuid.uuid4().hex[:8]}"
    customer_id = ok(
        client.customer_create(
            {"externalId": ext, "firstName": "Olga", "phones": [{"number": "+79031112233"}]}, site="shop"
        )
    )["id"]
    users = ok(client.users({"active": 1}))["users"] if hasattr(client, "users") else []
    performer = next(u["id"] for u in users if u.get("firstName") == "Alice")
    task = client.task_create(
        {
            "text": "Call back",
            "datetime": "2030-01-01 10:00",
            "performerId": performer,
            "customer": {"id": customer_id},
        },
        site="shop",
    )
    assert task.get_status_code() == 201, task.get_response()
    got = ok(client.task(ok(task)["id"]))["task"]
    assert got["customer"]["id"] == customer_id and got["text"] == "Call back"

    event = client.telephony_call_event(
        {
            "phone": "8 (903) 111-22-33",
            "type": "in",
            "codes": ["101"],
            "hangupStatus": "answered",
            "site": "shop",
        }
    )
    assert event.get_status_code() == 200, event.get_response()
    assert ok(event).get("notExistCodes", []) == []
    manager = ok(client.telephony_manager("+79031112233"))
    assert manager["customer"]["id"] == customer_id


def _php_get(server: Server, path: str, query: str) -> tuple[int, dict]:
    url = f"{server.url()}/api/v5/{path}?{query}&apiKey={server.key}&cms_source=WooCommerce&php_version=8.2"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _multipart_post(server: Server, path: str, fields: dict[str, str]) -> tuple[int, dict]:
    """A POST as cURL sends a PHP array: multipart/form-data, with the key in the body."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in {**fields, "apiKey": server.key}.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(
        f"{server.url()}/api/v5/{path}",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_php_module_style_requests(server: Server) -> None:
    ext = f"php-{uuid.uuid4().hex[:8]}"
    order = {
        "externalId": ext,
        "firstName": "Php",
        "items": [{"offer": {"externalId": "offer-1"}, "quantity": 1}],
    }
    status, body = _multipart_post(server, "orders/create", {"order": json.dumps(order), "site": "shop"})
    assert status == 201, body
    query = urllib.parse.urlencode({"filter[externalIds][0]": ext, "filter[sites][0]": "shop", "limit": 20})
    status, body = _php_get(server, "orders", query)
    assert status == 200 and [o["externalId"] for o in body["orders"]] == [ext]
    status, body = _php_get(
        server, "orders/history", urllib.parse.urlencode({"filter[sinceId]": 0, "limit": 100})
    )
    assert status == 200 and body["history"]


def test_twenty_concurrent_creates_with_one_external_id_make_one_order(server: Server) -> None:
    ext = f"race-{uuid.uuid4().hex[:8]}"
    order = json.dumps({"externalId": ext, "items": [{"offer": {"externalId": "offer-1"}, "quantity": 1}]})
    start = threading.Barrier(20)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        data = urllib.parse.urlencode({"order": order, "site": "shop"}).encode()
        request = urllib.request.Request(
            f"{server.url(n % 2)}/api/v5/orders/create",
            data=data,
            method="POST",
            headers={"X-API-KEY": server.key},
        )
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                result = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            result = (exc.code, json.loads(exc.read()))
        with lock:
            results.append(result)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [400] * 19, results
    assert all(body["errorMsg"] == "Order already exists." for status, body in results if status == 400)
    db: Database = server.lavka.db
    assert db.scalar(f"SELECT count(*) FROM orders_order WHERE external_id = '{ext}'") == 1
