"""The only writers of Segment and SegmentMember (DESIGN.md §6): each action writes the change, its
history (entity `segment`) and its event in one transaction.

A frozen segment's members are taken by one `INSERT … SELECT` from the compiled query, however many
customers it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from lavka.analytics.models import Segment, SegmentMember
from lavka.analytics.segments import compiler
from lavka.analytics.segments.events import SegmentDeleted, SegmentFrozen, SegmentSaved
from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.validation import clean_text

ENTITY = "segment"
TRACKED_FIELDS = {
    "name": "name",
    "code": "code",
    "description": "description",
    "site_id": "site",
    "kind": "kind",
    "definition": "definition",
}


@dataclass
class SegmentData:
    """What a form may set on a segment; None means "leave as it is" (`site` may be cleared: `site_set`)."""

    name: str | None = None
    code: str | None = None
    description: str | None = None
    site: Site | None = None
    site_set: bool = False
    kind: str | None = None
    definition: Any = None


def _apply(segment: Segment, data: SegmentData) -> None:
    errors: dict[str, list[str]] = {}

    def check(name: str, clean: Any) -> None:
        try:
            clean()
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)

    if data.name is not None:
        check("name", lambda: setattr(segment, "name", clean_text(data.name, "name", 255)))
    if not segment.name:
        errors["name"] = [_("This field is required.")]
    if data.description is not None:
        check(
            "description",
            lambda: setattr(segment, "description", clean_text(data.description, "description", 5000)),
        )
    if data.code is not None:
        check("code", lambda: _set_code(segment, data.code or ""))
    if data.site_set:
        segment.site = data.site
    if data.kind is not None:
        if data.kind not in Segment.Kind.values:
            errors["kind"] = [_("Choose dynamic or frozen.")]
        else:
            segment.kind = data.kind
    if data.definition is not None:
        try:
            segment.definition = compiler.normalize(data.definition)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(f"definition.{key}", []).extend(messages)
    if errors:
        raise ValidationError(errors)
    if not segment.code:
        segment.code = _free_code(slugify(segment.name) or "segment")


def _set_code(segment: Segment, raw: str) -> None:
    code = clean_text(raw, "code", 64)
    if not code:
        segment.code = ""
        return
    try:
        validate_slug(code)
    except ValidationError:
        raise ValidationError({"code": [_("Latin letters, digits, hyphens and underscores only.")]}) from None
    if Segment.objects.filter(code=code).exclude(pk=segment.pk).exists():
        raise ValidationError({"code": [_("Another segment has this code.")]})
    segment.code = code


def _free_code(base: str) -> str:
    base = base[:56]
    taken = set(Segment.objects.filter(code__startswith=base).values_list("code", flat=True))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def _save(segment: Segment) -> None:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:  # someone took the code between the check and the save
        raise ValidationError({"code": [_("Another segment has this code.")]}) from None


def _snapshot(segment: Segment) -> int:
    """Replace the members by the customers the definition selects now; how many there are."""
    SegmentMember.objects.filter(segment_id=segment.pk).delete()
    chosen = compiler.matching(segment.definition, site_id=segment.site_id).order_by()
    ids = chosen.annotate(member=F("pk")).values("member")
    sql, params = ids.query.sql_with_params()
    table = connection.ops.quote_name(SegmentMember._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment_id, customer_id) SELECT %s, chosen.member FROM ({sql}) chosen",
            [segment.pk, *params],
        )
        return cursor.rowcount


def _members(segment: Segment) -> dict[str, Any] | None:
    """A snapshot as history records it: how many, taken when."""
    if segment.frozen_at is None:
        return None
    return {"count": segment.last_count, "frozen_at": segment.frozen_at.isoformat()}


def _count(segment: Segment, actor: Actor, *, old_members: dict[str, Any] | None = None) -> None:
    """Store the count; for a frozen segment, take the snapshot (recorded in history, with an event)."""
    now = timezone.now()
    if segment.kind == Segment.Kind.FROZEN:
        members = _snapshot(segment)
        segment.frozen_at, segment.last_count = now, members
        history.write([Change(ENTITY, segment.pk, "members", old_members, _members(segment))], actor)
        events.emit(SegmentFrozen(segment.pk, segment.code, members), actor=actor)
    else:
        members = compiler.count(segment)
    segment.last_count, segment.counted_at = members, now
    segment.save(update_fields=["frozen_at", "last_count", "counted_at"])


def _snapshot_values(segment: Segment) -> dict[str, Any]:
    return history.snapshot(segment, TRACKED_FIELDS)


@transaction.atomic
def create_segment(data: SegmentData, *, actor: Actor) -> Segment:
    now = timezone.now()
    segment = Segment(created_at=now, updated_at=now, created_by=actor.user, definition={})
    _apply(segment, data)
    _save(segment)
    changes = [Change(ENTITY, segment.pk, "id", None, segment.pk, created=True)]
    changes += [
        Change(ENTITY, segment.pk, name, None, value, created=True)
        for name, value in _snapshot_values(segment).items()
        if value not in (None, "", {})
    ]
    history.write(changes, actor)
    events.emit(SegmentSaved(segment.pk, segment.code, segment.kind, created=True), actor=actor)
    _count(segment, actor)
    return segment


@transaction.atomic
def update_segment(segment: Segment, data: SegmentData, *, actor: Actor) -> Segment:
    """Change a segment. A frozen one takes its snapshot again when its definition, site or kind
    changed; one that becomes dynamic drops its members."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    before = _snapshot_values(segment)
    old_members = _members(segment) if segment.kind == Segment.Kind.FROZEN else None
    _apply(segment, data)
    segment.updated_at = timezone.now()
    if segment.kind == Segment.Kind.DYNAMIC:
        segment.frozen_at = None
    _save(segment)
    changes = history.diff(ENTITY, segment.pk, before, _snapshot_values(segment))
    if not changes:
        return segment
    history.write(changes, actor)
    names = sorted(c.field for c in changes)
    events.emit(SegmentSaved(segment.pk, segment.code, segment.kind, fields=names), actor=actor)
    if segment.kind == Segment.Kind.DYNAMIC and before["kind"] == Segment.Kind.FROZEN:
        SegmentMember.objects.filter(segment_id=segment.pk).delete()
    if segment.kind == Segment.Kind.DYNAMIC or {"definition", "site", "kind"} & set(names):
        _count(segment, actor, old_members=old_members)
    return segment


@transaction.atomic
def freeze_segment(segment: Segment, *, actor: Actor) -> Segment:
    """Make the segment frozen with the customers it selects now."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.kind == Segment.Kind.FROZEN:
        return refresh_segment(segment, actor=actor)
    return update_segment(segment, SegmentData(kind=Segment.Kind.FROZEN), actor=actor)


@transaction.atomic
def refresh_segment(segment: Segment, *, actor: Actor) -> Segment:
    """A dynamic segment: count it again. A frozen one: take its snapshot again."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    _count(segment, actor, old_members=_members(segment))
    return segment


@transaction.atomic
def delete_segment(segment: Segment, *, actor: Actor) -> None:
    """Remove a segment and its members; its history keeps what it was."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    pk, code, snapshot = segment.pk, segment.code, _snapshot_values(segment)
    segment.delete()
    history.write([Change(ENTITY, pk, "deleted", snapshot, None)], actor)
    events.emit(SegmentDeleted(pk, code), actor=actor)
