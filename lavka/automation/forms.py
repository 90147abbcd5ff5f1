"""The rule editor's form: fixed fields through a Django form, the ordered actions as numbered rows
(`actions-0-kind`, `actions-0-status` …), since each kind of action has fields of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.apps import apps
from django.utils.translation import gettext_lazy as _

from lavka.automation.actions import RuleData
from lavka.automation.effects import REGISTRY
from lavka.automation.triggers import TRIGGERS

MAX_ROWS = 20


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    trigger = forms.ChoiceField(label=_("When"))
    status = forms.ChoiceField(label=_("Status"), required=False)
    minutes = forms.IntegerField(label=_("Minutes"), required=False, min_value=1)
    days = forms.IntegerField(label=_("Days"), required=False, min_value=1)
    condition = forms.CharField(
        label=_("Only if"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "code"}),
        help_text=_('For example: order.total_summ >= 10000 and order.site == "shop". Empty: always.'),
    )
    position = forms.IntegerField(label=_("Order of evaluation"), initial=100, min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trigger"].choices = [(code, t.label) for code, t in TRIGGERS.items()]
        self.fields["status"].choices = [("", "—"), *status_choices()]


def status_choices() -> list[tuple[str, str]]:
    Status = apps.get_model("orders", "Status")
    return list(Status.objects.filter(is_active=True).values_list("code", "name"))


# The fields each kind of action shows, in order: (name, label, input kind).
ACTION_FIELDS: dict[str, list[tuple[str, Any, str]]] = {
    "change_status": [("status", _("Status"), "status")],
    "assign_manager": [("assignment_rule", _("Assignment rule"), "assignment_rule")],
    "create_task": [
        ("title", _("Task"), "text"),
        ("description", _("Description"), "textarea"),
        ("performer", _("For"), "performer"),
        ("due_minutes", _("Due in, minutes"), "number"),
        ("working_time", _("Count working time only"), "checkbox"),
    ],
    "add_tag": [("tag", _("Tag"), "text")],
    "add_comment": [("text", _("Comment"), "textarea")],
    "set_custom_field": [("code", _("Custom field"), "custom_field"), ("value", _("Value"), "text")],
    "call_webhook": [("url", _("URL"), "text"), ("secret", _("Secret (to sign with)"), "text")],
    "wait": [("minutes", _("Minutes"), "number"), ("recheck", _("Then go on only if"), "condition")],
}


@dataclass
class ActionRow:
    index: int
    kind: str
    params: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def inputs(self) -> list[dict[str, Any]]:
        rows = []
        for name, label, kind in ACTION_FIELDS.get(self.kind, []):
            value = self.params.get(name)
            rows.append(
                {
                    "name": f"actions-{self.index}-{name}",
                    "label": label,
                    "kind": kind,
                    "value": "" if value is None else value,
                    "choices": _choices(kind),
                    "errors": self.errors.get(name, []),
                }
            )
        return rows


def _choices(kind: str) -> list[tuple[Any, str]]:
    if kind == "status":
        return status_choices()
    if kind == "assignment_rule":
        AssignmentRule = apps.get_model("automation", "AssignmentRule")
        return [("", _("The default rule")), *AssignmentRule.objects.values_list("pk", "name")]
    if kind == "performer":
        User = apps.get_model("accounts", "User")
        people = [(u.pk, u.get_full_name() or u.username) for u in User.objects.filter(is_active=True)]
        return [("manager", _("The order's manager")), ("supervisor", _("The manager's supervisor")), *people]
    if kind == "custom_field":
        CustomField = apps.get_model("core", "CustomField")
        return list(CustomField.objects.values_list("code", "name"))
    return []


def kind_choices() -> list[tuple[str, Any]]:
    return [(kind, effect.label) for kind, effect in REGISTRY.items()]


def action_rows(data: Any) -> list[ActionRow]:
    """The rows a POST carries (rows whose kind is empty are dropped: that is how one is removed)."""
    rows = []
    for index in range(MAX_ROWS):
        kind = data.get(f"actions-{index}-kind")
        if kind is None:
            continue
        if not kind:
            continue
        params: dict[str, Any] = {}
        for name, _label, input_kind in ACTION_FIELDS.get(kind, []):
            raw = data.get(f"actions-{index}-{name}")
            if input_kind == "checkbox":
                params[name] = raw in ("on", "true", "1")
            elif raw not in (None, ""):
                params[name] = raw
        rows.append(ActionRow(len(rows), kind, params))
    return rows


def rule_data(form: RuleForm, rows: list[ActionRow]) -> RuleData:
    data = form.cleaned_data
    trigger = TRIGGERS.get(data.get("trigger") or "")
    params = {}
    if trigger is not None:
        params = {name: data.get(name) for name in trigger.params if data.get(name) not in (None, "")}
    return RuleData(
        name=data.get("name") or "",
        description=data.get("description") or "",
        trigger=data.get("trigger") or "",
        trigger_params=params,
        condition=data.get("condition") or "",
        actions=[(row.kind, row.params) for row in rows],
        position=data.get("position") if data.get("position") is not None else 100,
    )
