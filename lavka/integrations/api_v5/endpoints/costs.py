"""API v5: costs (§2.10) and their reference books, cost groups and cost items (§2.4)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from lavka.accounts.models import User
from lavka.analytics.actions import (
    CostData,
    create_cost,
    delete_costs,
    save_cost_group,
    save_cost_item,
    update_cost,
    upload_costs,
)
from lavka.analytics.models import Cost, CostGroup, CostItem
from lavka.core.models import Site
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.endpoints.tasks import (
    ENTITY_ERROR,
    LIST_QUERY,
    datetime_range,
    entity_errors,
    filter_ints,
    filter_strings,
    filter_text,
    int_value,
    invalid,
    order_ref,
    path_id,
    prefixed,
    scalar,
)
from lavka.integrations.api_v5.errors import AccessDenied, ApiError, MissingParameter, NotFound
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api

INPUT_ERROR = "Errors in the input parameters"
MAX_BATCH = 50
MAX_DELETE = 250
SOURCE_FIELDS = ("source", "medium", "campaign", "keyword", "content")
# Action / model field → the API's field, for error keys.
FIELD_NAMES = {
    "date_from": "dateFrom",
    "date_to": "dateTo",
    "cost_item": "costItem",
    "user": "userId",
    "applies_to_orders": "appliesToOrders",
    **{name: f"source.{name}" for name in SOURCE_FIELDS},
}


# --- costs -------------------------------------------------------------------------------------------


def cost_json(cost: Cost) -> dict[str, Any]:
    """A cost as §2.10 shows it."""
    order = None
    if cost.order is not None:
        order = formats.compact(
            {"id": cost.order.pk, "number": cost.order.number, "externalId": cost.order.external_id}
        )
    source = formats.compact({name: getattr(cost, name) for name in SOURCE_FIELDS})
    return formats.compact(
        {
            "id": cost.pk,
            "dateFrom": formats.date(cost.date_from),
            "dateTo": formats.date(cost.date_to),
            "summ": formats.money(cost.summ),
            "costItem": cost.cost_item.code,
            "comment": cost.comment,
            "createdAt": formats.dt(cost.created_at),
            "createdBy": str(cost.created_by_id) if cost.created_by_id else None,
            "order": order,
            "userId": cost.user_id,
            "sites": [site.code for site in cost.sites.all()],
            "source": source or None,
        }
    )


def _costs(req: ApiRequest) -> QuerySet:
    """Costs a key may see. A cost shared by every site (no sites) is for keys of every site only."""
    costs = Cost.objects.select_related("cost_item", "order").prefetch_related("sites")
    codes = req.key.site_codes
    if codes is not None:
        foreign = Cost.objects.filter(sites__in=Site.objects.exclude(code__in=codes)).values("pk")
        costs = costs.filter(pk__in=Cost.objects.filter(sites__code__in=codes).values("pk")).exclude(
            pk__in=foreign
        )
    return costs


def _cost(req: ApiRequest, id: str) -> Cost:
    pk = path_id(id)
    if not Cost.objects.filter(pk=pk).exists():
        raise NotFound()
    cost = _costs(req).filter(pk=pk).first()
    if cost is None:
        raise AccessDenied()
    return cost


@api("GET", "costs", scope="cost_read", query=LIST_QUERY)
def cost_list(req: ApiRequest) -> dict[str, Any]:
    """Costs, latest period first."""
    flt = req.filter
    qs = _costs(req)
    for name, lookup in (
        ("ids", "pk__in"),
        ("createdBy", "created_by_id__in"),
        ("users", "user_id__in"),
        ("orderIds", "order_id__in"),
    ):
        if values := filter_ints(flt, name):
            qs = qs.filter(**{lookup: values})
    for name, lookup in (
        ("costItems", "cost_item__code__in"),
        ("costGroups", "cost_item__group__code__in"),
        ("orderExternalIds", "order__external_id__in"),
    ):
        if values := filter_strings(flt, name):
            qs = qs.filter(**{lookup: values})
    if sites := filter_strings(flt, "sites"):
        qs = qs.filter(pk__in=Cost.objects.filter(sites__code__in=sites).values("pk"))
    if number := filter_text(flt, "orderNumber"):
        qs = qs.filter(order__number=number[:64])
    if comment := filter_text(flt, "comment"):
        qs = qs.filter(comment__icontains=comment[:1000])
    for name, lookup in (("minSumm", "summ__gte"), ("maxSumm", "summ__lte")):
        value = formats.parse_decimal(filter_text(flt, name), f"children[{name}]", error=INPUT_ERROR)
        if value is not None:
            qs = qs.filter(**{lookup: value})
    for name, lookup in (("dateFrom", "date_from__gte"), ("dateTo", "date_to__lte")):
        day = formats.parse_date(filter_text(flt, name), f"children[{name}]", error=INPUT_ERROR)
        if day is not None:
            qs = qs.filter(**{lookup: day})
    qs = datetime_range(qs, flt, "created_at", "createdAtFrom", "createdAtTo")
    rows, pagination = req.paginate(qs)
    return {"pagination": pagination, "costs": [cost_json(c) for c in rows]}


def _sites(req: ApiRequest, value: Any) -> list[Site]:
    codes = p.decode_entity(value)
    if not isinstance(codes, list) or len(codes) > 100:
        raise invalid("sites")
    sites = (req.site_by_code(scalar(code, "sites"), "sites") for code in codes)
    return list({site.pk: site for site in sites}.values())


def _cost_data(req: ApiRequest, data: dict[str, Any], *, creating: bool) -> CostData:
    cost = CostData()
    for name, attr in (("dateFrom", "date_from"), ("dateTo", "date_to")):
        if data.get(name) not in (None, ""):
            setattr(cost, attr, formats.parse_date(scalar(data[name], name), name))
        elif creating:
            raise invalid(name, "This value should not be blank.")
    if data.get("summ") not in (None, ""):
        cost.summ = formats.parse_decimal(scalar(data["summ"], "summ"), "summ")
    elif creating:
        raise invalid("summ", "This value should not be blank.")
    if data.get("costItem") not in (None, ""):
        code = scalar(data["costItem"], "costItem")
        cost.cost_item = CostItem.objects.filter(code=code).first()
        if cost.cost_item is None:
            raise invalid("costItem", f"Cost item with code '{code[:64]}' not found.")
    elif creating:
        raise invalid("costItem", "This value should not be blank.")
    if "comment" in data:
        cost.comment = scalar(data["comment"], "comment")
    if "order" in data:
        cost.order_set = True
        cost.order = order_ref(req, data["order"]) if data["order"] else None
    if "userId" in data:
        cost.user_set = True
        if data["userId"] not in (None, ""):
            pk = int_value(data["userId"], "userId")
            cost.user = User.objects.filter(pk=pk).first()
            if cost.user is None:
                raise invalid("userId", f"User with id={pk} not found.")
    if "source" in data:
        source = data["source"] or {}
        if not isinstance(source, dict):
            raise invalid("source")
        for name in SOURCE_FIELDS:
            if name in source:
                setattr(cost, name, scalar(source[name], f"source.{name}"))
    if data.get("sites") not in (None, ""):
        cost.sites = _sites(req, data["sites"])
    elif creating:
        cost.sites = _default_sites(req, cost)
    return cost


def _default_sites(req: ApiRequest, cost: CostData) -> list[Site]:
    """No `sites`: the `site` parameter, else the order's site, else the key's sites (none: every site)."""
    if req.params.get("site") not in (None, ""):
        return [req.site()]
    if cost.order is not None:
        return [cost.order.site]
    if req.key.site_codes is not None:
        return list(Site.objects.filter(code__in=req.key.site_codes))
    return []


@api("POST", "costs/create", scope="cost_write", entity="cost", query=("site",))
def cost_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Book a cost."""
    entity = req.entity("cost")
    with entity_errors("cost", FIELD_NAMES):
        cost = create_cost(_cost_data(req, entity, creating=True), actor=req.actor)
    return 201, {"id": cost.pk}


