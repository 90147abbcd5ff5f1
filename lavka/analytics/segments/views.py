"""Segment pages: the list, the builder (with a live count), a segment's page with its customers, the CSV.

Building and changing segments is for supervisors (segments of their sites) and admins (any, also
across all sites). Any staff member may open a segment and export it, but sees and gets only the
customers they may see (`Customer.objects.visible_to`). A segment outside the user's sites is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from lavka.analytics.models import Segment
from lavka.analytics.segments import actions, compiler
from lavka.analytics.segments import forms as builder
from lavka.core.actor import actor_of
from lavka.core.forms import apply_errors
from lavka.core.htmx import render_page
from lavka.core.permissions import is_admin, sees_all_in_sites
from lavka.core.ui import PER_PAGE_CHOICES, csv_response, paginate
from lavka.customers.export import contact_cells, contact_header
from lavka.customers.models import Customer


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated or not request.user.is_active:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def builders_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Supervisors and admins; anyone else gets 404 (the page's existence does not leak)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            not request.user.is_authenticated
            or not request.user.is_active
            or not sees_all_in_sites(request.user)
        ):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def visible_segments(user: Any) -> QuerySet[Segment]:
    segments = Segment.objects.select_related("site", "created_by")
    if is_admin(user):
        return segments
    return segments.filter(Q(site__in=user.site_ids) | Q(site__isnull=True))


def may_edit(user: Any, segment: Segment | None) -> bool:
    if is_admin(user):
        return True
    if not sees_all_in_sites(user):
        return False
    return segment is None or (segment.site_id is not None and segment.site_id in user.site_ids)


def _segment(request: HttpRequest, pk: int, *, edit: bool = False) -> Segment:
    segment = get_object_or_404(visible_segments(request.user), pk=pk)
    if edit and not may_edit(request.user, segment):
        raise Http404
    return segment


def members_of(segment: Segment, user: Any) -> QuerySet[Customer]:
    """The segment's customers this user may see."""
    return compiler.customers(segment).visible_to(user)


@staff_only
def segment_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    # A stored count covers the whole segment: shown to those who see all of it.
    rows = [(s, is_admin(user) or may_edit(user, s)) for s in visible_segments(user)]
    context = {"nav": "segments", "rows": rows, "can_build": may_edit(user, None)}
    return render(request, "analytics/segments/list.html", context)


# --- the builder -----------------------------------------------------------------------------------


def _chosen_site(form: builder.SegmentForm) -> int | None:
    """The site picked in the form, if it is one the user may pick."""
    chosen = str(form["site"].value() or "")
    allowed = form.fields["site"].queryset
    return int(chosen) if chosen.isdigit() and allowed.filter(pk=int(chosen)).exists() else None


def _site_ids(request: HttpRequest, site_id: int | None) -> list[int] | None:
    """The sites whose values the builder offers: the chosen one, else the user's (admin: all)."""
    if site_id is not None:
        return [site_id]
    return None if is_admin(request.user) else list(request.user.site_ids)


def _live_count(
    request: HttpRequest, tree: dict[str, Any], errors: dict[str, list[str]], site_id: Any
) -> dict:
    if errors:
        return {"count": None, "problems": sum(len(m) for m in errors.values())}
    customers = compiler.matching(tree, site_id=site_id).visible_to(request.user)
    return {"count": compiler.count_of(customers), "problems": 0}


def _builder_context(
    request: HttpRequest,
    form: builder.SegmentForm,
    tree: dict[str, Any],
    segment: Segment | None,
    *,
    show: bool,
) -> dict[str, Any]:
    errors = builder.check(tree)
    site_id = _chosen_site(form)
    return {
        "nav": "segments",
        "form": form,
        "segment": segment,
        "tree": builder.view_tree(tree, errors if show else {}, _site_ids(request, site_id)),
        "field_groups": builder.field_groups(),
        "live": _live_count(request, tree, errors, site_id),
        "form_url": request.path,
        "count_url": reverse("analytics:segment_count"),
        "title": segment.name if segment else _("New segment"),
    }


