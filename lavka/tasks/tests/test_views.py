"""Task pages: My tasks order, who sees and edits what, create/edit/close through forms, the card panels,
the navigation badge, CSRF and escaping."""

import datetime

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lavka.core.actor import Actor
from lavka.core.ui import day_start
from lavka.customers.actions import CustomerData
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks import actions
from lavka.tasks.actions import TaskData, create_task
from lavka.tasks.models import Notification, Task

SYSTEM = Actor.system("tests")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_task(shop, text="Перезвонить", performer=None, **fields) -> Task:
    data = TaskData(text=text, performer=performer or shop.alice)
    for name, value in fields.items():
        setattr(data, name, value)
        if hasattr(data, f"{name}_set"):
            setattr(data, f"{name}_set", True)
    return create_task(data, actor=SYSTEM, site=shop.site)


def order_for(shop, manager):
    data = OrderData(
        new_customer=CustomerData(
            first_name="Анна", phones=["+79160001122"], manager=manager, manager_set=True
        ),
        items=[ItemData(offer_id=shop.tea.pk)],
        manager=manager,
        manager_set=True,
    )
    return create_order(shop.site, data, actor=SYSTEM)


def test_my_tasks_overdue_first_then_today_then_later(shop):
    now = timezone.now()
    tomorrow = day_start(timezone.localdate(now) + datetime.timedelta(days=1))
    new_task(shop, "LATER-TASK", due_at=now + datetime.timedelta(days=3))
    new_task(shop, "NO-DUE-TASK")
    new_task(shop, "TODAY-TASK", due_at=now + (tomorrow - now) / 2)
    new_task(shop, "OVERDUE-TASK", due_at=now - datetime.timedelta(hours=2))
    done = new_task(shop, "DONE-TASK")
    actions.complete_task(done, actor=SYSTEM, comment="готово")
    new_task(shop, "BOBS-TASK", performer=shop.bob)

    page = client_for(shop.alice).get(reverse("tasks:my"))
    assert page.status_code == 200
    html = page.content.decode()
    positions = [html.index(t) for t in ("OVERDUE-TASK", "TODAY-TASK", "LATER-TASK", "NO-DUE-TASK")]
    assert positions == sorted(positions)
    assert "DONE-TASK" not in html and "BOBS-TASK" not in html
    closed = client_for(shop.alice).get(reverse("tasks:my"), {"closed": "1"}).content.decode()
    assert "DONE-TASK" in closed and "готово" in closed


def test_a_supervisor_may_look_at_everyones_tasks(shop):
    new_task(shop, "BOBS-TASK", performer=shop.bob)
    supervisor = client_for(shop.supervisor)
    assert "BOBS-TASK" not in supervisor.get(reverse("tasks:my")).content.decode()
    assert "BOBS-TASK" in supervisor.get(reverse("tasks:my"), {"who": "all"}).content.decode()
    # A manager asking for everyone's still gets their own.
    assert "BOBS-TASK" not in client_for(shop.alice).get(reverse("tasks:my"), {"who": "all"}).content.decode()


def test_a_manager_cannot_see_or_touch_another_managers_task(shop):
    task = new_task(shop, "BOBS-TASK", performer=shop.bob)
    alice = client_for(shop.alice)
    assert alice.get(reverse("tasks:detail", args=[task.pk])).status_code == 404
    assert (
        alice.post(
            reverse("tasks:edit", args=[task.pk]), {"text": "x", "performer": shop.alice.pk}
        ).status_code
        == 404
    )
    for name in ("tasks:complete", "tasks:cancel", "tasks:reopen"):
        assert alice.post(reverse(name, args=[task.pk])).status_code == 404
    task.refresh_from_db()
    assert task.text == "BOBS-TASK" and task.is_open
    assert client_for(shop.outsider).get(reverse("tasks:detail", args=[task.pk])).status_code == 404
    for user in (shop.bob, shop.supervisor, shop.admin):
        assert client_for(user).get(reverse("tasks:detail", args=[task.pk])).status_code == 200


def test_a_manager_sees_the_tasks_on_their_orders(shop):
    order = order_for(shop, shop.alice)
    task = new_task(shop, "ON-ALICES-ORDER", performer=shop.bob, order=order)
    page = client_for(shop.alice).get(reverse("tasks:detail", args=[task.pk]))
    assert page.status_code == 200 and "ON-ALICES-ORDER" in page.content.decode()
    # Bob's order: Alice sees neither it nor its panel.
    bobs = order_for(shop, shop.bob)
    assert client_for(shop.alice).get(reverse("tasks:order_panel", args=[bobs.pk])).status_code == 404


