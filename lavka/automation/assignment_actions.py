"""The only writers of assignment rules (the settings pages call these): each action validates, saves,
writes history (entity "assignment_rule") and emits `automation.assignment_rule_saved`, in one
transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.accounts.models import Team, User
from lavka.automation.models import AssignmentRule
from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.events import DomainEvent
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.validation import clean_text
from lavka.orders.models import OrderMethod, OrderType

ENTITY = "assignment_rule"
# Attribute → history field name.
TRACKED_FIELDS = {
    "name": "name",
    "strategy": "strategy",
    "is_active": "is_active",
    "is_default": "is_default",
    "position": "position",
    "order_types": "order_types",
    "order_methods": "order_methods",
    "team_id": "team",
    "max_open": "max_open",
}
MAX_POSITION = 1_000_000
MAX_CAPACITY = 100_000


@dataclass(frozen=True)
class AssignmentRuleSaved(DomainEvent):
    type = "automation.assignment_rule_saved"
    rule_id: int
    created: bool
    fields: list[str]  # history field names that changed ("is_active" alone for enable / disable)


@dataclass
class AssignmentRuleData:
    """What the settings form sets on a rule (all of it: the form shows every field)."""

    name: str = ""
    strategy: str = AssignmentRule.Strategy.ROUND_ROBIN
    is_active: bool = True
    is_default: bool = False
    position: int = 100
    sites: list[Site] = field(default_factory=list)
    order_types: list[str] = field(default_factory=list)
    order_methods: list[str] = field(default_factory=list)
    team: Team | None = None
    users: list[User] = field(default_factory=list)
    max_open: int | None = None


def _state(rule: AssignmentRule) -> dict[str, Any]:
    state = history.snapshot(rule, TRACKED_FIELDS)
    state["sites"] = sorted(rule.sites.values_list("code", flat=True))
    state["users"] = sorted(rule.users.values_list("pk", flat=True))
    return state


def _codes(model: Any, given: list[str], field_name: str) -> list[str]:
    if not isinstance(given, list) or not all(isinstance(code, str) for code in given):
        raise ValidationError({field_name: _("Choose values from the list.")})
    codes = list(dict.fromkeys(given))
    known = set(model.objects.filter(code__in=codes).values_list("code", flat=True))
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise ValidationError({field_name: _("Unknown value “%(code)s”.") % {"code": ", ".join(unknown)}})
    return codes


def _apply(rule: AssignmentRule, data: AssignmentRuleData) -> None:
    name = clean_text(data.name, "name", 200)
    if not name:
        raise ValidationError({"name": _("This field is required.")})
    if data.strategy not in AssignmentRule.Strategy.values:
        raise ValidationError({"strategy": _("Choose values from the list.")})
    if not 0 <= int(data.position) <= MAX_POSITION:
        raise ValidationError({"position": _("Enter a whole number from 0 to %(n)s.") % {"n": MAX_POSITION}})
    if data.max_open is not None and not 1 <= int(data.max_open) <= MAX_CAPACITY:
        raise ValidationError({"max_open": _("Enter a whole number from 1 to %(n)s.") % {"n": MAX_CAPACITY}})
    if any(not user.is_active for user in data.users):
        raise ValidationError({"users": _("This user is not active.")})
    rule.name, rule.strategy = name, data.strategy
    rule.is_active, rule.is_default = bool(data.is_active), bool(data.is_default)
    rule.position, rule.max_open = int(data.position), data.max_open
    rule.order_types = _codes(OrderType, data.order_types, "order_types")
    rule.order_methods = _codes(OrderMethod, data.order_methods, "order_methods")
    rule.team = data.team


def _record(rule: AssignmentRule, before: dict[str, Any] | None, actor: Actor) -> list[Change]:
    """History and the event for `rule` as it is now, against `before` (None: just created)."""
    after = _state(rule)
    if before is None:
        changes = [Change(ENTITY, rule.pk, "id", None, rule.pk, created=True)]
        changes += [
            Change(ENTITY, rule.pk, name, None, value, created=True)
            for name, value in after.items()
            if value not in (None, "", [], False)
        ]
    else:
        changes = history.diff(ENTITY, rule.pk, before, after)
    history.write(changes, actor)
    if changes:
        fields = sorted({c.field for c in changes} - {"id"})
        events.emit(AssignmentRuleSaved(rule.pk, before is None, fields), actor=actor)
    return changes


def _drop_other_defaults(rule: AssignmentRule, actor: Actor) -> None:
    """One default rule at a time: making a rule the default makes the previous one an ordinary rule."""
    for other in AssignmentRule.objects.select_for_update().filter(is_default=True).exclude(pk=rule.pk):
        before = _state(other)
        other.is_default = False
        other.save(update_fields=["is_default"])
        _record(other, before, actor)


@transaction.atomic
def save_assignment_rule(
    rule: AssignmentRule | None, data: AssignmentRuleData, *, actor: Actor
) -> AssignmentRule:
    """Create or change a rule; errors are ValidationError keyed by field name."""
    created = rule is None
    rule = AssignmentRule() if rule is None else AssignmentRule.objects.select_for_update().get(pk=rule.pk)
    before = None if created else _state(rule)
    _apply(rule, data)
    rule.save()
    rule.sites.set(data.sites)
    rule.users.set(data.users)
    if rule.is_default:
        _drop_other_defaults(rule, actor)
    _record(rule, before, actor)
    return rule


def _switch(rule: AssignmentRule, active: bool, actor: Actor) -> AssignmentRule:
    rule = AssignmentRule.objects.select_for_update().get(pk=rule.pk)
    if rule.is_active == active:
        return rule
    before = _state(rule)
    rule.is_active = active
    rule.save(update_fields=["is_active"])
    _record(rule, before, actor)
    return rule


@transaction.atomic
def enable_assignment_rule(rule: AssignmentRule, *, actor: Actor) -> AssignmentRule:
    return _switch(rule, True, actor)


@transaction.atomic
def disable_assignment_rule(rule: AssignmentRule, *, actor: Actor) -> AssignmentRule:
    """Switch off: orders are no longer given out by it (the default rule too)."""
    return _switch(rule, False, actor)
