"""API v5: custom fields and dictionaries (retailcrm-api-v5.md §2.9).

A retailCRM field belongs to the account, a Lavka field to a site (see core.custom_field_actions):
the API shows one field per entity + code, read from the first of its per-site rows the key may see.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Min, QuerySet

from lavka.core.custom_field_actions import create_field_on_sites, edit_field_on_sites, save_dictionary
from lavka.core.models import CustomDictionary, CustomField, Site
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.endpoints.references import (
    CODE,
    Form,
    Invalid,
    boolean,
    choice,
    text,
    whole,
)
from lavka.integrations.api_v5.errors import ENTITY_ERROR, ApiError, InvalidParameters, NotFound
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api

FIELD_FORM = Form(
    {
        "name": ("name", text(255)),
        "type": ("type", choice(CustomField.Type.values)),
        "required": ("required", boolean),
        "inFilter": ("in_filter", boolean),
        "inList": ("in_list", boolean),
        "ordering": ("ordering", whole),
        "displayArea": ("display_area", choice(CustomField.DisplayArea.values)),
        "viewMode": ("view_mode", choice(CustomField.ViewMode.values)),
        "dictionary": ("dictionary", text(64)),
    }
)


def _elements(value: Any) -> list[dict[str, Any]]:
    """Dictionary elements as `[{code, name, ordering}]`; a missing ordering follows the list order."""
    if isinstance(value, dict):  # a PHP array with gaps in its indexes
        value = list(value.values())
    if not isinstance(value, list):
        raise Invalid("This value should be a list of elements.")
    out = []
    for n, element in enumerate(value):
        if not isinstance(element, dict):
            raise Invalid(f"Element {n} should have a code and a name.")
        code, name = element.get("code"), element.get("name")
        ordering = element.get("ordering")
        try:
            ordering = (n + 1) * 10 if ordering in (None, "") else whole(ordering)
        except Invalid:
            raise Invalid(f"Element {n}: the ordering should be a whole number.") from None
        out.append(
            {
                "code": str(code) if isinstance(code, str | int) and not isinstance(code, bool) else code,
                "name": name,
                "ordering": ordering,
            }
        )
    return out


DICTIONARY_FORM = Form({"name": ("name", text(255)), "elements": ("elements", _elements)})


def _new_code(data: dict[str, Any], prefix: str) -> str:
    """The `code` of an entity being created (the model checks its characters)."""
    try:
        code = text(64)(data.get("code", ""))
    except Invalid as exc:
        raise ApiError(ENTITY_ERROR, 400, {f"{prefix}.code": str(exc)}) from None
    if not code:
        raise ApiError(ENTITY_ERROR, 400, {f"{prefix}.code": "This value should not be blank."})
    return code


def _entity(entity: str) -> str:
    if entity not in CustomField.Entity.values:
        raise NotFound()
    return entity


def _code(code: str) -> str:
    """A code from the path; one no row can have is simply not found (and never reaches a query)."""
    if not CODE.match(code):
        raise NotFound()
    return code


def _visible(req: ApiRequest) -> QuerySet:
    rows = CustomField.objects.select_related("dictionary")
    if req.key.site_codes is not None:
        rows = rows.filter(site__code__in=req.key.site_codes)
    return rows


def field_json(field: CustomField) -> dict[str, Any]:
    out = {
        "code": field.code,
        "name": field.name,
        "entity": field.entity,
        "type": field.type,
        "required": field.required,
        "inFilter": field.in_filter,
        "inList": field.in_list,
        "inGroupActions": False,
        "ordering": field.ordering,
        "displayArea": field.display_area,
        "viewMode": field.view_mode,
        "viewModeMobile": field.view_mode,
    }
    if field.dictionary is not None:
        out["dictionary"] = field.dictionary.code
    return out


def dictionary_json(dictionary: CustomDictionary) -> dict[str, Any]:
    elements = sorted(dictionary.elements, key=lambda e: (e.get("ordering", 0), e.get("code", "")))
    return {"code": dictionary.code, "name": dictionary.name, "elements": elements}


def _filter_text(f: dict[str, Any], name: str) -> str:
    value = f.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list) or "\x00" in str(value):
        raise InvalidParameters(name)
    return str(value).strip()[:255]


def _filter_list(f: dict[str, Any], name: str) -> list[str]:
    values = p.string_list(f.get(name), name)
    if any("\x00" in value for value in values):
        raise InvalidParameters(name)
    return values


@api("GET", "custom-fields", scope="custom_fields_read", query=("filter", "limit", "page"))
def fields_list(req: ApiRequest) -> dict[str, Any]:
    """Custom fields of orders and customers."""
    f = req.filter
    rows = _visible(req)
    if name := _filter_text(f, "name"):
        rows = rows.filter(name__icontains=name)
    if code := _filter_text(f, "code"):
        rows = rows.filter(code=code)
    if entity := _filter_text(f, "entity"):
        rows = rows.filter(entity=entity)
    for key, column in (("type", "type"), ("displayArea", "display_area"), ("viewMode", "view_mode")):
        if values := _filter_list(f, key):
            rows = rows.filter(**{f"{column}__in": values})
    if (in_filter := p.boolean(f.get("inFilter"), "inFilter")) is not None:
        rows = rows.filter(in_filter=in_filter)
    # One entry per entity + code, however many sites carry the field.
    fields = rows.values("entity", "code").annotate(first=Min("id"), rank=Min("ordering"))
    page, pagination = req.paginate(fields.order_by("rank", "entity", "code"))
    by_id = CustomField.objects.select_related("dictionary").in_bulk([row["first"] for row in page])
    return {"customFields": [field_json(by_id[row["first"]]) for row in page], "pagination": pagination}


@api("GET", "custom-fields/dictionaries", scope="custom_fields_read", query=("filter", "limit", "page"))
def dictionaries_list(req: ApiRequest) -> dict[str, Any]:
    """Custom dictionaries with their elements."""
    f = req.filter
    rows = CustomDictionary.objects.order_by("code")
    if name := _filter_text(f, "name"):
        rows = rows.filter(name__icontains=name)
    if code := _filter_text(f, "code"):
        rows = rows.filter(code=code)
    page, pagination = req.paginate(rows)
    return {"customDictionaries": [dictionary_json(d) for d in page], "pagination": pagination}


@api("POST", "custom-fields/dictionaries/create", scope="custom_fields_write", entity="customDictionary")
def dictionary_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create a dictionary → 201 `{code}`."""
    data = req.entity("customDictionary")
    values = DICTIONARY_FORM.read(data, "customDictionary")
    code = _new_code(data, "customDictionary")
    if CustomDictionary.objects.filter(code=code).exists():
        raise ApiError(
            ENTITY_ERROR, 400, {"customDictionary.code": "A dictionary with this code already exists."}
        )
    try:
        save_dictionary(None, {**values, "code": code}, actor=req.actor)
    except ValidationError as exc:
        raise DICTIONARY_FORM.error(exc, "customDictionary") from None
    return 201, {"code": code}


