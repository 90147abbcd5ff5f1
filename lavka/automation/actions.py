"""The only writers of rules (DESIGN.md §6): checked, saved with their history and event together.

A rule is checked when it is saved, not when it runs: the trigger and its settings, the condition
against the fields of the trigger's subject (with the position of a mistake), and each action's
parameters, so that a saved rule does not fail on the first event for a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.automation import conditions
from lavka.automation.effects import REGISTRY
from lavka.automation.events import RuleSaved, RuleSwitched
from lavka.automation.models import Rule, RuleAction
from lavka.automation.triggers import TRIGGERS
from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.validation import clean_text

ENTITY = "rule"
MAX_ACTIONS = 20
TRACKED_FIELDS = {
    "name": "name",
    "description": "description",
    "trigger": "trigger",
    "trigger_params": "trigger_params",
    "condition": "condition",
    "position": "position",
}


@dataclass
class RuleData:
    name: str
    trigger: str
    condition: str = ""
    trigger_params: dict[str, Any] = field(default_factory=dict)
    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, params) in order
    description: str = ""
    position: int = 100


def _clean_trigger(code: str, params: dict[str, Any]) -> dict[str, Any]:
    trigger = TRIGGERS.get(code)
    if trigger is None:
        raise ValidationError({"trigger": _("Unknown trigger “%(code)s”.") % {"code": code}})
    params = params if isinstance(params, dict) else {}
    cleaned: dict[str, Any] = {}
    if "status" in trigger.params:
        status = str(params.get("status") or "").strip()
        if not apps.get_model("orders", "Status").objects.filter(code=status).exists():
            raise ValidationError(
                {"trigger_params.status": _("Unknown status “%(code)s”.") % {"code": status}}
            )
        cleaned["status"] = status
    for name, limit in (("minutes", 60 * 24 * 90), ("days", 3650)):
        if name in trigger.params:
            try:
                number = int(str(params.get(name)))
            except ValueError:
                raise ValidationError({f"trigger_params.{name}": _("Enter a whole number.")}) from None
            if not 1 <= number <= limit:
                raise ValidationError(
                    {f"trigger_params.{name}": _("Enter a number from 1 to %(n)d.") % {"n": limit}}
                )
            cleaned[name] = number
    return cleaned


def _clean_actions(subject: str, given: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    if not given:
        raise ValidationError({"actions": _("Add at least one action.")})
    if len(given) > MAX_ACTIONS:
        raise ValidationError({"actions": _("At most %(n)d actions.") % {"n": MAX_ACTIONS}})
    cleaned = []
    for index, (kind, params) in enumerate(given):
        effect = REGISTRY.get(kind)
        if effect is None:
            raise ValidationError({f"actions.{index}.kind": _("Unknown action “%(kind)s”.") % {"kind": kind}})
        if subject not in effect.subjects:
            raise ValidationError({f"actions.{index}.kind": _("This action does not apply to this trigger.")})
        try:
            params = effect.clean(params if isinstance(params, dict) else {})
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise ValidationError(
                    {f"actions.{index}.{name}": errors for name, errors in exc.error_dict.items()}
                ) from None
            raise ValidationError({f"actions.{index}": exc.messages}) from None
        if kind == "wait" and params.get("recheck"):
            conditions.check(params["recheck"], subject, field_name=f"actions.{index}.recheck")
        cleaned.append((kind, params))
    return cleaned


def _clean(data: RuleData) -> dict[str, Any]:
    trigger_params = _clean_trigger(data.trigger, data.trigger_params)
    subject = TRIGGERS[data.trigger].subject
    condition = (data.condition or "").strip()
    if condition:
        conditions.check(condition, subject, field_name="condition")
    return {
        "name": clean_text(data.name, "name", 200) or _required("name"),
        "description": clean_text(data.description or "", "description", 5000),
        "trigger": data.trigger,
        "trigger_params": trigger_params,
        "condition": condition,
        "position": data.position,
        "actions": _clean_actions(subject, data.actions),
    }


def _required(name: str) -> str:
    raise ValidationError({name: _("This field is required.")})


def check_rule(data: RuleData) -> None:
    """Raise the ValidationError saving `data` would raise (the editor validates as you type)."""
    _clean(data)


@transaction.atomic
def save_rule(rule: Rule | None, data: RuleData, *, actor: Actor) -> Rule:
    """Create (rule=None) or change a rule; its actions are replaced by `data.actions`."""
    values = _clean(data)
    steps = values.pop("actions")
    created = rule is None
    if created:
        rule = Rule(created_by=actor.user)
        before: dict[str, Any] = {}
        old_steps: list[list[Any]] = []
    else:
        rule = Rule.objects.select_for_update().get(pk=rule.pk)
        before = history.snapshot(rule, TRACKED_FIELDS)
        old_steps = [[a.kind, a.params] for a in rule.actions.order_by("position")]
    for name, value in values.items():
        setattr(rule, name, value)
    rule.save()
    rule.actions.all().delete()
    RuleAction.objects.bulk_create(
        [
            RuleAction(rule=rule, position=i, kind=kind, params=params)
            for i, (kind, params) in enumerate(steps)
        ]
    )
    new_steps = [[kind, params] for kind, params in steps]
    after = history.snapshot(rule, TRACKED_FIELDS)
    if created:
        changes = [
            Change(ENTITY, rule.pk, name, None, value, created=True) for name, value in after.items() if value
        ]
        changes.append(Change(ENTITY, rule.pk, "actions", None, new_steps, created=True))
    else:
        changes = history.diff(ENTITY, rule.pk, before, after)
        if old_steps != new_steps:
            changes.append(Change(ENTITY, rule.pk, "actions", old_steps, new_steps))
    history.write(changes, actor)
    events.emit(RuleSaved(rule.pk, created, sorted({c.field for c in changes})), actor=actor)
    return rule


@transaction.atomic
def set_rule_active(rule: Rule, active: bool, *, actor: Actor) -> Rule:
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    if rule.is_active == active:
        return rule
    if active:  # what was valid when saved may have gone since (a deleted status, a custom field)
        check_rule(rule_data(rule))
    history.write([Change(ENTITY, rule.pk, "is_active", rule.is_active, active)], actor)
    rule.is_active = active
    rule.save(update_fields=["is_active", "updated_at"])
    events.emit(RuleSwitched(rule.pk, active), actor=actor)
    return rule


def rule_data(rule: Rule) -> RuleData:
    return RuleData(
        name=rule.name,
        description=rule.description,
        trigger=rule.trigger,
        trigger_params=dict(rule.trigger_params or {}),
        condition=rule.condition,
        actions=[(a.kind, dict(a.params or {})) for a in rule.actions.order_by("position")],
        position=rule.position,
    )


EXPORT_VERSION = 1


def export_rules(rules: list[Rule]) -> dict[str, Any]:
    """A JSON-ready document of the rules, for version control or another shop."""
    return {
        "lavka_rules": EXPORT_VERSION,
        "rules": [
            {
                "name": data.name,
                "description": data.description,
                "enabled": rule.is_active,
                "position": data.position,
                "trigger": data.trigger,
                "trigger_params": data.trigger_params,
                "condition": data.condition,
                "actions": [{"kind": kind, "params": params} for kind, params in data.actions],
            }
            for rule in rules
            for data in [rule_data(rule)]
        ],
    }


@transaction.atomic
def import_rules(document: Any, *, actor: Actor) -> list[Rule]:
    """Create or update (by name) the rules of an exported document; all of them or none.

    Errors name the rule: `rules.2.condition: …`.
    """
    if not isinstance(document, dict) or document.get("lavka_rules") != EXPORT_VERSION:
        raise ValidationError({"file": _("Not a Lavka rules file (version %(v)d).") % {"v": EXPORT_VERSION}})
    entries = document.get("rules")
    if not isinstance(entries, list):
        raise ValidationError({"rules": _("Expected a list of rules.")})
    saved = []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ValidationError({"": _("Expected a rule.")})
            data = RuleData(
                name=str(entry.get("name") or ""),
                description=str(entry.get("description") or ""),
                trigger=str(entry.get("trigger") or ""),
                trigger_params=entry.get("trigger_params") or {},
                condition=str(entry.get("condition") or ""),
                actions=[
                    (str(a.get("kind")), a.get("params") or {}) if isinstance(a, dict) else ("", {})
                    for a in (entry.get("actions") or [])
                ],
                position=_position(entry.get("position")),
            )
            existing = Rule.objects.filter(name=data.name).order_by("id").first()
            rule = save_rule(existing, data, actor=actor)
            if bool(entry.get("enabled")) != rule.is_active:
                rule = set_rule_active(rule, bool(entry.get("enabled")), actor=actor)
        except ValidationError as exc:
            messages = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
            raise ValidationError(
                {f"rules.{index}.{name}".rstrip("."): errors for name, errors in messages.items()}
            ) from None
        saved.append(rule)
    return saved


def _position(value: Any) -> int:
    try:
        return max(0, min(int(str(value)), 10**6))
    except ValueError:
        return 100
