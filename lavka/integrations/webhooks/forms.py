from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lavka.integrations.webhooks.catalogue import EVENT_TYPES
from lavka.integrations.webhooks.models import WebhookDelivery, WebhookSubscription, http_url


class SubscriptionForm(forms.Form):
    """Reads and types the input; `actions.create_subscription` / `update_subscription` validate and save."""

    name = forms.CharField(label=_("Name"), max_length=255)
    url = forms.URLField(
        label=_("URL"),
        max_length=2000,
        assume_scheme="https",
        validators=[http_url],
        help_text=_("Lavka POSTs each event here as JSON."),
    )
    all_events = forms.BooleanField(label=_("All order and customer events"), required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=list(EVENT_TYPES.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    max_consecutive_failures = forms.IntegerField(
        label=_("Disable after this many consecutive failures"), min_value=1, max_value=100000
    )

    @classmethod
    def initial_for(cls, subscription: WebhookSubscription | None) -> dict[str, Any]:
        if subscription is None:
            return {"max_consecutive_failures": WebhookSubscription().max_consecutive_failures}
        return {name: getattr(subscription, name) for name in cls.base_fields}


class DeliveryFilter(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *WebhookDelivery.Status.choices]
    )
