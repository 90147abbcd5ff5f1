"""Events of segments (documented in docs/segments.md)."""

from dataclasses import dataclass, field

from lavka.core.events import DomainEvent


@dataclass(frozen=True)
class SegmentSaved(DomainEvent):
    type = "analytics.segment_saved"
    segment_id: int
    code: str
    kind: str
    created: bool = False
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SegmentFrozen(DomainEvent):
    """A frozen segment took its snapshot of members (when saved so, or refreshed)."""

    type = "analytics.segment_frozen"
    segment_id: int
    code: str
    members: int


@dataclass(frozen=True)
class SegmentDeleted(DomainEvent):
    type = "analytics.segment_deleted"
    segment_id: int
    code: str
