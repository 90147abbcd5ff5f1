import pytest
from django.core.exceptions import ValidationError

from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.tasks.actions import TaskData, complete_task, create_task, update_task

SYSTEM = Actor.system("tests")


def test_user_task_reopened_after_completion(shop):
    actor = shop.actor(shop.supervisor)
    task = create_task(TaskData(text="Позвонить", performer=shop.alice), actor=actor, site=shop.site)
    assert task.creator == shop.supervisor and task.site == shop.site
    complete_task(task, actor=actor)
    task = update_task(task, TaskData(complete=False), actor=actor)
    assert task.complete is False and task.completed_at is None
    types = list(OutboxEvent.objects.filter(type__startswith="tasks.").values_list("type", flat=True))
    assert types == ["tasks.created", "tasks.completed", "tasks.updated"]
    assert OutboxEvent.objects.get(type="tasks.updated").payload["fields"] == ["complete"]


def test_order_and_customer_must_share_a_site(shop):
    order = create_order(
        shop.site,
        OrderData(new_customer=CustomerData(first_name="Анна"), items=[ItemData(offer_id=shop.tea.pk)]),
        actor=SYSTEM,
    )
    stranger = create_customer(shop.other_site, CustomerData(first_name="Отто"), actor=SYSTEM)
    data = TaskData(
        text="x", performer=shop.alice, order=order, order_set=True, customer=stranger, customer_set=True
    )
    with pytest.raises(ValidationError) as error:
        create_task(data, actor=SYSTEM)
    assert "order" in error.value.message_dict
