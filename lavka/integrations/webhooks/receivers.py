from lavka.core.events import receiver
from lavka.core.jobs import enqueue
from lavka.core.models import OutboxEvent
from lavka.integrations.webhooks import actions
from lavka.integrations.webhooks.catalogue import EVENT_TYPES


# Registered on the catalogue's types rather than "*", and skipped for types no active subscription
# wants: an event nobody subscribed to costs the dispatcher nothing.
@receiver(*EVENT_TYPES, name="webhooks.fanout", wanted=actions.subscribed_types)
def fanout(event: OutboxEvent) -> None:
    """Record the event's deliveries; the dispatcher commits them exactly once with its ReceiverDelivery."""
    ids = actions.create_deliveries(event)
    if ids:
        enqueue(actions.SEND_DELIVERIES, *ids)
