"""Form helpers shared by the UI: actions' errors onto fields, the sites a user works on, settings forms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from lavka.accounts.hours import format_working_hours, parse_working_hours
from lavka.core.models import CustomField, Site
from lavka.core.permissions import Role, is_admin

MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    """A row id from a hidden input: anything but a plausible id is "unknown", never a database error."""

    default_error_messages = {
        "invalid": _("Unknown value."),
        "min_value": _("Unknown value."),
        "max_value": _("Unknown value."),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class VisibleChoiceField(forms.ModelChoiceField):
    """A choice among the rows a queryset allows (e.g. the customers a user may see).

    Ids out of the database's range are refused here, before they reach a query.
    """

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID or int(text) < 1:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(text)


def apply_errors(
    error: ValidationError,
    form: forms.Form,
    *,
    rows: Mapping[str, Sequence[forms.Form]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> None:
    """Put an action's ValidationError on the fields it names.

    "items.0.quantity" lands on the `quantity` field of `rows["items"][0]`; a key in `aliases`
    is renamed first; a key no field matches becomes a form-wide error, so nothing is lost.
    """
    rows, aliases = rows or {}, aliases or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for key, errors in error.error_dict.items():
        key = aliases.get(key, key)
        head, _dot, rest = key.partition(".")
        index, _dot, field = rest.partition(".")
        row_forms = rows.get(head, ())
        if index.isascii() and index.isdigit() and int(index) < len(row_forms):
            row = row_forms[int(index)]
            row.add_error(field if field in row.fields else None, errors)
            continue
        if key in form.fields:
            form.add_error(key, errors)
        elif key == NON_FIELD_ERRORS or head in rows:
            form.add_error(None, errors)
        else:
            form.add_error(None, [f"{key}: {message}" for e in errors for message in e.messages])


def responsible_candidates(site: Site, current: Any = None) -> QuerySet:
    """Who may be responsible on `site` (the actions' check_manager applies the same rule)."""
    users = get_user_model().objects.filter(Q(sites=site) | Q(role=Role.ADMIN), is_active=True)
    if current is not None:
        users = users | get_user_model().objects.filter(pk=current.pk)
    return users.distinct()


def user_sites(user: Any) -> QuerySet[Site]:
    """The active sites a user works on (all of them for an admin)."""
    sites = Site.objects.filter(is_active=True)
    return sites if is_admin(user) else sites.filter(pk__in=user.site_ids)


def custom_field_form_field(definition: CustomField) -> forms.Field:
    """The form field that edits one custom field's value (the action converts and checks it)."""
    common = {"label": definition.name, "required": False}
    if definition.type == CustomField.Type.BOOLEAN:
        return forms.BooleanField(**common)
    if definition.type == CustomField.Type.DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if definition.type in (CustomField.Type.INTEGER, CustomField.Type.NUMERIC):
        return forms.CharField(max_length=40, widget=decimal_input(), **common)
    return forms.CharField(max_length=2000, **common)


def add_custom_fields(
    form: forms.Form, definitions: Sequence[CustomField], values: Mapping[str, Any] | None = None
) -> None:
    """Add a `custom_<code>` field per definition, filled from the entity's current values."""
    values = values or {}
    for definition in definitions:
        name = f"custom_{definition.code}"
        form.fields[name] = custom_field_form_field(definition)
        if definition.code in values:
            form.initial[name] = values[definition.code]
    form.custom_definitions = list(definitions)


def custom_values(form: forms.Form) -> dict[str, Any]:
    """The custom fields' cleaned values, keyed by code, for an action."""
    values = {}
    for definition in getattr(form, "custom_definitions", []):
        value = form.cleaned_data.get(f"custom_{definition.code}")
        if definition.type == CustomField.Type.BOOLEAN:
            value = bool(value)
            if not value and not definition.required:
                continue
        if value not in (None, ""):
            values[definition.code] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def decimal_input(**attrs: Any) -> forms.TextInput:
    """A text input that brings up the numeric keyboard on a phone."""
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", **attrs})


def money_field(label: Any, *, required: bool = False, **attrs: Any) -> forms.CharField:
    """Amounts are taken as text (a comma is fine) and checked by the action, which names the field."""
    return forms.CharField(label=label, required=required, max_length=40, widget=decimal_input(**attrs))


YES_NO = [("", _("any")), ("yes", _("yes")), ("no", _("no"))]


class UserForm(forms.Form):
    """A staff member on the settings pages (create, or edit without the username)."""

    username = forms.RegexField(label=_("Username"), max_length=150, regex=r"^[\w.@+-]+\Z")
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("E-mail"), max_length=254, required=False)
    role = forms.ChoiceField(label=_("Role"))
    sites = forms.ModelMultipleChoiceField(
        label=_("Sites"), queryset=Site.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    team = forms.ModelChoiceField(label=_("Team"), queryset=None, required=False)
    language = forms.ChoiceField(label=_("Language"))
    phone_extension = forms.CharField(label=_("Phone extension"), max_length=16, required=False)
    working_hours = forms.CharField(
        label=_("Working hours"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "mon 09:00-18:00"}),
        help_text=_("One line per day, e.g. “mon 09:00-18:00”; days not listed are days off."),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, editing: Any = None, **kwargs: Any) -> None:
        user_model = get_user_model()
        if editing is not None:
            kwargs.setdefault(
                "initial",
                {
                    "first_name": editing.first_name,
                    "last_name": editing.last_name,
                    "email": editing.email,
                    "role": editing.role,
                    "sites": list(editing.sites.all()),
                    "team": editing.team_id,
                    "language": editing.language,
                    "phone_extension": editing.phone_extension,
                    "working_hours": format_working_hours(editing.working_hours or {}),
                },
            )
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.fields["role"].choices = user_model.Roles.choices
        self.fields["language"].choices = user_model._meta.get_field("language").choices
        self.fields["team"].queryset = user_model._meta.get_field("team").related_model.objects.all()
        if editing is not None:
            del self.fields["username"]
            self.fields["password"].help_text = _("Leave blank to keep the current password.")
        else:
            self.fields["password"].required = True

    def clean_working_hours(self) -> dict[str, list[str]]:
        try:
            return parse_working_hours(self.cleaned_data["working_hours"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    supervisor = forms.ModelChoiceField(label=_("Supervisor"), queryset=None, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["supervisor"].queryset = get_user_model().objects.filter(
            is_active=True, role__in=["supervisor", "admin"]
        )
