"""Reactions to other apps' events; they call this app's actions."""

from lavka.core.events import receiver
from lavka.core.models import OutboxEvent
from lavka.tasks import actions


@receiver("telephony.call_missed", name="tasks.callback_for_missed_call")
def callback_for_missed_call(event: OutboxEvent) -> None:
    """A missed inbound call owes the customer a call back: one task per call, however often the event
    comes (the task's key is unique)."""
    call_id = event.payload.get("call_id")
    if call_id:
        actions.create_callback_task(int(call_id))
