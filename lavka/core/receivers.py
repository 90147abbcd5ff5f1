from lavka.core import events
from lavka.core.models import EventTrace, OutboxEvent

TRACE = "core.trace"


def trace(event: OutboxEvent) -> None:
    """Write one row per call; with ReceiverDelivery it proves each event ran once per receiver."""
    from lavka.core.dispatcher import current_worker

    EventTrace.objects.create(event_id=event.pk, type=event.type, worker=current_worker())


def enable_trace() -> None:
    events.receiver(events.ANY, name=TRACE)(trace)
