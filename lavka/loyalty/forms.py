"""Forms of the loyalty pages. They read and type the input; the actions validate the rules and save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lavka.core.forms import IdField
from lavka.core.models import Site
from lavka.loyalty.actions import LevelData, ProgramData
from lavka.loyalty.models import LoyaltyProgram

MAX_MONEY = 999_999_999_999
EXTRA_LEVELS = 2


class ProgramForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=255)
    sites = forms.ModelMultipleChoiceField(
        label=_("Sites"), queryset=Site.objects.all(), widget=forms.CheckboxSelectMultiple
    )
    active = forms.BooleanField(label=_("Active"), required=False)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="RUB")
    max_charge_percent = forms.DecimalField(
        label=_("Share of an order payable by bonuses, %"),
        min_value=0,
        max_value=100,
        decimal_places=2,
        initial=100,
    )
    activation_delay_days = forms.IntegerField(
        label=_("Days before bonuses for an order can be spent"), min_value=0, max_value=3650, initial=0
    )
    expiry_days = forms.IntegerField(
        label=_("Days bonuses live"),
        min_value=0,
        max_value=3650,
        initial=0,
        help_text=_("0: bonuses never expire"),
    )

    @classmethod
    def for_program(cls, program: LoyaltyProgram | None, data: Any = None) -> ProgramForm:
        initial = {}
        if program is not None:
            initial = {
                "name": program.name,
                "sites": list(program.sites.all()),
                "active": program.active,
                "currency": program.currency,
                "max_charge_percent": program.max_charge_percent,
                "activation_delay_days": program.activation_delay_days,
                "expiry_days": program.expiry_days,
            }
        return cls(data, initial=initial)

    def program_data(self, levels: list[LevelData]) -> ProgramData:
        data = self.cleaned_data
        return ProgramData(
            name=data["name"],
            sites=list(data["sites"]),
            active=data["active"],
            currency=data["currency"],
            max_charge_percent=data["max_charge_percent"],
            activation_delay_days=data["activation_delay_days"],
            expiry_days=data["expiry_days"],
            levels=levels,
        )


class LevelForm(forms.Form):
    id = IdField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Level"), max_length=255, required=False)
    threshold = forms.DecimalField(
        label=_("From orders sum"), min_value=0, max_value=MAX_MONEY, decimal_places=2, required=False
    )
    percent = forms.DecimalField(
        label=_("Bonuses, % of a purchase"), min_value=0, max_value=100, decimal_places=2, required=False
    )

    def is_blank(self) -> bool:
        data = self.cleaned_data
        return not data.get("id") and not data.get("name") and data.get("threshold") is None

    def level_data(self) -> LevelData:
        data = self.cleaned_data
        return LevelData(
            data.get("name") or "", data.get("threshold"), data.get("percent"), id=data.get("id")
        )


LevelFormSet = forms.formset_factory(LevelForm, extra=0, can_delete=True, max_num=20, validate_max=True)


def level_formset(program: LoyaltyProgram | None, data: Any = None) -> Any:
    initial = []
    if program is not None:
        initial = [
            {"id": lv.pk, "name": lv.name, "threshold": lv.threshold, "percent": lv.percent}
            for lv in program.levels.all()
        ]
    if not initial:
        initial = [{"name": _("Base level"), "threshold": 0, "percent": 5}]
    formset = LevelFormSet(data, prefix="levels", initial=initial)
    formset.extra = EXTRA_LEVELS
    return formset


class EnrolForm(forms.Form):
    phone_number = forms.CharField(label=_("Phone"), max_length=40, required=False)
    card_number = forms.CharField(label=_("Card number"), max_length=64, required=False)
    activate = forms.BooleanField(label=_("Active at once"), required=False, initial=True)


class OperationForm(forms.Form):
    CREDIT, CHARGE = "credit", "charge"

    kind = forms.ChoiceField(
        label=_("Operation"), choices=[(CREDIT, _("Credit bonuses")), (CHARGE, _("Charge bonuses"))]
    )
    amount = forms.DecimalField(label=_("Amount"), min_value=0.01, max_value=MAX_MONEY, decimal_places=2)
    comment = forms.CharField(label=_("Comment"), max_length=1000, required=False)
