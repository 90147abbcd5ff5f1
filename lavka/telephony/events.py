from dataclasses import dataclass

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class CallStarted(DomainEvent):
    type = "telephony.call_started"
    call_id: int
    site: str | None
    direction: str
    phone: str
    manager_id: int | None
    customer_id: int | None
    order_id: int | None


@dataclass(frozen=True)
class CallFinished(DomainEvent):
    type = "telephony.call_finished"
    call_id: int
    site: str | None
    direction: str
    phone: str
    result: str
    duration: int
    manager_id: int | None
    customer_id: int | None
    order_id: int | None


@dataclass(frozen=True)
class CallMissed(DomainEvent):
    """An incoming call nobody answered; emitted after its `telephony.call_finished`."""

    type = "telephony.call_missed"
    call_id: int
    site: str | None
    phone: str
    manager_id: int | None
    customer_id: int | None
    order_id: int | None
