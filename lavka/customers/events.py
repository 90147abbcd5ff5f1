from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class CustomerCreated(DomainEvent):
    type = "customers.created"
    customer_id: int
    site: str


@dataclass(frozen=True)
class CustomerUpdated(DomainEvent):
    type = "customers.updated"
    customer_id: int
    site: str
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CustomerManagerChanged(DomainEvent):
    type = "customers.manager_changed"
    customer_id: int
    site: str
    old_manager_id: int | None
    new_manager_id: int | None


@dataclass(frozen=True)
class CustomersMerged(DomainEvent):
    type = "customers.merged"
    customer_id: int  # the survivor
    site: str
    merged_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CorporateCustomerCreated(DomainEvent):
    type = "customers.corporate_created"
    corporate_id: int
    site: str


@dataclass(frozen=True)
class CorporateCustomerUpdated(DomainEvent):
    """Fields, addresses, companies, contacts or notes of a corporate customer changed."""

    type = "customers.corporate_updated"
    corporate_id: int
    site: str
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CorporateManagerChanged(DomainEvent):
    type = "customers.corporate_manager_changed"
    corporate_id: int
    site: str
    old_manager_id: int | None
    new_manager_id: int | None
