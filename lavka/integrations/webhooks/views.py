"""Webhook settings pages (admin only, 404 for anyone else): subscriptions, their delivery log, replay."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors
from lavka.core.htmx import render_page
from lavka.core.ui import PER_PAGE_CHOICES, paginate
from lavka.core.views import admin_only
from lavka.integrations.webhooks import actions
from lavka.integrations.webhooks.catalogue import EVENT_TYPES
from lavka.integrations.webhooks.forms import DeliveryFilter, SubscriptionForm
from lavka.integrations.webhooks.models import WebhookDelivery, WebhookSubscription
from lavka.integrations.webhooks.sender import body_of


def _events_label(subscription: WebhookSubscription) -> str:
    if subscription.all_events:
        return _("All events")
    return ", ".join(str(EVENT_TYPES.get(t, t)) for t in subscription.event_types)


@admin_only
def subscription_list(request: HttpRequest) -> HttpResponse:
    rows = [(s, _events_label(s)) for s in WebhookSubscription.objects.all()]
    return render(request, "webhooks/list.html", {"nav": "settings", "rows": rows})


@admin_only
def subscription_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    subscription = get_object_or_404(WebhookSubscription, pk=pk) if pk else None
    form = SubscriptionForm(request.POST or None, initial=SubscriptionForm.initial_for(subscription))
    if request.method == "POST" and form.is_valid():
        try:
            if subscription is None:
                subscription = actions.create_subscription(form.cleaned_data, actor=actor_of(request))
                messages.success(request, _("Webhook created. Give its secret to the receiver."))
            else:
                actions.update_subscription(subscription, form.cleaned_data, actor=actor_of(request))
                messages.success(request, _("Webhook saved."))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            return redirect("webhooks:edit", pk=subscription.pk)
    context = {
        "nav": "settings",
        "title": str(subscription) if subscription else _("New webhook"),
        "form": form,
        "subscription": subscription,
    }
    return render(request, "webhooks/form.html", context, status=400 if form.errors else 200)


@admin_only
@require_POST
def subscription_state(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    state = request.POST.get("state")
    if state == "on":
        resumed = actions.enable_subscription(subscription, actor=actor_of(request))
        messages.success(request, _("Webhook enabled; %(n)s waiting deliveries resumed.") % {"n": resumed})
    elif state == "off":
        actions.disable_subscription(subscription, actor=actor_of(request))
        messages.success(request, _("Webhook switched off."))
    if request.POST.get("back") == "deliveries":
        return redirect("webhooks:deliveries", pk=pk)
    return redirect("webhooks:list")


@admin_only
@require_POST
def subscription_secret(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    actions.rotate_secret(subscription, actor=actor_of(request))
    messages.success(request, _("A new secret was generated; the old one no longer signs requests."))
    return redirect("webhooks:edit", pk=pk)


@admin_only
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    actions.delete_subscription(subscription, actor=actor_of(request))
    messages.success(request, _("Webhook deleted."))
    return redirect("webhooks:list")


@admin_only
def delivery_list(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(WebhookSubscription, pk=pk)
    rows = subscription.deliveries.order_by("-id")
    filter_form = DeliveryFilter(request.GET or None)
    if filter_form.is_valid() and filter_form.cleaned_data["status"]:
        rows = rows.filter(status=filter_form.cleaned_data["status"])
    context: dict[str, Any] = {
        "nav": "settings",
        "subscription": subscription,
        "events_label": _events_label(subscription),
        "filter_form": filter_form,
        "page": paginate(request, rows),
        "per_page_choices": PER_PAGE_CHOICES,
    }
    return render_page(request, "webhooks/deliveries.html", context, partial="webhooks/_deliveries.html")


@admin_only
def delivery_detail(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("subscription"), pk=delivery_pk, subscription_id=pk
    )
    document = json.dumps(json.loads(body_of(delivery)), ensure_ascii=False, indent=2)
    context = {
        "nav": "settings",
        "subscription": delivery.subscription,
        "delivery": delivery,
        "document": document,
        "attempts": delivery.log.all()[:200],
    }
    return render(request, "webhooks/delivery.html", context)


@admin_only
@require_POST
def delivery_replay(request: HttpRequest, pk: int, delivery_pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_pk, subscription_id=pk)
    actions.replay_delivery(delivery, actor=actor_of(request))
    messages.success(request, _("The delivery will be sent again shortly, with the same delivery id."))
    if request.POST.get("back") == "detail":
        return redirect("webhooks:delivery", pk=pk, delivery_pk=delivery_pk)
    return redirect(reverse("webhooks:deliveries", args=[pk]))
