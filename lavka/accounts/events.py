from dataclasses import dataclass

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class PresenceChanged(DomainEvent):
    """A staff member switched between working, busy and absent (top bar, API `users/{id}/status`)."""

    type = "accounts.presence_changed"
    user_id: int
    old_presence: str
    new_presence: str
