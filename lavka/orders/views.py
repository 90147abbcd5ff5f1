"""Order pages: My work, the list, the card, create/edit, complaints, export.

Every page reads through `Order.objects.visible_to(user)`, so a row outside the user's scope is a 404;
every write goes through `orders.actions`.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from lavka.accounts.models import SavedFilter, User
from lavka.catalog.models import Offer
from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors, user_sites
from lavka.core.htmx import render_page
from lavka.core.models import CustomField, HistoryRecord, Site
from lavka.core.permissions import Role, sees_all_in_sites
from lavka.core.ui import PER_PAGE_CHOICES, csv_response, lookup, paginate, param, ref_id, timeline
from lavka.customers.actions import find_duplicates
from lavka.customers.models import Customer
from lavka.orders import actions
from lavka.orders.choices import ComplaintReason, Group
from lavka.orders.filtersets import ComplaintFilter, OrderFilter
from lavka.orders.forms import (
    ERROR_ALIASES,
    AssignForm,
    OrderForm,
    PaymentForm,
    StatusForm,
    filled_rows,
    item_formset,
    item_initial,
)
from lavka.orders.models import (
    DeliveryType,
    Order,
    OrderMethod,
    OrderType,
    PaymentStatus,
    PaymentType,
    Status,
)

HISTORY_LIMIT = 300
QUEUE_LIMIT = 50
MY_WORK_LIMIT = 100
ROW_PREFIX = re.compile(r"^items-\d{1,3}$")
NEW_ROWS = 3

HISTORY_LABELS = {
    "status": gettext_lazy("Status"),
    "manager": gettext_lazy("Responsible manager"),
    "order_type": gettext_lazy("Order type"),
    "order_method": gettext_lazy("Order method"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "patronymic": gettext_lazy("Patronymic"),
    "phone": gettext_lazy("Phone"),
    "additional_phone": gettext_lazy("Additional phone"),
    "email": gettext_lazy("E-mail"),
    "customer": gettext_lazy("Customer"),
    "external_id": gettext_lazy("External ID"),
    "customer_comment": gettext_lazy("Customer comment"),
    "manager_comment": gettext_lazy("Manager comment"),
    "delivery_type": gettext_lazy("Delivery type"),
    "delivery_cost": gettext_lazy("Delivery cost"),
    "delivery_date": gettext_lazy("Delivery date"),
    "delivery_time": gettext_lazy("Delivery time"),
    "delivery_address": gettext_lazy("Delivery address"),
    "discount_manual_amount": gettext_lazy("Order discount"),
    "discount_manual_percent": gettext_lazy("Order discount, %"),
    "source": gettext_lazy("Source (UTM)"),
    "custom_fields": gettext_lazy("Custom fields"),
    "order_product": gettext_lazy("Order line"),
    "payments": gettext_lazy("Payment"),
    "complaint_reason": gettext_lazy("Complaint reason"),
    "complaint_comment": gettext_lazy("Complaint comment"),
    "status_comment": gettext_lazy("Status comment"),
    "combined_to": gettext_lazy("Combined into"),
    "integration_delivery_data": gettext_lazy("Shipment"),
    "created_at": gettext_lazy("Created"),
}


def visible_orders(request: HttpRequest) -> QuerySet[Order]:
    return Order.objects.visible_to(request.user)


# --- My work ---------------------------------------------------------------------------------------------


def my_work(request: HttpRequest) -> HttpResponse:
    """A manager's queue: their open orders by status, and the unassigned orders of their sites."""
    user = request.user
    statuses = {s.pk: s for s in Status.objects.select_related("group")}
    # Open statuses by id rather than a join on their group, so the status index finds the few open orders.
    open_ids = [pk for pk, s in statuses.items() if s.group.code not in Group.CLOSED]
    visible = visible_orders(request).filter(status_id__in=open_ids).for_list()
    if user.role == Role.OPERATOR:
        mine, mine_title = visible.filter(created_by=user), _("Orders I created")
    elif sees_all_in_sites(user):
        mine, mine_title = visible.filter(manager__isnull=False), _("Open orders of all managers")
    else:
        mine, mine_title = visible.filter(manager=user), _("My open orders")
    counts = sorted(
        (
            (statuses[row["status"]], row["n"])
            for row in mine.values("status").annotate(n=Count("id")).order_by()
        ),
        key=lambda pair: (pair[0].group.ordering, pair[0].ordering),
    )
    chosen = param(request.GET, "status", 64)
    rows = mine.filter(status__code=chosen) if chosen else mine
    queue = visible.filter(manager__isnull=True).order_by("created_at", "id")
    context = {
        "nav": "my_work",
        "mine_title": mine_title,
        "counts": counts,
        "chosen": chosen,
        "total": sum(n for _s, n in counts),
        "rows": list(rows.order_by("created_at", "id")[:MY_WORK_LIMIT]),
        "limit": MY_WORK_LIMIT,
        "queue": list(queue[:QUEUE_LIMIT]),
        "queue_count": queue.order_by()[: QUEUE_LIMIT + 1].count(),
        "queue_limit": QUEUE_LIMIT,
        "show_manager": user.role != Role.MANAGER,
        "can_take": user.role in (Role.MANAGER, Role.SUPERVISOR),
    }
    return render_page(request, "orders/my_work.html", context, partial="orders/_my_work_orders.html")


