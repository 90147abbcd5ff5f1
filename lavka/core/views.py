"""Settings pages (admin only) and the per-user switches of the top bar (language, presence, saved filters).

A non-admin gets 404 on every settings page, as for any object outside their scope. Writes go through
the actions of the app that owns the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from lavka.accounts import actions as account_actions
from lavka.accounts.models import SavedFilter, Team, User
from lavka.core import actions as core_actions
from lavka.core.actor import actor_of
from lavka.core.forms import TeamForm, UserForm, apply_errors
from lavka.core.models import CustomField, Site
from lavka.core.permissions import can_manage_settings
from lavka.orders.models import OrderType, Status, StatusTransition
from lavka.orders.reference_actions import REFERENCE_BOOKS, save_reference, set_transitions

SAVED_FILTER_PAGES = {
    "orders": "orders:list",
    "complaints": "orders:complaints",
    "customers": "customers:list",
}

BOOK_TITLES = {
    "status-groups": gettext_lazy("Status groups"),
    "statuses": gettext_lazy("Statuses"),
    "order-types": gettext_lazy("Order types"),
    "order-methods": gettext_lazy("Order methods"),
    "delivery-types": gettext_lazy("Delivery types"),
    "payment-types": gettext_lazy("Payment types"),
    "payment-statuses": gettext_lazy("Payment statuses"),
}
BOOK_EXTRA_FIELDS = {
    "statuses": ["group"],
    "order-types": ["default_for_crm", "default_for_api"],
    "order-methods": ["default_for_crm", "default_for_api"],
    "delivery-types": ["default_cost"],
    "payment-statuses": ["payment_complete"],
}
# Labels for model fields that have no translated verbose name of their own.
FIELD_LABELS = {
    "group": gettext_lazy("Status group"),
    "default_for_crm": gettext_lazy("Default in the CRM"),
    "default_for_api": gettext_lazy("Default for the API"),
    "default_cost": gettext_lazy("Default cost"),
    "site": gettext_lazy("Site"),
}
SITE_FIELDS = [
    "code",
    "name",
    "url",
    "currency",
    "country",
    "time_zone",
    "language",
    "order_suffix",
    "phones",
    "address",
    "review_url",
    "is_active",
    "ordering",
]
CUSTOM_FIELD_FIELDS = ["site", "entity", "code", "name", "type", "required", "ordering"]


def admin_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_manage_settings(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


# --- The top bar: language, presence; saved filters ------------------------------------------------------


@require_POST
def language(request: HttpRequest) -> HttpResponse:
    code = request.POST.get("language", "")
    if code in dict(User._meta.get_field("language").choices):
        account_actions.update_user(request.user, actor=actor_of(request), language=code)
    return _back(request, reverse("orders:my_work"))


@require_POST
def presence(request: HttpRequest) -> HttpResponse:
    value = request.POST.get("presence", "")
    if value in User.Presence.values:
        account_actions.set_presence(request.user, value, actor=actor_of(request))
    return _back(request, reverse("orders:my_work"))


@require_POST
def filter_save(request: HttpRequest) -> HttpResponse:
    page = request.POST.get("page", "")
    if page not in SAVED_FILTER_PAGES:
        raise Http404
    query = request.POST.get("query", "")
    try:
        account_actions.save_filter(
            request.user, page, request.POST.get("name", ""), query, actor=actor_of(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Filter saved."))
    return redirect(f"{reverse(SAVED_FILTER_PAGES[page])}?{query}")


@require_POST
def filter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    saved = get_object_or_404(SavedFilter, pk=pk, user=request.user)
    page = SAVED_FILTER_PAGES.get(saved.page, "orders:list")
    account_actions.delete_filter(saved, actor=actor_of(request))
    return redirect(page)


# --- Settings: shared list and form pages ----------------------------------------------------------------


def _list(
    request: HttpRequest,
    *,
    title: str,
    rows: Any,
    columns: list[tuple[str, str]],
    new_url: str,
    edit_url: Callable[[Any], str],
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    table = [(edit_url(row), [_cell(row, name) for name, _label in columns]) for row in rows]
    context = {
        "nav": "settings",
        "title": title,
        "columns": [label for _name, label in columns],
        "table": table,
        "new_url": new_url,
        **(extra or {}),
    }
    return render(request, "settings/list.html", context)


def _cell(row: Any, name: str) -> Any:
    display = getattr(row, f"get_{name}_display", None)
    value = display() if display else getattr(row, name)
    if isinstance(value, bool):
        return "✓" if value else ""
    return value


def _edit(
    request: HttpRequest,
    *,
    form: forms.Form,
    title: str,
    back: str,
    save: Callable[[dict[str, Any]], Any],
    saved_message: str,
) -> HttpResponse:
    """Validate a settings form, hand its data to an action, and show the action's errors on the fields."""
    if request.method == "POST" and form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            messages.success(request, saved_message)
            return redirect(back)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "settings/form.html",
        {"nav": "settings", "title": title, "form": form, "back": back},
        status=status,
    )