@api("POST", "costs/upload", scope="cost_write", entity="costs")
def cost_upload(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Book several costs, all or none."""
    items = req.entity("costs", kind=list)
    if not items or len(items) > MAX_BATCH:
        raise ApiError(ENTITY_ERROR, 400, {"costs": f"Send from 1 to {MAX_BATCH} costs."})
    batch, errors = [], {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[f"costs[{index}]"] = "This value is not valid."
            continue
        try:
            batch.append(_cost_data(req, item, creating=True))
        except ApiError as exc:
            if exc.status != 400 or not isinstance(exc.errors, dict):
                raise
            errors.update(prefixed(exc, f"costs[{index}]").errors)
    if errors:
        raise ApiError(ENTITY_ERROR, 400, errors)
    try:
        costs = upload_costs(batch, actor=req.actor)
    except ValidationError as exc:
        errors = {}
        for key, messages in exc.message_dict.items():
            index, _dot, name = key.partition(".")
            errors[f"costs[{index}].{FIELD_NAMES.get(name, name)}"] = " ".join(messages)
        raise ApiError(ENTITY_ERROR, 400, errors) from None
    return 201, {"uploadedCosts": [c.pk for c in costs]}


@api("POST", "costs/delete", scope="cost_write", entity="ids")
def cost_delete_many(req: ApiRequest) -> dict[str, Any]:
    """Remove several costs (`ids` as a JSON array or a form array)."""
    if req.get("ids") in (None, "", []):
        raise MissingParameter("ids")
    try:
        ids = list(dict.fromkeys(p.int_list(req.get("ids"), "ids")))
    except p.ParameterError:
        raise ApiError(INPUT_ERROR, 400, {"ids": "This value is not valid."}) from None
    if len(ids) > MAX_DELETE:
        raise ApiError(INPUT_ERROR, 400, {"ids": f"At most {MAX_DELETE} ids at once."})
    removed = set(delete_costs(_costs(req).filter(pk__in=ids), actor=req.actor))
    return {"count": len(removed), "notRemovedIds": [pk for pk in ids if pk not in removed]}


@api("GET", "costs/{id}", scope="cost_read")
def cost_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """A cost by id."""
    return {"cost": cost_json(_cost(req, id))}


@api("POST", "costs/{id}/edit", scope="cost_write", entity="cost", query=("site",))
def cost_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change a cost."""
    cost = _cost(req, id)
    entity = req.entity("cost")
    with entity_errors("cost", FIELD_NAMES):
        update_cost(cost, _cost_data(req, entity, creating=False), actor=req.actor)
    return {"id": cost.pk}


@api("POST", "costs/{id}/delete", scope="cost_write")
def cost_delete(req: ApiRequest, id: str) -> dict[str, Any]:
    """Remove a cost."""
    delete_costs([_cost(req, id)], actor=req.actor)
    return {}


# --- reference books ---------------------------------------------------------------------------------


def cost_group_json(group: CostGroup) -> dict[str, Any]:
    return formats.compact(
        {
            "code": group.code,
            "name": group.name,
            "ordering": group.ordering,
            "active": group.active,
            "color": group.color,
        }
    )


def cost_item_json(item: CostItem) -> dict[str, Any]:
    return {
        "code": item.code,
        "name": item.name,
        "group": item.group.code,
        "ordering": item.ordering,
        "active": item.active,
        "type": item.type,
        "appliesToOrders": item.applies_to_orders,
        "appliesToUsers": False,
    }


def _flag(data: dict[str, Any], name: str) -> bool:
    try:
        value = p.boolean(data[name], name)
    except p.ParameterError:
        raise invalid(name) from None
    return bool(value)


def _ordering(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid("ordering")
    try:
        number = int(scalar(value, "ordering"))
    except ValueError:
        raise invalid("ordering") from None
    if not 0 <= number < 2**31:
        raise invalid("ordering")
    return number


def _common(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = scalar(data["name"], "name").strip()
    if data.get("ordering") not in (None, ""):
        values["ordering"] = _ordering(data["ordering"])
    if "active" in data:
        values["active"] = _flag(data, "active")
    return values


@api("GET", "reference/cost-groups", scope="reference_read")
def cost_groups(req: ApiRequest) -> dict[str, Any]:
    """Cost groups."""
    return {"costGroups": [cost_group_json(g) for g in CostGroup.objects.all()]}


@api("POST", "reference/cost-groups/{code}/edit", scope="reference_write", entity="costGroup")
def cost_group_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or change a cost group (201 when created)."""
    data = req.entity("costGroup")
    with entity_errors("costGroup", FIELD_NAMES):
        values = _common(data)
        if "color" in data:
            values["color"] = scalar(data["color"], "color").strip()
        _group, created = save_cost_group(code, values, actor=req.actor)
    return (201 if created else 200), {}


@api("GET", "reference/cost-items", scope="reference_read")
def cost_items(req: ApiRequest) -> dict[str, Any]:
    """Cost items."""
    return {"costItems": [cost_item_json(i) for i in CostItem.objects.select_related("group")]}


@api("POST", "reference/cost-items/{code}/edit", scope="reference_write", entity="costItem")
def cost_item_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or change a cost item (201 when created)."""
    data = req.entity("costItem")
    with entity_errors("costItem", FIELD_NAMES):
        values = _common(data)
        if data.get("group") not in (None, ""):
            group_code = scalar(data["group"], "group")
            values["group"] = CostGroup.objects.filter(code=group_code).first()
            if values["group"] is None:
                raise invalid("group", f"Cost group with code '{group_code[:64]}' not found.")
        if "type" in data:
            values["type"] = scalar(data["type"], "type")
        if "appliesToOrders" in data:
            values["applies_to_orders"] = _flag(data, "appliesToOrders")
        _item, created = save_cost_item(code, values, actor=req.actor)
    return (201 if created else 200), {}
