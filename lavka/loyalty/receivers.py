"""Reactions to other apps' events: a completed order earns its customer bonuses."""

from lavka.core.actor import Actor
from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.loyalty import actions
from lavka.loyalty.models import LoyaltyProgram
from lavka.orders.choices import Group
from lavka.orders.models import Order

ACCRUING = ("orders.status_changed", "orders.created")


def _accruing_now() -> set[str]:
    """Nothing to accrue while no programme is active: the dispatcher then skips the receiver."""
    return set(ACCRUING) if LoyaltyProgram.objects.filter(active=True).exists() else set()


@receiver(*ACCRUING, name="loyalty.accrue", wanted=_accruing_now)
def accrue(event: OutboxEvent) -> None:
    """Credit bonuses when an order reaches the "complete" group (an order may also be created
    complete through the API). The action checks the order's status at the time it runs and credits
    each order at most once, so a late or repeated event does no harm."""
    payload = event.payload
    if event.type == "orders.status_changed" and payload.get("new_group") != Group.COMPLETE:
        return
    order = Order.objects.filter(pk=payload.get("order_id")).first()
    if order is not None:
        actions.accrue_for_order(order, actor=Actor.system("loyalty"))
