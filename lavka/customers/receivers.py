from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.customers import actions
from lavka.orders.events import moves_order_figures


@receiver(
    "orders.created",
    "orders.updated",
    "orders.status_changed",
    "orders.payment_added",
    name="customers.refresh_stats",
    applies=moves_order_figures,  # a comment, a contact detail, a payment…: the figures stay
)
def refresh_customer_stats(event: OutboxEvent) -> None:
    customer_id = event.payload.get("customer_id")
    if customer_id:
        actions.refresh_stats(customer_id)
