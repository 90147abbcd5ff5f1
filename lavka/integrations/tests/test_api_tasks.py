"""API v5 tasks (§2.6): create, get, edit, list; performer checks; scopes and site access."""

import pytest

from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks.models import Task

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def order(shop):
    data = OrderData(
        new_customer=CustomerData(first_name="Анна", last_name="Петрова", phones=["+79160001122"]),
        items=[ItemData(offer_id=shop.tea.pk, quantity=1)],
    )
    return create_order(shop.site, data, actor=SYSTEM)


def new_task(api, **fields):
    task = {"text": "Перезвонить", "performerId": fields.pop("performer"), **fields}
    result = api.post("tasks/create", {"task": task, "site": "shop"})
    assert result.status == 201, result.body
    return result["id"]


def test_create_about_an_order_and_read_it_back(shop, api, order):
    result = api.post(
        "tasks/create",
        {
            "site": "shop",
            "task": {
                "text": "Уточнить адрес",
                "commentary": "после 18:00",
                "datetime": "2030-01-02 10:30",
                "performerId": shop.alice.pk,
                "order": {"number": order.number},
                "phone": "8 (916) 000-11-22",
            },
        },
    )
    assert result.status == 201 and result.body["success"] is True
    task = api.get(f"tasks/{result['id']}")["task"]
    assert task["text"] == "Уточнить адрес" and task["commentary"] == "после 18:00"
    assert task["datetime"] == "2030-01-02 10:30"
    assert task["performer"] == shop.alice.pk and task["performerType"] == "user"
    assert task["order"] == {"id": order.pk, "number": order.number, "site": "shop"}
    # The order's customer comes along; the phone is stored in E.164.
    assert task["customer"] == {"type": "customer", "id": order.customer_id, "site": "shop"}
    assert task["phone"] == "+79160001122" and task["phoneSite"] == "shop"
    assert task["complete"] is False and "completedAt" not in task and "creator" not in task
    fields = set(
        HistoryRecord.objects.filter(entity="task", entity_id=result["id"]).values_list("field", flat=True)
    )
    assert {"id", "text", "performer", "order", "customer", "datetime"} <= fields
    assert OutboxEvent.objects.filter(type="tasks.created", payload__task_id=result["id"]).count() == 1


def test_performer_must_be_a_known_active_user(shop, api):
    unknown = api.post("tasks/create", {"task": {"text": "x", "performerId": 999999}, "site": "shop"})
    assert unknown.status == 400
    assert unknown.body["errors"] == {"task.performerId": "User with id=999999 not found."}
    shop.bob.is_active = False
    shop.bob.save()
    inactive = api.post("tasks/create", {"task": {"text": "x", "performerId": shop.bob.pk}, "site": "shop"})
    assert inactive.status == 400 and "task.performerId" in inactive.body["errors"]
    missing = api.post("tasks/create", {"task": {"text": "x"}, "site": "shop"})
    assert missing.status == 400 and "task.performerId" in missing.body["errors"]
    bad_date = api.post(
        "tasks/create", {"task": {"text": "x", "performerId": shop.alice.pk, "datetime": "tomorrow"}}
    )
    assert bad_date.status == 400 and "task.datetime" in bad_date.body["errors"]
    assert api.post("tasks/create", {"site": "shop"}).body["errorMsg"] == "Parameter 'task' is missing"
    assert not Task.objects.exists()


def test_unknown_customer_reference_is_a_field_error(shop, api):
    result = api.post(
        "tasks/create",
        {
            "task": {"text": "x", "performerId": shop.alice.pk, "customer": {"externalId": "nope"}},
            "site": "shop",
        },
    )
    assert result.status == 400
    assert result.body["errors"] == {"task.customer.externalId": "Customer with externalId=nope not found."}


def test_edit_completes_and_changes_fields(shop, api):
    task_id = new_task(api, performer=shop.alice.pk)
    edited = api.post(
        f"tasks/{task_id}/edit", {"task": {"text": "Перезвонить ещё раз", "performerId": shop.bob.pk}}
    )
    assert edited.status == 200 and edited.body == {"success": True}
    updated = OutboxEvent.objects.get(type="tasks.updated")
    assert updated.payload["fields"] == ["performer", "text"]

    assert api.post(f"tasks/{task_id}/edit", {"task": {"complete": True}}).status == 200
    task = api.get(f"tasks/{task_id}")["task"]
    assert task["complete"] is True and task["completedAt"] and task["performer"] == shop.bob.pk
    # Completing again is no change: one completion event, no extra update.
    api.post(f"tasks/{task_id}/edit", {"task": {"complete": True}})
    assert OutboxEvent.objects.filter(type="tasks.completed").count() == 1
    assert OutboxEvent.objects.filter(type="tasks.updated").count() == 1

    assert api.post("tasks/999999/edit", {"task": {"text": "x"}}).status == 404
    empty = api.post(f"tasks/{task_id}/edit", {"task": {"text": ""}})
    assert empty.status == 400 and "task.text" in empty.body["errors"]