def _initial(segment: Segment | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if segment is None:
        return {"kind": Segment.Kind.DYNAMIC}, {"op": "and", "items": [builder.empty_condition()]}
    initial = {
        "name": segment.name,
        "code": segment.code,
        "description": segment.description,
        "site": segment.site_id,
        "kind": segment.kind,
    }
    tree = segment.definition if isinstance(segment.definition, dict) and segment.definition else None
    return initial, tree or {"op": "and", "items": []}


def _save(
    request: HttpRequest, form: builder.SegmentForm, tree: dict[str, Any], segment: Segment | None
) -> Any:
    """The saved segment, or None with the errors put on the form."""
    if not form.is_valid():
        return None
    data = actions.SegmentData(
        name=form.cleaned_data["name"],
        code=form.cleaned_data["code"] or (segment.code if segment else ""),
        description=form.cleaned_data["description"],
        site=form.cleaned_data["site"],
        site_set=True,
        kind=form.cleaned_data["kind"],
        definition=tree,
    )
    try:
        if segment is None:
            return actions.create_segment(data, actor=actor_of(request))
        return actions.update_segment(segment, data, actor=actor_of(request))
    except ValidationError as exc:
        apply_errors(
            ValidationError({k: v for k, v in exc.message_dict.items() if not k.startswith("definition")}),
            form,
        )
        if any(k.startswith("definition") for k in exc.message_dict):
            form.add_error(None, _("Some conditions are not complete; see the marked ones."))
        return None


@builders_only
def segment_builder(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    segment = _segment(request, pk, edit=True) if pk else None
    if request.method != "POST":
        initial, tree = _initial(segment)
        form = builder.SegmentForm(initial=initial, user=request.user)
        context = _builder_context(request, form, tree, segment, show=segment is not None)
        return render(request, "analytics/segments/builder.html", context)
    form = builder.SegmentForm(request.POST, user=request.user)
    tree = builder.tidy(builder.tree_from_post(request.POST))
    do = request.POST.get("do", "refresh")
    if do == "save":
        saved = _save(request, form, tree, segment)
        if saved is not None:
            n = saved.last_count or 0
            messages.success(
                request,
                ngettext("Segment saved: %(n)s customer.", "Segment saved: %(n)s customers.", n) % {"n": n},
            )
            return redirect("analytics:segment", pk=saved.pk)
        context = _builder_context(request, form, tree, segment, show=True)
        return render(request, "analytics/segments/builder.html", context, status=400)
    builder.apply(tree, do)
    context = _builder_context(request, form, tree, segment, show=False)
    return render_page(
        request, "analytics/segments/builder.html", context, partial="analytics/segments/_builder.html"
    )


@builders_only
@require_POST
def segment_count(request: HttpRequest) -> HttpResponse:
    """The live count of the definition being edited (htmx), within the chosen site."""
    form = builder.SegmentForm(request.POST, user=request.user)
    tree = builder.tidy(builder.tree_from_post(request.POST))
    live = _live_count(request, tree, builder.check(tree), _chosen_site(form))
    return render(request, "analytics/segments/_count.html", {"live": live, "count_url": request.path})


# --- a segment -------------------------------------------------------------------------------------


@staff_only
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    try:
        members = members_of(segment, request.user).select_related("site", "manager", "metrics")
        count = compiler.count_of(members)
        page = paginate(request, members.order_by("-created_at", "-id").prefetch_related("phones"))
        problem = ""
    except ValidationError:  # a field of its definition went away: the segment is empty until edited
        count, page, problem = 0, None, _("The definition no longer checks; edit the segment.")
    context = {
        "nav": "segments",
        "segment": segment,
        "description": compiler.describe(segment.definition),
        "count": count,
        "page": page,
        "problem": problem,
        "per_page_choices": PER_PAGE_CHOICES,
        "can_edit": may_edit(request.user, segment),
        "sees_all": sees_all_in_sites(request.user),
    }
    return render_page(
        request, "analytics/segments/detail.html", context, partial="analytics/segments/_members.html"
    )


@staff_only
@require_GET
def segment_export(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    try:
        members = members_of(segment, request.user)
    except ValidationError:
        members = Customer.objects.none()
    header = [
        *contact_header(),
        _("Orders"),
        _("Revenue"),
        _("Last order"),
        _("RFM segment"),
        _("Lifecycle"),
        _("Churn risk"),
        _("Predicted value"),
    ]

    def rows() -> Any:
        chosen = (
            members.select_related("site", "manager", "metrics").prefetch_related("phones").order_by("pk")
        )
        for c in chosen.iterator(chunk_size=2000):
            m = getattr(c, "metrics", None)
            yield (
                *contact_cells(c),
                m.orders_count if m else c.orders_count,
                m.revenue if m else c.total_summ,
                (m.last_order_at if m else c.last_order_at) or "",
                m.rfm_segment if m else "",
                m.lifecycle if m else "",
                "" if m is None or m.churn_risk is None else f"{m.churn_risk:.3f}",
                "" if m is None or m.predicted_value is None else f"{m.predicted_value:.2f}",
            )

    return csv_response(f"segment-{segment.code}.csv", header, rows())


@builders_only
@require_POST
def segment_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk, edit=True)
    try:
        segment = actions.refresh_segment(segment, actor=actor_of(request))
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        n = segment.last_count or 0
        if segment.kind == Segment.Kind.FROZEN:
            text = ngettext(
                "Snapshot taken again: %(n)s customer.", "Snapshot taken again: %(n)s customers.", n
            )
            messages.success(request, text % {"n": n})
        else:
            text = ngettext("Counted again: %(n)s customer.", "Counted again: %(n)s customers.", n)
            messages.success(request, text % {"n": n})
    return redirect("analytics:segment", pk=segment.pk)


@builders_only
@require_POST
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk, edit=True)
    actions.delete_segment(segment, actor=actor_of(request))
    messages.success(request, _("Segment “%(name)s” deleted.") % {"name": segment.name})
    return redirect("analytics:segments")
