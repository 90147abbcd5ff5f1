"""Settings pages for API keys (admin only): list, create (the raw key is shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from lavka.accounts.actions import UnknownSite, create_api_key, revoke_api_key
from lavka.accounts.models import ApiKey
from lavka.accounts.scopes import API_SCOPES
from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors
from lavka.core.views import admin_only
from lavka.integrations.forms import ApiKeyForm


@admin_only
def api_keys(request: HttpRequest) -> HttpResponse:
    keys = (
        ApiKey.objects.prefetch_related("sites")
        .select_related("created_by")
        .order_by("revoked_at", "-created_at", "-id")
    )
    rows = [(key, set(key.scopes) >= set(API_SCOPES)) for key in keys]
    return render(request, "integrations/api_keys.html", {"nav": "settings", "rows": rows})


@admin_only
@never_cache  # the answer to a POST carries the raw key: no cache may keep it
def api_key_new(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = create_api_key(
                form.cleaned_data["name"], actor=actor_of(request), **form.action_arguments()
            )
        except UnknownSite:
            form.add_error("sites", _("Unknown site."))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            # Rendered here, not after a redirect: the raw key must not pass through the session.
            return render(
                request, "integrations/api_key_created.html", {"nav": "settings", "key": key, "raw": raw}
            )
    status = 400 if request.method == "POST" else 200
    return render(request, "integrations/api_key_form.html", {"nav": "settings", "form": form}, status=status)


@admin_only
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    revoke_api_key(key, actor=actor_of(request))
    messages.success(request, _("The key “%(name)s” is revoked.") % {"name": key.name})
    return redirect("integrations:api_keys")
