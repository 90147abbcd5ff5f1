"""The rule pages: who may use them, the editor with its as-you-type check, the dry run (which changes
nothing), export and import, and the order card's panel."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from lavka.automation import conditions
from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.automation.models import Rule, RuleRun
from lavka.cli import main as lavka_cli
from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.core.testing import PASSWORD
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks.models import Task

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _fresh_caches():
    conditions.forget()
    yield
    conditions.forget()


def client_for(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def big_order_rule(shop) -> Rule:
    data = RuleData(
        name="Big orders to the supervisor",
        trigger="orders.created",
        condition="order.total_summ >= 10000",
        actions=[("create_task", {"title": "Look at {{ order.number }}", "performer": "supervisor"})],
    )
    return save_rule(None, data, actor=SYSTEM)


def order(shop, quantity: int):
    data = OrderData(
        new_customer=CustomerData(first_name="Ivan"),
        items=[ItemData(offer_id=shop.tea.pk, quantity=quantity)],
    )
    return create_order(shop.site, data, actor=shop.actor(shop.alice))


def test_supervisors_and_admins_manage_rules_managers_do_not_see_them(shop) -> None:
    assert client_for(shop.supervisor).get(reverse("automation:list")).status_code == 200
    assert client_for(shop.admin).get(reverse("automation:list")).status_code == 200
    assert client_for(shop.alice).get(reverse("automation:list")).status_code == 404
    assert client_for(shop.alice).post(reverse("automation:new"), {"name": "x"}).status_code == 404


def test_the_editor_saves_a_rule_with_its_actions(shop) -> None:
    client = client_for(shop.supervisor)
    response = client.post(
        reverse("automation:new"),
        {
            "name": "Big orders",
            "trigger": "orders.created",
            "condition": "order.total_summ >= 10000",
            "position": "100",
            "actions-0-kind": "create_task",
            "actions-0-title": "Look at {{ order.number }}",
            "actions-0-performer": "supervisor",
            "actions-0-due_minutes": "30",
            "actions-1-kind": "add_tag",
            "actions-1-tag": "big",
        },
    )
    assert response.status_code == 302
    saved = Rule.objects.get()
    assert saved.condition == "order.total_summ >= 10000"
    assert [(a.kind, a.params.get("title") or a.params.get("tag")) for a in saved.actions.all()] == [
        ("create_task", "Look at {{ order.number }}"),
        ("add_tag", "big"),
    ]
    assert not saved.is_active  # saved switched off; enabling is a separate, deliberate step
    assert HistoryRecord.objects.filter(entity="rule", entity_id=saved.pk, created=True).exists()


def test_the_editor_shows_errors_next_to_their_fields(shop) -> None:
    client = client_for(shop.supervisor)
    response = client.post(
        reverse("automation:new"),
        {
            "name": "Broken",
            "trigger": "orders.created",
            "condition": "order.total_summ >=",
            "position": "100",
            "actions-0-kind": "add_tag",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "at 19" in body  # where the condition ends too early
    assert not Rule.objects.exists()


def test_the_condition_is_checked_as_it_is_typed(shop) -> None:
    client = client_for(shop.supervisor)
    url = reverse("automation:check")
    good = client.post(url, {"trigger": "orders.created", "condition": 'order.site == "shop"'})
    assert "valid" in good.content.decode()
    bad = client.post(url, {"trigger": "orders.created", "condition": "order.site == 'shop' and"})
    text = bad.content.decode()
    assert 'role="alert"' in text and "column" in text
    escaped = client.post(url, {"trigger": "orders.created", "condition": "<script>alert(1)</script>"})
    assert "<script>" not in escaped.content.decode()


def test_enabling_and_switching_off(shop) -> None:
    saved = big_order_rule(shop)
    client = client_for(shop.supervisor)
    client.post(reverse("automation:state", args=[saved.pk]), {"state": "on"})
    saved.refresh_from_db()
    assert saved.is_active
    client.post(reverse("automation:state", args=[saved.pk]), {"state": "off"})
    saved.refresh_from_db()
    assert not saved.is_active


def test_the_dry_run_lists_what_the_rule_would_have_done_and_changes_nothing(shop) -> None:
    small, big = order(shop, 1), order(shop, 30)
    dispatcher.drain()
    saved = big_order_rule(shop)  # made after the orders: it has never run
    counts = (HistoryRecord.objects.count(), OutboxEvent.objects.count(), Task.objects.count())

    response = client_for(shop.supervisor).get(
        reverse("automation:dry_run", args=[saved.pk]), {"days": 7, "run": 1}
    )

    assert response.status_code == 200
    firing = response.context["firing"]
    assert [r.subject_id for r in firing] == [big.pk]
    assert {r.subject_id for r in response.context["results"]} == {small.pk, big.pk}
    assert "Create the task" in firing[0].actions[0]
    assert (HistoryRecord.objects.count(), OutboxEvent.objects.count(), Task.objects.count()) == counts
    assert not RuleRun.objects.exists()


def test_export_then_import_into_another_shop_state(shop, tmp_path, capsys) -> None:
    saved = set_rule_active(big_order_rule(shop), True, actor=SYSTEM)
    exported = client_for(shop.supervisor).get(reverse("automation:export"))
    document = json.loads(exported.content)
    assert document["rules"][0]["condition"] == "order.total_summ >= 10000"
    assert document["rules"][0]["enabled"] is True

    Rule.objects.all().delete()
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    assert lavka_cli(["rules", "import", str(path)]) == 0
    restored = Rule.objects.get()
    assert (restored.name, restored.condition, restored.is_active) == (saved.name, saved.condition, True)
    assert lavka_cli(["rules", "import", str(path)]) == 0  # again: updated by name, not doubled
    assert Rule.objects.count() == 1

    document["rules"][0]["condition"] = "order.nope > 1"
    path.write_text(json.dumps(document))
    assert lavka_cli(["rules", "import", str(path)]) == 2
    assert "rules.0.condition" in capsys.readouterr().err
    assert Rule.objects.get().condition == "order.total_summ >= 10000"  # all or nothing


def test_import_through_the_page_reports_a_bad_file(shop) -> None:
    client = client_for(shop.supervisor)
    upload = io.BytesIO(b"not json")
    upload.name = "rules.json"
    response = client.post(reverse("automation:import"), {"file": upload}, follow=True)
    assert "not valid JSON" in response.content.decode()


def test_the_default_rules_install_once(shop) -> None:
    client = client_for(shop.admin)
    client.post(reverse("automation:defaults"))
    client.post(reverse("automation:defaults"))
    assert Rule.objects.count() == 4
    assert not Rule.objects.filter(is_active=True).exists()


def test_the_order_card_panel_shows_runs_to_those_who_see_the_order(shop) -> None:
    set_rule_active(big_order_rule(shop), True, actor=SYSTEM)
    made = order(shop, 30)
    dispatcher.drain()
    url = reverse("automation:order_runs", args=[made.pk])

    panel = client_for(shop.supervisor).get(url)
    assert "Big orders to the supervisor" in panel.content.decode()
    assert client_for(shop.outsider).get(url).status_code == 404
