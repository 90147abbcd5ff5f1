"""Customer pages: list, card, create/edit, notes, merge, the order form's customer search, export.

Every page reads through `Customer.objects.visible_to(user)`; every write goes through
`customers.actions`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from lavka.accounts.models import SavedFilter, User
from lavka.analytics.panels import rfm_label
from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors, user_sites
from lavka.core.htmx import render_page
from lavka.core.models import CustomField, HistoryRecord, Site
from lavka.core.ui import (
    PER_PAGE_CHOICES,
    csv_response,
    lookup,
    paginate,
    param,
    ref_id,
    search_region,
    timeline,
)
from lavka.customers import actions
from lavka.customers.choices import Channel, Purpose, Sex
from lavka.customers.export import contact_cells, contact_header
from lavka.customers.filtersets import CustomerFilter, search_q
from lavka.customers.forms import ERROR_ALIASES, CustomerForm, MergeForm, NoteForm
from lavka.customers.models import Customer
from lavka.orders.models import Order

HISTORY_LIMIT = 300
ORDERS_LIMIT = 50
NOTES_LIMIT = 100
SEARCH_LIMIT = 15

HISTORY_LABELS: dict[str, Any] = {
    "id": gettext_lazy("Customer"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "patronymic": gettext_lazy("Patronymic"),
    "email": gettext_lazy("E-mail"),
    "birthday": gettext_lazy("Birthday"),
    "sex": gettext_lazy("Sex"),
    "manager": gettext_lazy("Responsible manager"),
    "external_id": gettext_lazy("External ID"),
    "vip": gettext_lazy("VIP"),
    "bad": gettext_lazy("Bad customer"),
    "source": gettext_lazy("Source (UTM)"),
    "custom_fields": gettext_lazy("Custom fields"),
    "phones": gettext_lazy("Phones"),
    "address": gettext_lazy("Address"),
    "tags": gettext_lazy("Tags"),
    "note": gettext_lazy("Note"),
    "address.country_iso": gettext_lazy("Country"),
    "merged": gettext_lazy("Merged customers"),
    "merged_into": gettext_lazy("Merged into"),
}


def visible_customers(request: HttpRequest) -> QuerySet[Customer]:
    return Customer.objects.visible_to(request.user)


def _customer(request: HttpRequest, pk: int) -> Customer:
    return get_object_or_404(visible_customers(request).select_related("site", "manager"), pk=pk)


# --- List and export -------------------------------------------------------------------------------------


def _filtered(request: HttpRequest) -> CustomerFilter:
    base = visible_customers(request).active().select_related("site", "manager")
    return CustomerFilter(request.GET or None, queryset=base, request=request)


def customer_list(request: HttpRequest) -> HttpResponse:
    filterset = _filtered(request)
    page = paginate(request, filterset.qs.select_related("metrics").prefetch_related("phones"))
    for row in page.rows:
        # The analytics figures, None for a customer the metrics have not reached yet.
        row.analytics = getattr(row, "metrics", None)
        row.rfm_name = rfm_label(row.analytics.rfm_segment) if row.analytics else ""
    context = {
        "nav": "customers",
        "filter": filterset,
        "page": page,
        "per_page_choices": PER_PAGE_CHOICES,
        "saved_filters": SavedFilter.objects.filter(user=request.user, page="customers"),
        "saved_page": "customers",
        "export_url": f"{reverse('customers:export')}?{request.GET.urlencode()}",
    }
    return render_page(request, "customers/list.html", context, partial="customers/_table.html")


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    filterset = _filtered(request)
    header = [*contact_header(), _("Orders"), _("Revenue"), _("Last order"), _("Created")]

    def rows() -> Any:
        for c in filterset.qs.prefetch_related("phones").iterator(chunk_size=2000):
            yield (
                *contact_cells(c),
                c.orders_count,
                c.total_summ,
                c.last_order_at.date() if c.last_order_at else "",
                c.created_at.date(),
            )

    return csv_response("customers.csv", header, rows())


# --- The customer card -----------------------------------------------------------------------------------


def _labels(customer: Customer) -> dict[str, Any]:
    labels = dict(HISTORY_LABELS)
    definitions = CustomField.objects.filter(site=customer.site_id, entity=CustomField.Entity.CUSTOMER)
    labels.update({f"custom_{d.code}": d.name for d in definitions})
    for channel in Channel:
        for purpose in Purpose:
            labels[f"consent.{channel}.{purpose}"] = _("Consent: %(channel)s, %(purpose)s") % {
                "channel": channel.label,
                "purpose": purpose.label,
            }
    return labels


def _history(customer: Customer) -> list[Any]:
    records = list(
        HistoryRecord.objects.filter(entity="customer", entity_id__in=actions.timeline_ids(customer))
        .select_related("user")
        .order_by("-id")[:HISTORY_LIMIT]
    )
    user_ids = {ref_id(v) for r in records if r.field == "manager" for v in (r.old_value, r.new_value)}
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=[i for i in user_ids if isinstance(i, int)])}
    return timeline(
        records,
        labels=_labels(customer),
        resolvers={"manager": lookup(users), "sex": lookup(dict(Sex.choices))},
    )


def _consents(customer: Customer) -> list[dict[str, Any]]:
    given = {(c.channel, c.purpose): c for c in customer.consents.all()}
    return [
        {"channel": channel.label, "purpose": purpose.label, "consent": given.get((channel, purpose))}
        for channel in Channel
        for purpose in Purpose
    ]


def _card(
    request: HttpRequest, customer: Customer, *, note_form: NoteForm | None = None, status: int = 200
) -> HttpResponse:
    definitions = CustomField.objects.filter(site=customer.site_id, entity=CustomField.Entity.CUSTOMER)
    orders = (
        Order.objects.visible_to(request.user)
        .filter(customer=customer)
        .for_list()
        .order_by("-created_at", "-id")[:ORDERS_LIMIT]
    )
    duplicates = actions.find_duplicates(
        customer.site,
        phones=[p.number for p in customer.phones.all()],
        email=customer.email,
        exclude_id=customer.pk,
    )
    context = {
        "nav": "customers",
        "customer": customer,
        "phones": list(customer.phones.all()),
        "addresses": list(customer.addresses.all()),
        "tags": list(customer.tags.all()),
        "consents": _consents(customer),
        "custom": [
            (d.name, customer.custom_fields.get(d.code))
            for d in definitions
            if d.code in customer.custom_fields
        ],
        "orders": list(orders),
        "orders_limit": ORDERS_LIMIT,
        "notes": list(customer.notes.select_related("author")[:NOTES_LIMIT]),
        "note_form": note_form or NoteForm(),
        "history": _history(customer),
        "duplicates": len(duplicates),
        "merged_into": customer.merged_into if customer.merged_into_id else None,
    }
    return render(request, "customers/detail.html", context, status=status)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _card(request, _customer(request, pk))


@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            actions.add_note(customer, form.cleaned_data["text"], actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            messages.success(request, _("Note added."))
            return redirect("customers:detail", pk=customer.pk)
    return _card(request, customer, note_form=form, status=400)


# --- Create, edit, merge ---------------------------------------------------------------------------------


def _site_for_create(request: HttpRequest) -> Site:
    sites = user_sites(request.user)
    code = param(request.POST, "site", 64) or param(request.GET, "site", 64)
    site = (sites.filter(code=code).first() if code else None) or sites.first()
    if site is None:
        raise Http404(_("You work on no site."))
    return site


def _form_page(
    request: HttpRequest,
    form: CustomerForm,
    *,
    site: Site,
    customer: Customer | None,
    duplicates: list[Customer] | None = None,
    hidden_duplicates: int = 0,
    status: int = 200,
) -> HttpResponse:
    context = {
        "nav": "customers",
        "form": form,
        "site": site,
        "customer": customer,
        "sites": user_sites(request.user) if customer is None else None,
        "duplicates": duplicates or [],
        "hidden_duplicates": hidden_duplicates,
    }
    return render(request, "customers/form.html", context, status=status)


def create(request: HttpRequest) -> HttpResponse:
    site = _site_for_create(request)
    if request.method != "POST":
        return _form_page(request, CustomerForm(site=site, user=request.user), site=site, customer=None)
    form = CustomerForm(request.POST, site=site, user=request.user)
    if form.is_valid():
        if not form.cleaned_data["confirm_duplicate"]:
            found = actions.find_duplicates(site, phones=form.phone_list(), email=form.cleaned_data["email"])
            visible = set(
                visible_customers(request).filter(pk__in=[c.pk for c in found]).values_list("pk", flat=True)
            )
            if found:
                return _form_page(
                    request,
                    form,
                    site=site,
                    customer=None,
                    duplicates=[c for c in found if c.pk in visible],
                    hidden_duplicates=len([c for c in found if c.pk not in visible]),
                )
        try:
            customer = actions.create_customer(site, form.customer_data(), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form, aliases=ERROR_ALIASES)
        else:
            messages.success(request, _("Customer created."))
            if visible_customers(request).filter(pk=customer.pk).exists():
                return redirect("customers:detail", pk=customer.pk)
            return redirect("customers:list")
    return _form_page(request, form, site=site, customer=None, status=400)


def edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    if customer.merged_into_id:
        messages.warning(request, _("This customer was merged into another one."))
        return redirect("customers:detail", pk=customer.pk)
    if request.method != "POST":
        return _form_page(
            request,
            CustomerForm(site=customer.site, user=request.user, customer=customer),
            site=customer.site,
            customer=customer,
        )
    form = CustomerForm(request.POST, site=customer.site, user=request.user, customer=customer)
    if form.is_valid():
        try:
            actions.update_customer(customer, form.customer_data(), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form, aliases=ERROR_ALIASES)
        else:
            messages.success(request, _("Customer saved."))
            if visible_customers(request).filter(pk=customer.pk).exists():
                return redirect("customers:detail", pk=customer.pk)
            return redirect("customers:list")
    return _form_page(request, form, site=customer.site, customer=customer, status=400)


def merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merge duplicates (found by phone or e-mail, and visible to the user) into this customer."""
    customer = _customer(request, pk)
    if customer.merged_into_id:
        raise Http404
    found = actions.find_duplicates(
        customer.site,
        phones=[p.number for p in customer.phones.all()],
        email=customer.email,
        exclude_id=customer.pk,
    )
    visible = set(
        visible_customers(request).filter(pk__in=[c.pk for c in found]).values_list("pk", flat=True)
    )
    candidates = [c for c in found if c.pk in visible]
    form = MergeForm(request.POST or None, candidates=candidates)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                actions.merge_customers(customer, form.chosen(), actor=actor_of(request))
            except ValidationError as exc:
                apply_errors(exc, form, aliases={"customers": "others"})
            else:
                messages.success(request, _("Customers merged."))
                return redirect("customers:detail", pk=customer.pk)
        status = 400
    return render(
        request,
        "customers/merge.html",
        {"nav": "customers", "customer": customer, "form": form, "candidates": candidates},
        status=status,
    )


# --- The order form's customer search (htmx) -------------------------------------------------------------


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Customers of one site for the order form; `pick` answers the chosen customer's block."""
    code = param(request.GET, "site", 64)
    site = user_sites(request.user).filter(code=code).first() if code else None
    if site is None:
        raise Http404
    customers = visible_customers(request).active().filter(site=site)
    pick = request.GET.get("pick", "")
    if pick or request.GET.get("clear"):
        customer = None
        if pick:
            if not (pick.isascii() and pick.isdigit() and len(pick) < 19):
                raise Http404
            customer = get_object_or_404(customers, pk=int(pick))
        return render(request, "customers/_pick.html", {"customer": customer, "site": site})
    q = param(request.GET, "customer_q")
    found = (
        list(
            customers.filter(search_q(q, search_region(request.user)))
            .prefetch_related("phones")
            .order_by("-last_order_at", "-id")[:SEARCH_LIMIT]
        )
        if len(q) >= 2
        else []
    )
    return render(request, "customers/_search_results.html", {"customers": found, "q": q, "site": site})