def _formfield(field: models.Field, **kwargs: Any) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


def _model_form(model: type[Model], fields: list[str], instance: Model | None, data: Any) -> forms.ModelForm:
    """A ModelForm used only to read and type the input; the action saves."""
    labels = {name: label for name, label in FIELD_LABELS.items() if name in fields}
    form_class = forms.modelform_factory(model, fields=fields, labels=labels, formfield_callback=_formfield)
    # A copy, so that validating the form does not touch the row the action will change.
    copy = model.objects.get(pk=instance.pk) if instance is not None else None
    return form_class(data, instance=copy)


@admin_only
def index(request: HttpRequest) -> HttpResponse:
    books = [(reverse("settings:books", args=[slug]), title) for slug, title in BOOK_TITLES.items()]
    return render(request, "settings/index.html", {"nav": "settings", "books": books})


# --- Sites and custom fields -----------------------------------------------------------------------------


@admin_only
def sites(request: HttpRequest) -> HttpResponse:
    columns = [
        ("code", _("Code")),
        ("name", _("Name")),
        ("currency", _("Currency")),
        ("country", _("Country")),
        ("time_zone", _("Time zone")),
        ("is_active", _("Active")),
    ]
    return _list(
        request,
        title=_("Sites"),
        rows=Site.objects.all(),
        columns=columns,
        new_url=reverse("settings:site_new"),
        edit_url=lambda s: reverse("settings:site_edit", args=[s.pk]),
    )


@admin_only
def site_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    site = get_object_or_404(Site, pk=pk) if pk else None
    form = _model_form(Site, SITE_FIELDS, site, request.POST or None)
    return _edit(
        request,
        form=form,
        title=str(site) if site else _("New site"),
        back=reverse("settings:sites"),
        save=lambda data: core_actions.save_site(site, data, actor=actor_of(request)),
        saved_message=_("Site saved."),
    )


@admin_only
def custom_fields(request: HttpRequest) -> HttpResponse:
    columns = [
        ("site", _("Site")),
        ("entity", _("Entity")),
        ("code", _("Code")),
        ("name", _("Name")),
        ("type", _("Type")),
        ("required", _("Required")),
    ]
    return _list(
        request,
        title=_("Custom fields"),
        rows=CustomField.objects.select_related("site"),
        columns=columns,
        new_url=reverse("settings:custom_field_new"),
        edit_url=lambda f: reverse("settings:custom_field_edit", args=[f.pk]),
    )


@admin_only
def custom_field_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    field = get_object_or_404(CustomField, pk=pk) if pk else None
    form = _model_form(CustomField, CUSTOM_FIELD_FIELDS, field, request.POST or None)
    return _edit(
        request,
        form=form,
        title=str(field) if field else _("New custom field"),
        back=reverse("settings:custom_fields"),
        save=lambda data: core_actions.save_custom_field(field, data, actor=actor_of(request)),
        saved_message=_("Custom field saved."),
    )


# --- Order reference books and transitions ---------------------------------------------------------------


def _book(slug: str) -> Any:
    if slug not in REFERENCE_BOOKS:
        raise Http404
    return REFERENCE_BOOKS[slug]


@admin_only
def books(request: HttpRequest, slug: str) -> HttpResponse:
    model = _book(slug)
    columns = [("code", _("Code")), ("name", _("Name"))]
    columns += [
        (name, FIELD_LABELS.get(name) or model._meta.get_field(name).verbose_name)
        for name in BOOK_EXTRA_FIELDS.get(slug, [])
    ]
    columns += [("is_active", _("Active")), ("ordering", _("Ordering"))]
    rows = model.objects.all()
    if slug == "statuses":
        rows = rows.select_related("group").order_by("group__ordering", "ordering")
    return _list(
        request,
        title=str(BOOK_TITLES[slug]),
        rows=rows,
        columns=columns,
        new_url=reverse("settings:book_new", args=[slug]),
        edit_url=lambda row: reverse("settings:book_edit", args=[slug, row.pk]),
    )


@admin_only
def book_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    model = _book(slug)
    row = get_object_or_404(model, pk=pk) if pk else None
    fields = ["code", "name", *BOOK_EXTRA_FIELDS.get(slug, []), "is_active", "ordering"]
    form = _model_form(model, fields, row, request.POST or None)
    return _edit(
        request,
        form=form,
        title=f"{BOOK_TITLES[slug]}: {row or _('new')}",
        back=reverse("settings:books", args=[slug]),
        save=lambda data: save_reference(model, row, data, actor=actor_of(request)),
        saved_message=_("Saved."),
    )