def test_list_filters_and_paginates(shop, api, order):
    first = new_task(api, performer=shop.alice.pk, order={"id": order.pk})
    second = new_task(api, performer=shop.bob.pk, text="Отправить счёт")
    api.post(f"tasks/{second}/edit", {"task": {"complete": 1}})

    def ids(**flt):
        params = {f"filter[{k}]" if not isinstance(v, list) else f"filter[{k}][]": v for k, v in flt.items()}
        result = api.get("tasks", params)
        assert result.status == 200, result.body
        return [t["id"] for t in result["tasks"]]

    assert ids() == [second, first]
    assert ids(performers=[shop.alice.pk]) == [first]
    assert ids(status="performing") == [first] and ids(status="complete") == [second]
    assert ids(orderNumber=order.number) == [first]
    assert ids(text="счёт") == [second]
    assert ids(customer="Петрова") == [first]
    assert ids(createdAtFrom="2000-01-01", createdAtTo="2000-01-02") == []
    page = api.get("tasks", {"limit": 20, "page": 2})
    assert page["tasks"] == [] and page["pagination"]["totalCount"] == 2
    bad = api.get("tasks", {"filter[status]": "lost"})
    assert bad.status == 400 and bad.body["errorMsg"] == "Errors in the input parameters"


def test_scopes(shop, make_api):
    reader = make_api(name="reader", scopes=["task_read"])
    result = reader.post(
        "tasks/create", {"task": {"text": "x", "performerId": shop.alice.pk}, "site": "shop"}
    )
    assert result.status == 403 and result.body["errorMsg"] == "Access denied."
    assert make_api(name="none", scopes=["order_read"]).get("tasks").status == 403


def test_site_limited_key_sees_only_its_sites_tasks(shop, api, make_api):
    stranger = create_customer(shop.other_site, CustomerData(first_name="Отто"), actor=SYSTEM)
    foreign = new_task(api, performer=shop.outsider.pk, customer={"id": stranger.pk})
    own = new_task(api, performer=shop.alice.pk)
    limited = make_api(name="shop only", sites=["shop"])
    assert [t["id"] for t in limited.get("tasks")["tasks"]] == [own]
    assert limited.get(f"tasks/{foreign}").status == 403
    assert limited.post(f"tasks/{foreign}/edit", {"task": {"text": "x"}}).status == 403
    # Nor may it attach another site's customer to a task.
    result = limited.post(
        "tasks/create", {"task": {"text": "x", "performerId": shop.alice.pk, "customer": {"id": stranger.pk}}}
    )
    assert result.status == 403
    # With no order or customer, the key's only site is the task's site.
    created = limited.post("tasks/create", {"task": {"text": "y", "performerId": shop.alice.pk}})
    assert Task.objects.get(pk=created["id"]).site == shop.site


def test_history_moves_by_since_id_and_respects_site_access(shop, api, make_api):
    first = new_task(api, performer=shop.alice.pk, datetime="2030-01-02 10:30")
    api.post(f"tasks/{first}/edit", {"task": {"performerId": shop.bob.pk}})
    feed = api.get("tasks/history", {"filter[sinceId]": 0, "limit": 100})
    assert feed.status == 200 and feed["generatedAt"]
    records = [r for r in feed["history"] if r["task"]["id"] == first]
    created = next(r for r in records if r["field"] == "id")
    assert (
        created["created"] is True and created["newValue"] == first and created["apiKey"] == {"current": True}
    )
    due = next(r for r in records if r["field"] == "datetime")
    assert due["newValue"] == "2030-01-02 10:30"
    change = records[-1]
    assert change["field"] == "performer" and "created" not in change
    assert change["oldValue"] == {"id": shop.alice.pk} and change["newValue"] == {"id": shop.bob.pk}
    ids = [r["id"] for r in feed["history"]]
    assert ids == sorted(ids)
    after = api.get("tasks/history", {"filter[sinceId]": ids[-1]})
    assert after["history"] == [] and after["pagination"]["totalCount"] == 0
    assert api.get("tasks/history", {"filter[sinceId]": 1, "page": 2}).status == 400
    # A key of the other site sees none of the shop's tasks' changes.
    other = make_api(name="other only", sites=["other"])
    assert other.get("tasks/history")["history"] == []


def test_comments_of_a_task(shop, api, make_api):
    task_id = new_task(api, performer=shop.alice.pk)
    result = api.get(f"tasks/{task_id}/comments")
    assert result.status == 200 and result["comments"] == []
    assert result["pagination"]["totalCount"] == 0
    assert api.get("tasks/999999/comments").status == 404
    assert make_api(name="other only", sites=["other"]).get(f"tasks/{task_id}/comments").status == 403
