from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class IntegrationModuleSaved(DomainEvent):
    """A store plugin or service registered or changed its integration module."""

    type = "integrations.module_saved"
    module_id: int
    code: str
    created: bool
    fields: list[str] = field(default_factory=list)
