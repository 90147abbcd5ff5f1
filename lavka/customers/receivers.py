from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.customers import actions
from lavka.orders.events import changes_order_figures


@receiver(
    "orders.created",
    "orders.updated",
    "orders.status_changed",
    "orders.payment_added",
    name="customers.refresh_stats",
)
def refresh_customer_stats(event: OutboxEvent) -> None:
    if event.type == "orders.updated" and not changes_order_figures(event.payload):
        return  # a comment, a contact detail, a payment…: the figures stay
    customer_id = event.payload.get("customer_id")
    if customer_id:
        actions.refresh_stats(customer_id)
