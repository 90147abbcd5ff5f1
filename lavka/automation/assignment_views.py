"""Settings → Assignment rules (admin only, 404 for anyone else): the list, create / edit, enable /
disable. The form reads and types the input; `assignment_actions` validates and saves."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from lavka.accounts.models import Team, User
from lavka.automation import assignment_actions as actions
from lavka.automation.assignment_actions import MAX_CAPACITY, MAX_POSITION, AssignmentRuleData
from lavka.automation.models import AssignmentRule
from lavka.core.actor import actor_of
from lavka.core.forms import MAX_ID, VisibleChoiceField, apply_errors
from lavka.core.models import Site
from lavka.core.views import admin_only
from lavka.orders.models import OrderMethod, OrderType


class RowsField(forms.ModelMultipleChoiceField):
    """Several rows by id: anything but plausible ids is refused here, never sent to the database."""

    def _check_values(self, value: Any) -> Any:
        for pk in value:
            text = str(pk).strip()
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                )
        return super()._check_values(value)


class AssignmentRuleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    strategy = forms.ChoiceField(
        label=gettext_lazy("How to choose"),
        choices=AssignmentRule.Strategy.choices,
        help_text=gettext_lazy(
            "In turn: each manager gets the next order. Least loaded: the one with the fewest open orders"
            " and tasks. The customer's manager: their responsible manager (or the manager of their last"
            " order) when working, else in turn."
        ),
    )
    is_active = forms.BooleanField(label=gettext_lazy("Enabled"), required=False)
    is_default = forms.BooleanField(
        label=gettext_lazy("Default rule"),
        required=False,
        help_text=gettext_lazy("Used for orders no other rule matches; its filters are not consulted."),
    )
    position = forms.IntegerField(
        label=gettext_lazy("Position"),
        min_value=0,
        max_value=MAX_POSITION,
        help_text=gettext_lazy("Rules are tried from the lowest position; the first that matches applies."),
    )
    sites = RowsField(
        label=gettext_lazy("Sites"),
        queryset=Site.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None chosen: any."),
    )
    order_types = forms.MultipleChoiceField(
        label=gettext_lazy("Order types"), required=False, widget=forms.CheckboxSelectMultiple
    )
    order_methods = forms.MultipleChoiceField(
        label=gettext_lazy("Order methods"), required=False, widget=forms.CheckboxSelectMultiple
    )
    team = VisibleChoiceField(
        label=gettext_lazy("Team"),
        queryset=Team.objects.all(),
        required=False,
        help_text=gettext_lazy("Its members take the orders; no team: the managers chosen below."),
    )
    users = RowsField(
        label=gettext_lazy("Managers"),
        queryset=User.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None chosen (and no team): every active manager of the order's site."),
    )
    max_open = forms.IntegerField(
        label=gettext_lazy("Capacity"),
        min_value=1,
        max_value=MAX_CAPACITY,
        required=False,
        help_text=gettext_lazy("Open orders a manager may hold; empty: no limit."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Codes of the reference books, read per request (a shop adds its own).
        self.fields["order_types"].choices = list(OrderType.objects.values_list("code", "name"))
        self.fields["order_methods"].choices = list(OrderMethod.objects.values_list("code", "name"))

    @classmethod
    def initial_for(cls, rule: AssignmentRule | None) -> dict[str, Any]:
        if rule is None:
            return {"is_active": True, "position": 100, "strategy": AssignmentRule.Strategy.ROUND_ROBIN}
        return {
            "name": rule.name,
            "strategy": rule.strategy,
            "is_active": rule.is_active,
            "is_default": rule.is_default,
            "position": rule.position,
            "sites": list(rule.sites.all()),
            "order_types": rule.order_types,
            "order_methods": rule.order_methods,
            "team": rule.team,
            "users": list(rule.users.all()),
            "max_open": rule.max_open,
        }

    def data_for_action(self) -> AssignmentRuleData:
        values = dict(self.cleaned_data)
        values["sites"] = list(values["sites"])
        values["users"] = list(values["users"])
        return AssignmentRuleData(**values)


def _among(rule: AssignmentRule) -> str:
    if rule.team_id:
        return _("team %(name)s") % {"name": rule.team}
    users = [str(u) for u in rule.users.all()]
    return ", ".join(users) if users else _("the site's managers")


def _filters(rule: AssignmentRule) -> str:
    parts = [site.code for site in rule.sites.all()] + list(rule.order_types) + list(rule.order_methods)
    return ", ".join(parts) if parts else _("any order")


@admin_only
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = AssignmentRule.objects.select_related("team", "last_user").prefetch_related("sites", "users")
    rows = [(rule, _filters(rule), _among(rule)) for rule in rules]
    return render(request, "automation/assignment_list.html", {"nav": "settings", "rows": rows})


@admin_only
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AssignmentRule, pk=pk) if pk else None
    form = AssignmentRuleForm(request.POST or None, initial=AssignmentRuleForm.initial_for(rule))
    if request.method == "POST" and form.is_valid():
        try:
            rule = actions.save_assignment_rule(rule, form.data_for_action(), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            messages.success(request, _("Assignment rule saved."))
            return redirect("assignment:list")
    context = {
        "nav": "settings",
        "title": str(rule) if rule else _("New assignment rule"),
        "form": form,
        "rule": rule,
    }
    return render(request, "automation/assignment_form.html", context, status=400 if form.errors else 200)


@admin_only
@require_POST
def rule_state(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AssignmentRule, pk=pk)
    state = request.POST.get("state")
    if state == "on":
        actions.enable_assignment_rule(rule, actor=actor_of(request))
        messages.success(request, _("Assignment rule enabled."))
    elif state == "off":
        actions.disable_assignment_rule(rule, actor=actor_of(request))
        messages.success(request, _("Assignment rule switched off."))
    return redirect("assignment:list")
