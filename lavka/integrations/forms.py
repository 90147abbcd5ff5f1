"""The API key form of the settings pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from lavka.accounts.models import ApiKey
from lavka.accounts.scopes import API_SCOPES
from lavka.core.models import Site

MAX_RATE_LIMIT = 10_000


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=150, help_text=_("Who uses the key, e.g. “Shop plugin”.")
    )
    all_scopes = forms.BooleanField(label=_("All scopes"), required=False, initial=True)
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=[(scope, scope) for scope in API_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    site_access = forms.ChoiceField(
        label=_("Site access"),
        choices=ApiKey.SiteAccess.choices,
        initial=ApiKey.SiteAccess.FULL,
        widget=forms.RadioSelect,
    )
    sites = forms.ModelMultipleChoiceField(
        label=_("Sites"),
        queryset=Site.objects.all(),
        to_field_name="code",  # codes in the form: no id can reach a query
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    rate_limit = forms.IntegerField(
        label=_("Requests per second"), required=False, min_value=1, max_value=MAX_RATE_LIMIT
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rate_limit"].help_text = _("Empty: the installation's default (%(limit)s).") % {
            "limit": settings.LAVKA_API_RATE_LIMIT or _("no limit")
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("all_scopes") and not data.get("scopes"):
            self.add_error("scopes", _("Choose the scopes, or tick “All scopes”."))
        if data.get("site_access") == ApiKey.SiteAccess.SELECTIVE and not data.get("sites"):
            self.add_error("sites", _("Choose the sites, or give access to all sites."))
        return data

    def action_arguments(self) -> dict[str, Any]:
        """What `create_api_key` takes: no scopes means all of them, no sites means every site."""
        data = self.cleaned_data
        selective = data["site_access"] == ApiKey.SiteAccess.SELECTIVE
        return {
            "scopes": None if data["all_scopes"] else data["scopes"],
            "site_codes": [site.code for site in data["sites"]] if selective else None,
            "rate_limit": data["rate_limit"],
        }