# --- List, complaints, export ----------------------------------------------------------------------------


def _filtered(request: HttpRequest, filterset_class: type[OrderFilter], base: QuerySet) -> OrderFilter:
    return filterset_class(request.GET or None, queryset=base.for_list(), request=request)


def _list_page(
    request: HttpRequest,
    filterset_class: type[OrderFilter],
    base: QuerySet,
    *,
    page_name: str,
    title: str,
    template: str,
    export_query: str = "",
) -> HttpResponse:
    filterset = _filtered(request, filterset_class, base)
    page = paginate(request, filterset.qs)
    query = "&".join(part for part in (export_query, request.GET.urlencode()) if part)
    context = {
        "nav": page_name,
        "title": title,
        "filter": filterset,
        "page": page,
        "per_page_choices": PER_PAGE_CHOICES,
        "saved_filters": SavedFilter.objects.filter(user=request.user, page=page_name),
        "saved_page": page_name,
        "export_url": f"{reverse('orders:export')}?{query}",
    }
    return render_page(request, template, context, partial="orders/_table.html")


def order_list(request: HttpRequest) -> HttpResponse:
    return _list_page(
        request,
        OrderFilter,
        visible_orders(request),
        page_name="orders",
        title=_("Orders"),
        template="orders/list.html",
    )


def complaints(request: HttpRequest) -> HttpResponse:
    base = visible_orders(request).filter(status__group__code=Group.COMPLAINT)
    return _list_page(
        request,
        ComplaintFilter,
        base,
        page_name="complaints",
        title=_("Complaints"),
        template="orders/complaints.html",
        export_query=f"group={Group.COMPLAINT}",
    )


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    filterset = _filtered(request, OrderFilter, visible_orders(request))
    columns = (
        "number",
        "created_at",
        "site__code",
        "status__name",
        "last_name",
        "first_name",
        "patronymic",
        "phone",
        "email",
        "manager__username",
        "order_method__name",
        "delivery_type__name",
        "summ",
        "delivery_cost",
        "total_summ",
        "prepay_sum",
        "complaint_reason",
    )
    header = [
        _("Number"),
        _("Created"),
        _("Site"),
        _("Status"),
        _("Last name"),
        _("First name"),
        _("Patronymic"),
        _("Phone"),
        _("E-mail"),
        _("Manager"),
        _("Order method"),
        _("Delivery type"),
        _("Items total"),
        _("Delivery cost"),
        _("Total"),
        _("Paid"),
        _("Complaint reason"),
    ]
    rows = filterset.qs.values_list(*columns).iterator(chunk_size=2000)
    local = timezone.localtime
    return csv_response(
        "orders.csv", header, ((r[0], local(r[1]).strftime("%Y-%m-%d %H:%M"), *r[2:]) for r in rows)
    )


# --- The order card --------------------------------------------------------------------------------------


def _order(request: HttpRequest, pk: int) -> Order:
    related = (
        "site",
        "status__group",
        "order_type",
        "order_method",
        "delivery_type",
        "manager",
        "customer",
        "created_by",
    )
    return get_object_or_404(visible_orders(request).select_related(*related), pk=pk)


def _history(order: Order) -> list[Any]:
    records = list(
        HistoryRecord.objects.filter(entity="order", entity_id=order.pk)
        .select_related("user")
        .order_by("-id")[:HISTORY_LIMIT]
    )
    user_ids = {
        ref_id(value) for r in records if r.field == "manager" for value in (r.old_value, r.new_value)
    }
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=[i for i in user_ids if isinstance(i, int)])}
    statuses = dict(Status.objects.values_list("code", "name"))
    resolvers = {
        "status": lookup(statuses),
        "manager": lookup(users),
        "order_type": lookup(dict(OrderType.objects.values_list("id", "name"))),
        "order_method": lookup(dict(OrderMethod.objects.values_list("id", "name"))),
        "delivery_type": lookup(dict(DeliveryType.objects.values_list("id", "name"))),
        "complaint_reason": lookup(dict(ComplaintReason.choices)),
        "payments.type": lookup(dict(PaymentType.objects.values_list("id", "name"))),
        "payments.status": lookup(dict(PaymentStatus.objects.values_list("id", "name"))),
    }
    labels = {
        **HISTORY_LABELS,
        **{
            f"custom_{code}": name
            for code, name in CustomField.objects.filter(
                site=order.site_id, entity=CustomField.Entity.ORDER
            ).values_list("code", "name")
        },
    }
    return timeline(records, labels=labels, resolvers=resolvers)


