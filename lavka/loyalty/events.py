from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class ProgramSaved(DomainEvent):
    type = "loyalty.program_saved"
    program_id: int
    created: bool
    sites: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccountCreated(DomainEvent):
    type = "loyalty.account_created"
    account_id: int
    program_id: int
    customer_id: int
    site: str
    active: bool


@dataclass(frozen=True)
class AccountUpdated(DomainEvent):
    type = "loyalty.account_updated"
    account_id: int
    customer_id: int
    site: str
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccountActivated(DomainEvent):
    type = "loyalty.account_activated"
    account_id: int
    customer_id: int
    site: str


@dataclass(frozen=True)
class LevelChanged(DomainEvent):
    type = "loyalty.level_changed"
    account_id: int
    customer_id: int
    site: str
    old_level_id: int | None
    new_level_id: int | None


@dataclass(frozen=True)
class BonusCredited(DomainEvent):
    type = "loyalty.bonus_credited"
    account_id: int
    customer_id: int
    site: str
    operation_id: int
    operation_type: str  # credit_manual | credit_for_order
    amount: str
    activation_date: str  # ISO date
    expire_date: str | None
    order_id: int | None


@dataclass(frozen=True)
class BonusCharged(DomainEvent):
    type = "loyalty.bonus_charged"
    account_id: int
    customer_id: int
    site: str
    operation_id: int
    operation_type: str  # charge_manual | charge_for_order
    amount: str  # positive: how many bonuses were taken
    order_id: int | None


@dataclass(frozen=True)
class BonusCancelled(DomainEvent):
    type = "loyalty.bonus_cancelled"
    account_id: int
    customer_id: int
    site: str
    operation_id: int
    operation_type: str  # cancel_of_charge | cancel_of_credit
    cancelled_operation_id: int
    amount: str  # signed, as in the ledger
    order_id: int | None


@dataclass(frozen=True)
class BonusExpired(DomainEvent):
    type = "loyalty.bonus_expired"
    account_id: int
    customer_id: int
    site: str
    operation_id: int
    lot_operation_id: int
    amount: str  # negative: what burnt
