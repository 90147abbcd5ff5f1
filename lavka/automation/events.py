from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class TimerFired(DomainEvent):
    """A time-based trigger came due for one rule and one subject (once per anchor)."""

    type = "automation.timer"
    rule_id: int
    trigger: str  # "timer.order_in_status" …
    subject_type: str
    subject_id: int
    anchor: str  # ISO 8601: when the wait began (status entered, due time, last order)


@dataclass(frozen=True)
class RuleSaved(DomainEvent):
    type = "automation.rule_saved"
    rule_id: int
    created: bool
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleSwitched(DomainEvent):
    type = "automation.rule_switched"
    rule_id: int
    is_active: bool
