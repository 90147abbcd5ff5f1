"""Settings → Assignment rules: admin only, validated input (never a 500), escaped output, CSRF, enable /
disable; every write through the actions, with history and `automation.assignment_rule_saved`."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import include, path, reverse

from lavka.accounts.actions import save_team
from lavka.automation import assignment_actions as actions
from lavka.automation.assignment_actions import AssignmentRuleData
from lavka.automation.models import AssignmentRule
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.urls import urlpatterns as lavka_urlpatterns

# Until lavka/urls.py includes the pages, these tests mount them next to the project's own.
urlpatterns = [*lavka_urlpatterns, path("settings/assignment/", include("lavka.automation.assignment_urls"))]
pytestmark = pytest.mark.urls(__name__)

SYSTEM = Actor.system("tests")
VALID = {
    "name": "Телефонные заказы",
    "strategy": "least_loaded",
    "is_active": "on",
    "position": "10",
    "order_methods": ["phone", "callback"],
    "max_open": "5",
}


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin(shop) -> Client:
    return client_for(shop.admin)


@pytest.fixture
def made(shop) -> AssignmentRule:
    return actions.save_assignment_rule(None, AssignmentRuleData(name="Все", is_default=True), actor=SYSTEM)


def saved_events() -> list[dict]:
    return [e.payload for e in OutboxEvent.objects.filter(type="automation.assignment_rule_saved")]


def test_pages_are_for_admins_only(shop, made):
    pages = [
        reverse("assignment:list"),
        reverse("assignment:new"),
        reverse("assignment:edit", args=[made.pk]),
    ]
    state = reverse("assignment:state", args=[made.pk])
    for user in (shop.supervisor, shop.alice, shop.operator, shop.outsider):
        client = client_for(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
        assert client.post(pages[1], VALID).status_code == 404
        assert client.post(state, {"state": "off"}).status_code == 404
    assert AssignmentRule.objects.get().is_active and AssignmentRule.objects.count() == 1
    admin = client_for(shop.admin)
    for url in pages:
        assert admin.get(url).status_code == 200, url
    assert Client().get(pages[0]).status_code == 302  # to the login page


def test_create_from_the_form(shop, admin):
    response = admin.post(reverse("assignment:new"), {**VALID, "users": [shop.alice.pk, shop.bob.pk]})
    assert response.status_code == 302 and response.url == reverse("assignment:list")
    made = AssignmentRule.objects.get()
    assert (made.name, made.strategy, made.position, made.max_open) == (
        "Телефонные заказы",
        "least_loaded",
        10,
        5,
    )
    assert made.order_methods == ["phone", "callback"] and made.order_types == []
    assert set(made.users.all()) == {shop.alice, shop.bob} and made.is_active and not made.is_default
    page = admin.get(response.url).content.decode()
    assert "Телефонные заказы" in page and "phone, callback" in page and "Alice, Bob" in page
    records = HistoryRecord.objects.filter(entity="assignment_rule", entity_id=made.pk)
    assert {r.field for r in records} >= {"id", "name", "strategy", "order_methods", "users", "max_open"}
    assert {(r.source, r.user_id) for r in records} == {("user", shop.admin.pk)}
    assert saved_events()[0]["rule_id"] == made.pk and saved_events()[0]["created"] is True


def test_edit_records_what_changed(shop, admin, made):
    team = save_team(None, name="Продажи", supervisor=shop.supervisor, actor=SYSTEM)
    page = admin.get(reverse("assignment:edit", args=[made.pk])).content.decode()
    assert 'value="Все"' in page
    data = {
        "name": "Все",
        "strategy": "sticky",
        "is_active": "on",
        "is_default": "on",
        "position": "100",
        "team": team.pk,
        "sites": [shop.site.pk],
    }
    assert admin.post(reverse("assignment:edit", args=[made.pk]), data).status_code == 302
    made.refresh_from_db()
    assert made.strategy == "sticky" and made.team == team and list(made.sites.all()) == [shop.site]
    changed = HistoryRecord.objects.filter(entity="assignment_rule", entity_id=made.pk, created=False)
    assert {(r.field, r.source) for r in changed} == {
        ("strategy", "user"),
        ("team", "user"),
        ("sites", "user"),
    }
    assert saved_events()[-1] == {
        "rule_id": made.pk,
        "created": False,
        "fields": ["sites", "strategy", "team"],
    }
    # Saving unchanged writes nothing.
    before = HistoryRecord.objects.count()
    assert admin.post(reverse("assignment:edit", args=[made.pk]), data).status_code == 302
    assert HistoryRecord.objects.count() == before and len(saved_events()) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"strategy": "random"}, "strategy"),
        ({"position": "-1"}, "position"),
        ({"position": "9" * 30}, "position"),
        ({"max_open": "0"}, "max_open"),
        ({"max_open": "many"}, "max_open"),
        ({"order_methods": ["pigeon"]}, "order_methods"),
        ({"order_types": ["<b>x</b>"]}, "order_types"),
        ({"sites": ["999999999999999999999"]}, "sites"),
        ({"sites": ["abc"]}, "sites"),
        ({"users": ["9223372036854775807"]}, "users"),
        ({"team": "-5"}, "team"),
        ({"team": "99999999999999999999999"}, "team"),
        ({"team": "1.5"}, "team"),
    ],
)
def test_bad_input_is_named_and_saves_nothing(admin, change, field):
    response = admin.post(reverse("assignment:new"), {**VALID, **change})
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not AssignmentRule.objects.exists()


def test_names_are_escaped(admin):
    admin.post(reverse("assignment:new"), {**VALID, "name": "<script>alert(1)</script>"})
    page = admin.get(reverse("assignment:list")).content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_enable_and_disable(shop, admin, made):
    url = reverse("assignment:state", args=[made.pk])
    assert admin.get(url).status_code == 405
    assert admin.post(url, {"state": "off"}).status_code == 302
    made.refresh_from_db()
    assert not made.is_active
    assert admin.post(url, {"state": "off"}).status_code == 302  # again: nothing to record
    assert admin.post(url, {"state": "on"}).status_code == 302
    made.refresh_from_db()
    assert made.is_active
    switches = HistoryRecord.objects.filter(entity="assignment_rule", field="is_active", created=False)
    assert [(r.old_value, r.new_value) for r in switches] == [(True, False), (False, True)]
    assert [e["fields"] for e in saved_events()[1:]] == [["is_active"], ["is_active"]]


def test_posts_need_the_csrf_token(shop, made):
    client = client_for(shop.admin, enforce_csrf_checks=True)
    assert client.post(reverse("assignment:state", args=[made.pk]), {"state": "off"}).status_code == 403
    assert client.post(reverse("assignment:new"), VALID).status_code == 403
    made.refresh_from_db()
    assert made.is_active and AssignmentRule.objects.count() == 1


def test_one_default_rule_at_a_time(shop, made):
    second = actions.save_assignment_rule(
        None, AssignmentRuleData(name="Новый по умолчанию", is_default=True), actor=SYSTEM
    )
    made.refresh_from_db()
    assert second.is_default and not made.is_default
    dropped = HistoryRecord.objects.get(
        entity="assignment_rule", entity_id=made.pk, field="is_default", created=False
    )
    assert (dropped.old_value, dropped.new_value) == (True, False)
    assert {e["rule_id"] for e in saved_events()} == {made.pk, second.pk}


def test_the_action_refuses_what_a_form_would(shop):
    for data, field in (
        (AssignmentRuleData(name="  "), "name"),
        (AssignmentRuleData(name="x", strategy="random"), "strategy"),
        (AssignmentRuleData(name="x", order_types="eshop-legal"), "order_types"),
        (AssignmentRuleData(name="x", max_open=0), "max_open"),
    ):
        with pytest.raises(ValidationError) as error:
            actions.save_assignment_rule(None, data, actor=SYSTEM)
        assert field in error.value.message_dict
    shop.bob.is_active = False
    with pytest.raises(ValidationError) as error:
        actions.save_assignment_rule(None, AssignmentRuleData(name="x", users=[shop.bob]), actor=SYSTEM)
    assert "users" in error.value.message_dict
    assert not AssignmentRule.objects.exists() and not saved_events()
