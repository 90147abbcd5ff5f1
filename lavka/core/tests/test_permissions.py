"""The scope matrix, on querysets (views and exports filter through the same helpers)."""

from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.orders.models import Order


def order_for(shop, creator, manager=None):
    return create_order(
        shop.site,
        OrderData(
            new_customer=CustomerData(first_name=creator.username),
            items=[ItemData(offer_id=shop.tea.pk)],
            manager=manager,
            manager_set=manager is not None,
        ),
        actor=shop.actor(creator),
    )


def visible(user):
    return set(Order.objects.visible_to(user).values_list("pk", flat=True))


def test_order_scope_matrix(shop):
    alices = order_for(shop, shop.alice, manager=shop.alice)
    bobs = order_for(shop, shop.bob, manager=shop.bob)
    queue = order_for(shop, shop.supervisor)
    by_operator = order_for(shop, shop.operator, manager=shop.bob)
    everything = {alices.pk, bobs.pk, queue.pk, by_operator.pk}

    assert visible(shop.alice) == {alices.pk, queue.pk}
    assert visible(shop.bob) == {bobs.pk, queue.pk, by_operator.pk}
    assert visible(shop.supervisor) == everything
    assert visible(shop.admin) == everything
    assert visible(shop.operator) == {queue.pk, by_operator.pk}
    assert visible(shop.outsider) == set()


def test_inactive_user_sees_nothing(shop):
    order_for(shop, shop.alice, manager=shop.alice)
    shop.alice.is_active = False
    assert visible(shop.alice) == set()


def test_customer_scope(shop):
    mine = create_customer(
        shop.site,
        CustomerData(first_name="Мой", manager=shop.alice, manager_set=True),
        actor=shop.actor(shop.alice),
    )
    bobs = create_customer(
        shop.site,
        CustomerData(first_name="Боба", manager=shop.bob, manager_set=True),
        actor=shop.actor(shop.bob),
    )
    unassigned = create_customer(shop.site, CustomerData(first_name="Ничей"), actor=shop.actor(shop.bob))
    # Alice works an order of Bob's customer: she may open that customer's card.
    create_order(
        shop.site,
        OrderData(customer=bobs, items=[], manager=shop.alice, manager_set=True),
        actor=shop.actor(shop.supervisor),
    )

    def seen(user):
        return set(Customer.objects.visible_to(user).values_list("pk", flat=True))

    assert seen(shop.alice) == {mine.pk, bobs.pk, unassigned.pk}
    assert seen(shop.bob) == {bobs.pk, unassigned.pk}
    assert seen(shop.supervisor) == {mine.pk, bobs.pk, unassigned.pk}
    assert seen(shop.outsider) == set()
