from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.customers import actions


@receiver(
    "orders.created",
    "orders.updated",
    "orders.status_changed",
    "orders.payment_added",
    name="customers.refresh_stats",
)
def refresh_customer_stats(event: OutboxEvent) -> None:
    customer_id = event.payload.get("customer_id")
    if customer_id:
        actions.refresh_stats(customer_id)