def test_create_from_the_order_card_and_back(shop):
    order = order_for(shop, shop.alice)
    alice = client_for(shop.alice)
    back = reverse("orders:detail", args=[order.pk])
    form = alice.get(reverse("tasks:create"), {"order": order.pk, "next": back})
    assert form.status_code == 200 and 'name="csrfmiddlewaretoken"' in form.content.decode()
    answer = alice.post(
        reverse("tasks:create"),
        {
            "order": order.pk,
            "next": back,
            "text": "Уточнить адрес",
            "commentary": "после 18:00",
            "performer": shop.bob.pk,
            "due_at": "2030-01-02T10:30",
            "remind_at": "",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == back
    task = Task.objects.get()
    assert (task.order, task.customer, task.performer, task.creator) == (
        order,
        order.customer,
        shop.bob,
        shop.alice,
    )
    assert timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M") == "2030-01-02 10:30"
    # An outside address in `next` is ignored.
    answer = alice.post(
        reverse("tasks:create"), {"next": "https://evil.example/", "text": "x", "performer": shop.alice.pk}
    )
    assert answer.status_code == 302 and not answer["Location"].startswith("https://evil")


def test_bad_input_is_a_form_error(shop):
    alice = client_for(shop.alice)
    answer = alice.post(reverse("tasks:create"), {"text": "", "performer": "999999", "due_at": "tomorrow"})
    assert answer.status_code == 400
    assert {"text", "performer", "due_at"} <= set(answer.context["form"].errors)
    assert not Task.objects.exists()
    assert alice.get(reverse("tasks:create"), {"order": "12x"}).status_code == 404
    assert alice.get(reverse("tasks:create"), {"order": "999999"}).status_code == 404


def test_edit_and_close_with_a_comment_on_the_card(shop):
    task = new_task(shop, "Позвонить")
    alice = client_for(shop.alice)
    answer = alice.post(
        reverse("tasks:edit", args=[task.pk]),
        {
            "text": "Позвонить ещё раз",
            "commentary": "",
            "performer": shop.alice.pk,
            "due_at": "",
            "remind_at": "",
        },
    )
    assert answer.status_code == 302
    alice.post(reverse("tasks:complete", args=[task.pk]), {"comment": "дозвонился"})
    task.refresh_from_db()
    assert (
        task.text == "Позвонить ещё раз" and task.status == "done" and task.completion_comment == "дозвонился"
    )
    card = alice.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "дозвонился" in card and "Reopen" in card
    alice.post(reverse("tasks:reopen", args=[task.pk]))
    alice.post(reverse("tasks:cancel", args=[task.pk]), {"comment": "не нужно"})
    task.refresh_from_db()
    assert task.status == "cancelled" and task.completion_comment == "не нужно"


def test_panels_on_the_order_and_customer_cards(shop):
    order = order_for(shop, shop.alice)
    task = new_task(shop, "PANEL-TASK", order=order)
    alice = client_for(shop.alice)
    card = alice.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert 'id="tasks-panel"' in card and "PANEL-TASK" in card
    customer_card = alice.get(reverse("customers:detail", args=[order.customer_id])).content.decode()
    assert 'id="tasks-panel"' in customer_card and "PANEL-TASK" in customer_card

    # Done from the panel with htmx: the panel comes back with the task closed.
    answer = alice.post(
        reverse("tasks:complete", args=[task.pk]),
        {"panel": f"order:{order.pk}", "comment": "сделано"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200
    html = answer.content.decode()
    assert html.lstrip().startswith('<section class="card" id="tasks-panel">') and "Recently closed" in html
    assert "<html" not in html
    panel = alice.get(reverse("tasks:customer_panel", args=[order.customer_id]))
    assert panel.status_code == 200 and "No open tasks." in panel.content.decode()


def test_notices_and_the_badge(shop):
    task = new_task(shop, "REMIND-ME", remind_at=timezone.now() - datetime.timedelta(minutes=1))
    actions.send_reminder(task.pk)
    alice = client_for(shop.alice)
    page = alice.get(reverse("tasks:my")).content.decode()
    assert 'id="notices"' in page and "REMIND-ME" in page
    template = Template("{% load tasks_ui %}{% tasks_nav %}")
    with CaptureQueriesContext(connection) as queries:
        nav = template.render(Context({"user": shop.alice}))
    assert len(queries) == 1 and ">1</span>" in nav
    note = Notification.objects.get()
    # Bob cannot dismiss Alice's notice.
    assert client_for(shop.bob).post(reverse("tasks:notice_read", args=[note.pk])).status_code == 404
    assert alice.post(reverse("tasks:notice_read", args=[note.pk])).status_code == 302
    assert (
        Template("{% load tasks_ui %}{% tasks_nav %}").render(Context({"user": shop.alice})).count("badge")
        == 0
    )
    actions.send_reminder(new_task(shop, "AGAIN", remind_at=timezone.now()).pk)
    alice.post(reverse("tasks:notices_read"))
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_forms_need_the_csrf_token(shop):
    task = new_task(shop)
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.alice)
    assert client.post(reverse("tasks:complete", args=[task.pk]), {"comment": "x"}).status_code == 403
    task.refresh_from_db()
    assert task.is_open


def test_titles_are_escaped(shop):
    order = order_for(shop, shop.alice)
    new_task(shop, "<script>alert(1)</script>", order=order, commentary="<b>bold</b>")
    alice = client_for(shop.alice)
    for url in (reverse("tasks:my"), reverse("orders:detail", args=[order.pk])):
        html = alice.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("name", ["tasks:my", "tasks:create"])
def test_pages_need_a_login(client, shop, name):
    answer = client.get(reverse(name))
    assert answer.status_code == 302 and "/accounts/login" in answer["Location"]
