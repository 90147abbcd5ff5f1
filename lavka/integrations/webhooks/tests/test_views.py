"""Webhook settings pages: admin only, validated input (never a 500), escaped output, CSRF, the delivery
log with its codes and attempts, replay and enable/disable from the UI."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from lavka.core import dispatcher
from lavka.customers.events import CustomerCreated
from lavka.integrations.webhooks import actions
from lavka.integrations.webhooks.models import WebhookDelivery, WebhookSubscription
from lavka.integrations.webhooks.tests.conftest import SYSTEM, emit, pump, subscribe

VALID = {
    "name": "Warehouse",
    "url": "https://example.com/hooks/lavka",
    "event_types": ["orders.created", "customers.updated"],
    "max_consecutive_failures": "5",
}


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin(shop) -> Client:
    return client_for(shop.admin)


@pytest.fixture
def subscription(db) -> WebhookSubscription:
    return subscribe("https://example.com/hook")


def test_pages_are_for_admins_only(shop, subscription) -> None:
    emit(CustomerCreated(customer_id=1, site="shop"))
    dispatcher.drain("w1")  # records the delivery; nothing is sent to example.com
    delivery = WebhookDelivery.objects.get()
    pages = [
        reverse("webhooks:list"),
        reverse("webhooks:new"),
        reverse("webhooks:edit", args=[subscription.pk]),
        reverse("webhooks:deliveries", args=[subscription.pk]),
        reverse("webhooks:delivery", args=[subscription.pk, delivery.pk]),
    ]
    posts = [
        reverse("webhooks:state", args=[subscription.pk]),
        reverse("webhooks:secret", args=[subscription.pk]),
        reverse("webhooks:delete", args=[subscription.pk]),
        reverse("webhooks:replay", args=[subscription.pk, delivery.pk]),
    ]
    secret = subscription.secret
    for user in (shop.supervisor, shop.alice, shop.operator, shop.outsider):
        client = client_for(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
        for url in posts:
            assert client.post(url, {"state": "off"}).status_code == 404, (user, url)
    subscription.refresh_from_db()
    assert subscription.secret == secret and subscription.is_active
    assert WebhookSubscription.objects.count() == 1
    admin = client_for(shop.admin)
    for url in pages:
        assert admin.get(url).status_code == 200, url
    assert Client().get(pages[0]).status_code == 302  # to the login page


def test_create_shows_the_secret_and_lists_the_subscription(admin) -> None:
    response = admin.post(reverse("webhooks:new"), VALID)
    subscription = WebhookSubscription.objects.get()
    assert response.status_code == 302 and response.url == reverse("webhooks:edit", args=[subscription.pk])
    assert subscription.event_types == ["orders.created", "customers.updated"]
    assert subscription.max_consecutive_failures == 5 and subscription.sending
    page = admin.get(response.url).content.decode()
    assert subscription.secret in page
    listing = admin.get(reverse("webhooks:list")).content.decode()
    assert "https://example.com/hooks/lavka" in listing and "5" in listing


def test_the_default_failure_run_comes_from_the_setting(admin, settings) -> None:
    settings.LAVKA_WEBHOOK_MAX_FAILURES = 7
    assert 'value="7"' in admin.get(reverse("webhooks:new")).content.decode()
    admin.post(reverse("webhooks:new"), {**VALID, "max_consecutive_failures": ""})
    assert not WebhookSubscription.objects.exists()  # required in the form
    values = {"name": "Defaults", "url": "http://example.com/", "all_events": True}
    assert actions.create_subscription(values, actor=SYSTEM).max_consecutive_failures == 7


@pytest.mark.parametrize(
    "change, field",
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "https://example.com/" + "x" * 2100}, "url"),
        ({"name": ""}, "name"),
        ({"name": "\x00"}, "name"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["orders.deleted"]}, "event_types"),
        ({"event_types": ["x" * 5000]}, "event_types"),
        ({"max_consecutive_failures": "0"}, "max_consecutive_failures"),
        ({"max_consecutive_failures": "99999999999999999999"}, "max_consecutive_failures"),
        ({"max_consecutive_failures": "abc"}, "max_consecutive_failures"),
    ],
)
def test_bad_input_is_a_form_error_never_a_500(admin, change, field) -> None:
    response = admin.post(reverse("webhooks:new"), {**VALID, **change})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not WebhookSubscription.objects.exists()


def test_all_events_needs_no_list(admin) -> None:
    response = admin.post(reverse("webhooks:new"), {**VALID, "event_types": [], "all_events": "on"})
    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get()
    assert subscription.all_events and subscription.wants("customers.merged")
    assert not subscription.wants("tasks.created")


def test_edit_changes_the_subscription_and_keeps_its_secret(admin, subscription) -> None:
    secret = subscription.secret
    url = reverse("webhooks:edit", args=[subscription.pk])
    response = admin.post(url, {**VALID, "name": "Renamed"})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.name == "Renamed" and subscription.secret == secret and not subscription.all_events

    admin.post(reverse("webhooks:secret", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.secret != secret


def test_output_is_escaped(admin) -> None:
    admin.post(reverse("webhooks:new"), {**VALID, "name": "<script>alert(1)</script>"})
    subscription = WebhookSubscription.objects.get()
    for url in (reverse("webhooks:list"), reverse("webhooks:edit", args=[subscription.pk])):
        page = admin.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_posts_need_the_csrf_token(shop, subscription) -> None:
    client = client_for(shop.admin, enforce_csrf_checks=True)
    assert client.post(reverse("webhooks:new"), VALID).status_code == 403
    assert client.post(reverse("webhooks:state", args=[subscription.pk]), {"state": "off"}).status_code == 403
    subscription.refresh_from_db()
    assert subscription.is_active and WebhookSubscription.objects.count() == 1
    assert client.get(reverse("webhooks:state", args=[subscription.pk])).status_code == 405


def test_an_unknown_state_changes_nothing(admin, subscription) -> None:
    response = admin.post(reverse("webhooks:state", args=[subscription.pk]), {"state": "maybe"})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.sending


def test_the_log_shows_codes_and_attempts_and_replay_and_enable_work(admin, receiver) -> None:
    receiver.answer = lambda request, n: 500
    subscription = subscribe(receiver.url(), max_consecutive_failures=2)
    emit(CustomerCreated(customer_id=1, site="shop"))
    pump(lambda: WebhookSubscription.objects.filter(disabled_at__isnull=False).exists())
    delivery = WebhookDelivery.objects.get()

    listing = admin.get(reverse("webhooks:list")).content.decode()
    assert "disabled after 2 consecutive failures: last HTTP 500" in listing
    log = admin.get(reverse("webhooks:deliveries", args=[subscription.pk])).content.decode()
    assert str(delivery.delivery_id) in log and "HTTP 500" in log
    assert "disabled after 2 consecutive failures" in log
    failed_only = admin.get(reverse("webhooks:deliveries", args=[subscription.pk]), {"status": "failed"})
    assert str(delivery.delivery_id) in failed_only.content.decode()
    none_ok = admin.get(reverse("webhooks:deliveries", args=[subscription.pk]), {"status": "succeeded"})
    assert str(delivery.delivery_id) not in none_ok.content.decode()
    assert (
        admin.get(reverse("webhooks:deliveries", args=[subscription.pk]), {"status": "<x>"}).status_code
        == 200
    )
    detail = admin.get(reverse("webhooks:delivery", args=[subscription.pk, delivery.pk])).content.decode()
    assert detail.count("HTTP 500") == 2 and "answer 500 &lt;b&gt;" in detail
    assert '"event": "customers.created"' in detail.replace("&quot;", '"')

    receiver.answer = lambda request, n: 200
    response = admin.post(
        reverse("webhooks:state", args=[subscription.pk]), {"state": "on", "back": "deliveries"}
    )
    assert response.url == reverse("webhooks:deliveries", args=[subscription.pk])
    subscription.refresh_from_db()
    assert subscription.sending and subscription.failure_run == 0 and subscription.disabled_reason == ""
    pump(lambda: WebhookDelivery.objects.filter(status="succeeded").exists())
    assert len(receiver.answered(200)) == 1

    response = admin.post(reverse("webhooks:replay", args=[subscription.pk, delivery.pk]), {"back": "detail"})
    assert response.url == reverse("webhooks:delivery", args=[subscription.pk, delivery.pk])
    pump(lambda: len(receiver.answered(200)) == 2)
    assert {r.delivery_id for r in receiver.requests} == {str(delivery.delivery_id)}
    detail = admin.get(reverse("webhooks:delivery", args=[subscription.pk, delivery.pk])).content.decode()
    assert detail.count("HTTP 200") == 2

    admin.post(reverse("webhooks:state", args=[subscription.pk]), {"state": "off"})
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "switched off" in admin.get(reverse("webhooks:list")).content.decode()


def test_a_delivery_of_another_subscription_is_not_found(admin, receiver) -> None:
    first = subscribe(receiver.url())
    second = subscribe(receiver.url())
    emit(CustomerCreated(customer_id=1, site="shop"))
    pump(rounds=1)
    delivery = WebhookDelivery.objects.filter(subscription=first).get()
    assert admin.get(reverse("webhooks:delivery", args=[second.pk, delivery.pk])).status_code == 404
    assert admin.post(reverse("webhooks:replay", args=[second.pk, delivery.pk])).status_code == 404
    assert admin.get(reverse("webhooks:edit", args=[10**30])).status_code == 404


def test_delete_removes_the_subscription_and_its_log(admin, subscription) -> None:
    emit(CustomerCreated(customer_id=1, site="shop"))
    dispatcher.drain("w1")
    assert admin.post(reverse("webhooks:delete", args=[subscription.pk])).status_code == 302
    assert not WebhookSubscription.objects.exists() and not WebhookDelivery.objects.exists()


def test_russian_pages(shop, subscription) -> None:
    shop.admin.language = "ru"
    shop.admin.save(update_fields=["language"])
    actions.disable_subscription(subscription, actor=SYSTEM)
    page = client_for(shop.admin).get(reverse("webhooks:list")).content.decode()
    assert "Вебхуки" in page and "выключен" in page
