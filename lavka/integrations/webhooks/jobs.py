"""Worker-side sending: queued right after an event or a replay, and a periodic sweep for retries."""

from django.db.models import Q

from lavka.core.jobs import periodic
from lavka.integrations.webhooks import conf, sender


def send_deliveries(*delivery_ids: int) -> int:
    """Send these deliveries if they are still due (a retry or another worker may have sent them)."""
    return sender.send_due(Q(pk__in=delivery_ids), limit=len(delivery_ids))


def send_subscription(subscription_id: int) -> int:
    """Send what a re-enabled subscription has waiting, a batch at a time; the sweep does the rest."""
    return sender.send_due(Q(subscription_id=subscription_id))


@periodic(conf.poll_seconds())
def send_retries() -> int:
    """Every delivery whose time has come: retries after a back-off, and claims of dead workers."""
    return sender.send_due()