def _card(
    request: HttpRequest,
    order: Order,
    *,
    status_form: StatusForm | None = None,
    assign_form: AssignForm | None = None,
    payment_form: PaymentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    allowed = actions.allowed_statuses(order)
    definitions = CustomField.objects.filter(site=order.site_id, entity=CustomField.Entity.ORDER)
    context = {
        "nav": "orders",
        "order": order,
        "items": list(order.items.all()),
        "order_discount": order.summ + order.delivery_cost - order.total_summ,
        "payments": list(order.payments.select_related("type", "status")),
        "history": _history(order),
        "custom": [
            (d.name, order.custom_fields.get(d.code)) for d in definitions if d.code in order.custom_fields
        ],
        "customer_visible": Customer.objects.visible_to(request.user).filter(pk=order.customer_id).exists(),
        "status_form": status_form or StatusForm(statuses=allowed),
        "assign_form": assign_form
        or AssignForm(site=order.site, current=order.manager, initial={"manager": order.manager_id}),
        "payment_form": payment_form or PaymentForm(initial={"amount": order.to_pay or ""}),
        "can_take": order.manager_id is None and request.user.role in (Role.MANAGER, Role.SUPERVISOR),
    }
    return render(request, "orders/detail.html", context, status=status)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _card(request, _order(request, pk))


def _after_write(request: HttpRequest, order: Order, message: str) -> HttpResponse:
    messages.success(request, message)
    if visible_orders(request).filter(pk=order.pk).exists():
        return redirect("orders:detail", pk=order.pk)
    # E.g. the order was handed to another manager: it has left this user's scope.
    return redirect("orders:my_work")


@require_POST
def change_status(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    form = StatusForm(request.POST, statuses=actions.allowed_statuses(order))
    if form.is_valid():
        data = form.cleaned_data
        try:
            actions.change_status(
                order,
                data["status"],
                actor=actor_of(request),
                comment=data["comment"],
                complaint_reason=data["complaint_reason"],
                complaint_comment=data["complaint_comment"],
            )
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            return _after_write(request, order, _("Status changed."))
    return _card(request, order, status_form=form, status=400)


@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    data = request.POST.copy()
    if data.get("take"):
        data["manager"] = str(request.user.pk)
    form = AssignForm(data, site=order.site, current=order.manager)
    if form.is_valid():
        try:
            actions.assign_manager(order, form.cleaned_data["manager"], actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form)
        else:
            return _after_write(request, order, _("Responsible manager changed."))
    return _card(request, order, assign_form=form, status=400)


@require_POST
def payment_add(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    form = PaymentForm(request.POST)
    if form.is_valid():
        try:
            actions.add_payment(order, form.payment_data(), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form, aliases=ERROR_ALIASES)
        else:
            return _after_write(request, order, _("Payment added."))
    return _card(request, order, payment_form=form, status=400)


# --- Create and edit -------------------------------------------------------------------------------------


def _site_for_create(request: HttpRequest) -> Site:
    sites = user_sites(request.user)
    code = param(request.POST, "site", 64) or param(request.GET, "site", 64)
    site = sites.filter(code=code).first() if code else None
    site = site or sites.first()
    if site is None:
        raise Http404(_("You work on no site."))
    return site


def _offers_of(rows: list[Any], site: Site) -> dict[int, Offer]:
    """The offers the line forms point at (only this site's), in one query, to show their names."""
    ids = set()
    for row in rows:
        raw = row["offer"].value()
        if str(raw).isascii() and str(raw).isdigit() and len(str(raw)) < 19:
            ids.add(int(raw))
    return Offer.objects.for_site(site.pk).select_related("product").in_bulk(ids) if ids else {}


def _form_page(
    request: HttpRequest,
    *,
    form: OrderForm,
    items: Any,
    site: Site,
    order: Order | None,
    duplicates: list[Customer] | None = None,
    hidden_duplicates: int = 0,
    status: int = 200,
) -> HttpResponse:
    offers = _offers_of(items.forms, site)
    rows = []
    for row in items.forms:
        raw = str(row["offer"].value() or "")
        rows.append(
            (row, offers.get(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None)
        )
    context = {
        "nav": "orders",
        "form": form,
        "items": items,
        "rows": rows,
        "site": site,
        "order": order,
        "sites": user_sites(request.user) if order is None else None,
        "duplicates": duplicates or [],
        "hidden_duplicates": hidden_duplicates,
    }
    return render(request, "orders/form.html", context, status=status)


def _duplicates(request: HttpRequest, site: Site, form: OrderForm) -> tuple[list[Customer], int]:
    data = form.cleaned_data
    found = find_duplicates(site, phones=[data["phone"]] if data["phone"] else [], email=data["email"])
    visible = set(
        Customer.objects.visible_to(request.user)
        .filter(pk__in=[c.pk for c in found])
        .values_list("pk", flat=True)
    )
    return [c for c in found if c.pk in visible], len([c for c in found if c.pk not in visible])


def create(request: HttpRequest) -> HttpResponse:
    site = _site_for_create(request)
    if request.method != "POST":
        form = OrderForm(user=request.user, site=site)
        items = item_formset(extra=NEW_ROWS)
        return _form_page(request, form=form, items=items, site=site, order=None)
    form = OrderForm(request.POST, user=request.user, site=site)
    items = item_formset(request.POST)
    if form.is_valid() and items.is_valid():
        rows = filled_rows(items)
        if not form.cleaned_data.get("customer") and not form.cleaned_data.get("confirm_new_customer"):
            duplicates, hidden = _duplicates(request, site, form)
            if duplicates or hidden:
                return _form_page(
                    request,
                    form=form,
                    items=items,
                    site=site,
                    order=None,
                    duplicates=duplicates,
                    hidden_duplicates=hidden,
                )
        try:
            order = actions.create_order(site, form.order_data(rows), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form, rows={"items": rows}, aliases=ERROR_ALIASES)
        else:
            return _after_write(request, order, _("Order %(number)s created.") % {"number": order.number})
    return _form_page(request, form=form, items=items, site=site, order=None, status=400)


def edit(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order(request, pk)
    site = order.site
    if request.method != "POST":
        form = OrderForm(user=request.user, site=site, order=order)
        items = item_formset(initial=item_initial(order))
        return _form_page(request, form=form, items=items, site=site, order=order)
    form = OrderForm(request.POST, user=request.user, site=site, order=order)
    items = item_formset(request.POST, initial=item_initial(order))
    if form.is_valid() and items.is_valid():
        rows = filled_rows(items)
        try:
            actions.update_order(order, form.order_data(rows), actor=actor_of(request))
        except ValidationError as exc:
            apply_errors(exc, form, rows={"items": rows}, aliases=ERROR_ALIASES)
        else:
            return _after_write(request, order, _("Order saved."))
    return _form_page(request, form=form, items=items, site=site, order=order, status=400)


# --- htmx helpers of the order form ----------------------------------------------------------------------


def _site_param(request: HttpRequest) -> Site:
    code = param(request.GET, "site", 64)
    site = user_sites(request.user).filter(code=code).first() if code else None
    if site is None:
        raise Http404
    return site


def _prefix(request: HttpRequest) -> str:
    prefix = request.GET.get("prefix", "")
    if not ROW_PREFIX.match(prefix):
        raise Http404
    return prefix


@require_GET
def offer_search(request: HttpRequest) -> HttpResponse:
    """Offers of one site by name, SKU or article; `pick` returns the chosen offer's cell for a line."""
    site, prefix = _site_param(request), _prefix(request)
    offers = Offer.objects.for_site(site.pk).select_related("product")
    pick = request.GET.get("pick", "")
    if pick:
        offer = (
            offers.filter(pk=int(pick)).first()
            if pick.isascii() and pick.isdigit() and len(pick) < 19
            else None
        )
        if offer is None:
            raise Http404
        return render(request, "orders/_offer_cell.html", {"prefix": prefix, "offer": offer, "site": site})
    q = param(request.GET, "offer_q")
    found = []
    if q:
        found = list(
            offers.filter(
                Q(name__icontains=q)
                | Q(sku__istartswith=q)
                | Q(article__istartswith=q)
                | Q(product__name__icontains=q)
            )[:20]
        )
    return render(
        request, "orders/_offer_results.html", {"prefix": prefix, "offers": found, "q": q, "site": site}
    )


@require_GET
def item_row(request: HttpRequest) -> HttpResponse:
    """One more empty order line; the response also bumps the formset's form count (out of band)."""
    site = _site_param(request)
    raw = request.GET.get("index", "")
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= actions.MAX_ITEMS:
        raise Http404
    index = int(raw)
    formset = item_formset(extra=index + 1)
    return render(
        request,
        "orders/_item_row_new.html",
        {"row": formset.forms[index], "offer": None, "site": site, "total": index + 1},
    )
