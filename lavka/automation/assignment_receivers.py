"""When capacity frees up, the queue of unassigned orders moves: an order closes, a manager hands one
over, a manager starts working (presence, or the start of their working hours, which the minute job
notices). When a manager goes absent, their new, untouched work goes back to the queue first.

Imported at startup (AutomationConfig.ready) so that the receivers and the periodic job register.
"""

from __future__ import annotations

from lavka.accounts.models import User
from lavka.automation import assignment
from lavka.core.actor import Actor
from lavka.core.events import receiver
from lavka.core.jobs import periodic
from lavka.core.models import OutboxEvent
from lavka.orders.choices import Group

ACTOR = Actor.system("assignment")


@receiver("orders.status_changed", name="automation.assignment.order_closed")
def order_closed(event: OutboxEvent) -> None:
    if event.payload.get("new_group") in Group.CLOSED:
        assignment.fill_queue(actor=ACTOR)


@receiver("orders.manager_changed", name="automation.assignment.order_handed_over")
def order_handed_over(event: OutboxEvent) -> None:
    # Someone lost an order (reassigned or unassigned): they may have room, or the order needs a seat.
    if event.payload.get("old_manager_id") is not None:
        assignment.fill_queue(actor=ACTOR)


@receiver("accounts.presence_changed", name="automation.assignment.presence_changed")
def presence_changed(event: OutboxEvent) -> None:
    new = event.payload.get("new_presence")
    if new == User.Presence.ABSENT:
        assignment.release_untouched(event.payload["user_id"], actor=ACTOR)
        assignment.fill_queue(actor=ACTOR)
    elif new == User.Presence.WORKING:
        assignment.fill_queue(actor=ACTOR)


@periodic(60)
def fill_assignment_queue() -> int:
    """Every minute: working hours that have just begun leave no trace in the outbox, so look."""
    return assignment.fill_queue(actor=ACTOR)