@admin_only
def transitions(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The allowed status moves of one order type, as a from × to matrix of checkboxes."""
    order_types = list(OrderType.objects.all())
    if pk is None:
        if not order_types:
            raise Http404
        return redirect("settings:transitions_of", pk=order_types[0].pk)
    order_type = get_object_or_404(OrderType, pk=pk)
    statuses = list(Status.objects.select_related("group").order_by("group__ordering", "ordering"))
    if request.method == "POST":
        pairs = []
        for value in request.POST.getlist("t"):
            a, _sep, b = value.partition("-")
            if a.isascii() and a.isdigit() and b.isascii() and b.isdigit() and len(a) < 12 and len(b) < 12:
                pairs.append((int(a), int(b)))
        try:
            changed = set_transitions(order_type, pairs, actor=actor_of(request))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Transitions saved (%(n)s changed).") % {"n": changed})
            return redirect("settings:transitions_of", pk=order_type.pk)
    allowed = set(
        StatusTransition.objects.filter(order_type=order_type).values_list("from_status", "to_status")
    )
    matrix = [(a, [(b, (a.pk, b.pk) in allowed) for b in statuses]) for a in statuses]
    return render(
        request,
        "settings/transitions.html",
        {
            "nav": "settings",
            "order_type": order_type,
            "order_types": order_types,
            "statuses": statuses,
            "matrix": matrix,
        },
    )


# --- Users and teams -------------------------------------------------------------------------------------


@admin_only
def users(request: HttpRequest) -> HttpResponse:
    rows = User.objects.select_related("team").prefetch_related("sites").order_by("-is_active", "username")
    return render(request, "settings/users.html", {"nav": "settings", "users": rows})


def _site_codes(data: dict[str, Any]) -> list[str]:
    return [site.code for site in data["sites"]]


@admin_only
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserForm(request.POST or None)

    def save(data: dict[str, Any]) -> User:
        try:
            return account_actions.create_user(
                data["username"],
                role=data["role"],
                password=data["password"],
                actor=actor_of(request),
                site_codes=_site_codes(data),
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                language=data["language"],
                team=data["team"],
                working_hours=data["working_hours"],
            )
        except ValueError as exc:
            raise ValidationError({"username": _("This username is taken.")}) from exc
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise
            raise ValidationError({"password": exc.messages}) from exc

    return _edit(
        request,
        form=form,
        title=_("New user"),
        back=reverse("settings:users"),
        save=save,
        saved_message=_("User created."),
    )


@admin_only
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    editing = get_object_or_404(User, pk=pk)
    form = UserForm(request.POST or None, editing=editing)

    @transaction.atomic
    def save(data: dict[str, Any]) -> User:
        actor = actor_of(request)
        account_actions.update_user(
            editing,
            actor=actor,
            sites=data["sites"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            role=data["role"],
            team=data["team"],
            language=data["language"],
            phone_extension=data["phone_extension"],
            working_hours=data["working_hours"],
        )
        if data["password"]:
            account_actions.set_password(editing, data["password"], actor=actor)
        return editing

    return _edit(
        request,
        form=form,
        title=str(editing),
        back=reverse("settings:users"),
        save=save,
        saved_message=_("User saved."),
    )


@admin_only
@require_POST
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate (or reactivate) a user; nobody can lock themselves out."""
    target = get_object_or_404(User, pk=pk)
    if target.pk == request.user.pk:
        messages.error(request, _("You cannot deactivate yourself."))
    else:
        account_actions.update_user(target, actor=actor_of(request), is_active=not target.is_active)
        messages.success(request, _("User activated.") if target.is_active else _("User deactivated."))
    return redirect("settings:users")


@admin_only
def teams(request: HttpRequest) -> HttpResponse:
    columns = [("name", _("Name")), ("supervisor", _("Supervisor"))]
    return _list(
        request,
        title=_("Teams"),
        rows=Team.objects.select_related("supervisor"),
        columns=columns,
        new_url=reverse("settings:team_new"),
        edit_url=lambda t: reverse("settings:team_edit", args=[t.pk]),
    )


@admin_only
def team_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk) if pk else None
    initial = {"name": team.name, "supervisor": team.supervisor_id} if team else None
    form = TeamForm(request.POST or None, initial=initial)
    return _edit(
        request,
        form=form,
        title=str(team) if team else _("New team"),
        back=reverse("settings:teams"),
        save=lambda data: account_actions.save_team(
            team, name=data["name"], supervisor=data["supervisor"], actor=actor_of(request)
        ),
        saved_message=_("Team saved."),
    )
