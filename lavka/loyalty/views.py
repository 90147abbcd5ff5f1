"""Loyalty pages: Settings → Loyalty (admins), and the bonus panel of the customer card.

Programme pages answer 404 to anyone but an admin, like every settings page. The card's forms are
for whoever may see (and so edit) the customer: `Customer.objects.visible_to(user)`, 404 otherwise.
Every write goes through `loyalty.actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors
from lavka.core.permissions import can_manage_settings
from lavka.customers.models import Customer
from lavka.loyalty import actions, queries
from lavka.loyalty.actions import AccountData
from lavka.loyalty.forms import EnrolForm, OperationForm, ProgramForm, level_formset
from lavka.loyalty.models import LoyaltyProgram

# Action field → the form's label, for errors shown as messages on the card.
FIELD_LABELS = {
    "amount": gettext_lazy("Amount"),
    "comment": gettext_lazy("Comment"),
    "phone_number": gettext_lazy("Phone"),
    "card_number": gettext_lazy("Card number"),
}


def admin_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_manage_settings(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


# --- Settings → Loyalty ----------------------------------------------------------------------------------


@admin_only
def programs(request: HttpRequest) -> HttpResponse:
    rows = LoyaltyProgram.objects.prefetch_related("sites", "levels")
    table = [
        (
            reverse("loyalty:program_edit", args=[p.pk]),
            [
                p.name,
                ", ".join(s.code for s in p.sites.all()),
                " · ".join(f"{lv.name} {lv.percent.normalize():f}%" for lv in p.levels.all()),
                "✓" if p.active else "",
            ],
        )
        for p in rows
    ]
    context = {
        "nav": "settings",
        "title": _("Loyalty programmes"),
        "columns": [_("Name"), _("Sites"), _("Levels"), _("Active")],
        "table": table,
        "new_url": reverse("loyalty:program_new"),
    }
    return render(request, "settings/list.html", context)


@admin_only
def program_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    program = get_object_or_404(LoyaltyProgram, pk=pk) if pk else None
    data = request.POST if request.method == "POST" else None
    form = ProgramForm.for_program(program, data)
    levels = level_formset(program, data)
    if request.method == "POST" and form.is_valid() and levels.is_valid():
        rows = [f for f in levels.forms if not f.cleaned_data.get("DELETE") and not f.is_blank()]
        try:
            saved = actions.save_program(
                program, form.program_data([f.level_data() for f in rows]), actor=actor_of(request)
            )
        except ValidationError as exc:
            _level_errors(exc, form, rows)
        else:
            messages.success(request, _("Loyalty programme saved."))
            return redirect("loyalty:program_edit", pk=saved.pk)
    context = {
        "nav": "settings",
        "title": str(program) if program else _("New loyalty programme"),
        "form": form,
        "levels": levels,
        "program": program,
    }
    return render(
        request, "loyalty/program_form.html", context, status=400 if request.method == "POST" else 200
    )


def _level_errors(exc: ValidationError, form: ProgramForm, rows: list[Any]) -> None:
    """`levels.2.percent` onto the third level shown; `levels` (the set as a whole) onto the form."""
    if hasattr(exc, "error_dict") and "levels" in exc.error_dict:
        exc.error_dict[NON_FIELD_ERRORS] = exc.error_dict.pop("levels")
    apply_errors(exc, form, rows={"levels": rows})


# --- The customer card's panel ---------------------------------------------------------------------------


def _customer(request: HttpRequest, pk: int) -> Customer:
    customer = get_object_or_404(Customer.objects.visible_to(request.user).select_related("site"), pk=pk)
    if customer.merged_into_id:
        raise Http404
    return customer


def _back(customer: Customer) -> HttpResponse:
    return redirect(reverse("customers:detail", args=[customer.pk]) + "#loyalty")


def _say(request: HttpRequest, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        messages.error(request, " ".join(exc.messages))
        return
    for name, errors in exc.message_dict.items():
        label = FIELD_LABELS.get(name, "")
        text = " ".join(errors)
        messages.error(request, f"{label}: {text}" if label else text)


@require_POST
def enrol(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    form = EnrolForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the phone and card number."))
        return _back(customer)
    data = AccountData(
        phone_number=form.cleaned_data["phone_number"], card_number=form.cleaned_data["card_number"]
    )
    try:
        actions.create_account(
            customer, data, actor=actor_of(request), activate=form.cleaned_data["activate"]
        )
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(request, _("The customer takes part in the loyalty programme."))
    return _back(customer)


@require_POST
def activate(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    account = queries.account_for_customer(customer)
    if account is None:
        raise Http404
    try:
        actions.activate_account(account, actor=actor_of(request))
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(request, _("Participation activated."))
    return _back(customer)


@require_POST
def operation(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    account = queries.account_for_customer(customer)
    if account is None:
        raise Http404
    form = OperationForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            messages.error(request, f"{form.fields[name].label}: {' '.join(errors)}")
        return _back(customer)
    data = form.cleaned_data
    act = actions.credit if data["kind"] == OperationForm.CREDIT else actions.charge
    try:
        act(account, data["amount"], actor=actor_of(request), comment=data["comment"])
    except ValidationError as exc:
        _say(request, exc)
    else:
        done = _("Bonuses credited.") if data["kind"] == OperationForm.CREDIT else _("Bonuses charged.")
        messages.success(request, done)
    return _back(customer)