@api("GET", "custom-fields/dictionaries/{code}", scope="custom_fields_read")
def dictionary_get(req: ApiRequest, code: str) -> dict[str, Any]:
    """A dictionary by code."""
    dictionary = CustomDictionary.objects.filter(code=_code(code)).first()
    if dictionary is None:
        raise NotFound()
    return {"customDictionary": dictionary_json(dictionary)}


@api("POST", "custom-fields/dictionaries/{code}/edit", scope="custom_fields_write", entity="customDictionary")
def dictionary_edit(req: ApiRequest, code: str) -> dict[str, Any]:
    """Change a dictionary's name or elements."""
    dictionary = CustomDictionary.objects.filter(code=_code(code)).first()
    if dictionary is None:
        raise NotFound()
    values = DICTIONARY_FORM.read(req.entity("customDictionary"), "customDictionary")
    try:
        save_dictionary(dictionary, values, actor=req.actor)
    except ValidationError as exc:
        raise DICTIONARY_FORM.error(exc, "customDictionary") from None
    return {"code": code}


def _field_values(data: dict[str, Any]) -> dict[str, Any]:
    values = FIELD_FORM.read(data, "customField")
    if values.get("dictionary"):
        dictionary = CustomDictionary.objects.filter(code=values["dictionary"]).first()
        if dictionary is None:
            raise ApiError(
                ENTITY_ERROR,
                400,
                {"customField.dictionary": f"Dictionary '{values['dictionary']}' not found."},
            )
        values["dictionary"] = dictionary
    elif "dictionary" in values:
        values["dictionary"] = None
    return values


@api("POST", "custom-fields/{entity}/create", scope="custom_fields_write", entity="customField")
def field_create(req: ApiRequest, entity: str) -> tuple[int, dict[str, Any]]:
    """Create a field of `order` or `customer` on every site the key may see → 201 `{code}`."""
    if entity not in CustomField.Entity.values:
        raise ApiError(ENTITY_ERROR, 400, {"entity": f"Entity '{entity}' has no custom fields."})
    data = req.entity("customField")
    values = _field_values(data)
    code = _new_code(data, "customField")
    for required in ("name", "type"):
        if not values.get(required):
            raise ApiError(ENTITY_ERROR, 400, {f"customField.{required}": "This value should not be blank."})
    sites = Site.objects.all()
    if req.key.site_codes is not None:
        sites = sites.filter(code__in=req.key.site_codes)
    try:
        create_field_on_sites(sites, entity, code, values, actor=req.actor)
    except ValidationError as exc:
        raise FIELD_FORM.error(exc, "customField") from None
    return 201, {"code": code}


@api("GET", "custom-fields/{entity}/{code}", scope="custom_fields_read")
def field_get(req: ApiRequest, entity: str, code: str) -> dict[str, Any]:
    """A custom field by entity and code."""
    field = _visible(req).filter(entity=_entity(entity), code=_code(code)).order_by("id").first()
    if field is None:
        raise NotFound()
    return {"customField": field_json(field)}


@api("POST", "custom-fields/{entity}/{code}/edit", scope="custom_fields_write", entity="customField")
def field_edit(req: ApiRequest, entity: str, code: str) -> dict[str, Any]:
    """Change a custom field (on every site of the key that has it)."""
    fields = list(_visible(req).filter(entity=_entity(entity), code=_code(code)).order_by("id"))
    if not fields:
        raise NotFound()
    values = _field_values(req.entity("customField"))
    try:
        edit_field_on_sites(fields, values, actor=req.actor)
    except ValidationError as exc:
        raise FIELD_FORM.error(exc, "customField") from None
    return {"code": code}
