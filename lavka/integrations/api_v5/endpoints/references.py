"""API v5: reference books `reference/*` (retailcrm-api-v5.md §2.4).

Most books are objects keyed by code, some are lists (§1.12): the shape per book follows the spec's
table exactly, because plugins index the answer by code. Fields Lavka does not keep (a delivery type's
payment types, default flags of payment types …) get the values that mean "no restriction".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from lavka.catalog.actions import save_price_type
from lavka.catalog.models import PriceType
from lavka.core.actions import save_site
from lavka.core.models import Site
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import ENTITY_ERROR, AccessDenied, ApiError
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.inventory.actions import save_warehouse
from lavka.inventory.models import Warehouse
from lavka.orders.choices import Group
from lavka.orders.models import (
    DeliveryType,
    OrderMethod,
    OrderType,
    PaymentStatus,
    PaymentType,
    ReferenceBook,
    Status,
    StatusGroup,
)
from lavka.orders.reference_actions import upsert_reference

CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what a SlugField(max_length=64) accepts


# --- reading an entity's fields ----------------------------------------------------------------------------


class Invalid(ValueError):
    """A field value that cannot be used; the message goes into the error map."""


Parser = Callable[[Any], Any]


def text(limit: int, *, upper: bool = False) -> Parser:
    def parse(value: Any) -> str:
        if value is None or isinstance(value, dict | list | bool):
            raise Invalid("This value should be of type string.")
        result = str(value).strip()
        if len(result) > limit:
            raise Invalid(f"This value is too long. It should have {limit} characters or less.")
        if "\x00" in result:
            raise Invalid("This value is not valid.")
        return result.upper() if upper else result

    return parse


def boolean(value: Any) -> bool:
    try:
        result = p.boolean(value, "value")
    except p.ParameterError:
        raise Invalid("This value is not valid.") from None
    if result is None:
        raise Invalid("This value is not valid.")
    return result


def whole(value: Any) -> int:
    if isinstance(value, bool | dict | list) or value is None:
        raise Invalid("This value should be of type integer.")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Invalid("This value should be of type integer.") from None
    if not 0 <= number < 2**31:
        raise Invalid("This value should be between 0 and 2147483647.")
    return number


def money(value: Any) -> Decimal:
    if isinstance(value, bool | dict | list) or value is None:
        raise Invalid("This value should be a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid("This value should be a number.") from None
    if not number.is_finite() or not 0 <= number < Decimal("1e12"):
        raise Invalid("This value should be a number between 0 and 999999999999.99.")
    if number != number.quantize(Decimal("0.01")):
        raise Invalid("This value should have at most 2 decimal places.")
    return number


def choice(options: Iterable[str]) -> Parser:
    allowed = list(options)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise Invalid("The value you selected is not a valid choice.")
        return value

    return parse


def nested(key: str, limit: int) -> Parser:
    """`{"text": …}` / `{"number": …}` objects whose one field Lavka keeps as text; a string works too."""
    plain = text(limit)

    def parse(value: Any) -> str:
        if isinstance(value, dict):
            value = value.get(key, "")
        return plain(value)

    return parse


@dataclass(frozen=True)
class Form:
    """The editable fields of one entity: API name → (model field, parser)."""

    fields: dict[str, tuple[str, Parser]]
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", {model: name for name, (model, _p) in self.fields.items()})

    def read(self, data: dict[str, Any], prefix: str) -> dict[str, Any]:
        """The model values of the fields present in `data`; a 400 naming every bad field."""
        values, errors = {}, {}
        for name, (model_field, parse) in self.fields.items():
            if name not in data:
                continue
            try:
                values[model_field] = parse(data[name])
            except Invalid as exc:
                errors[f"{prefix}.{name}"] = str(exc)
        if errors:
            raise ApiError(ENTITY_ERROR, 400, errors)
        return values

    def error(self, exc: ValidationError, prefix: str) -> ApiError:
        """An action's ValidationError, keyed by the API's field names (`status.group`)."""
        if not hasattr(exc, "error_dict"):
            return ApiError(ENTITY_ERROR, 400, {prefix: " ".join(exc.messages)})
        errors = {
            f"{prefix}.{self.names.get(name, name)}" if name != "__all__" else prefix: " ".join(messages)
            for name, messages in exc.message_dict.items()
        }
        return ApiError(ENTITY_ERROR, 400, errors)


BASE = {"name": ("name", text(255)), "active": ("is_active", boolean), "ordering": ("ordering", whole)}
DEFAULTS = {"defaultForCrm": ("default_for_crm", boolean), "defaultForApi": ("default_for_api", boolean)}


def _codes(model: type[ReferenceBook]) -> list[str]:
    return list(model.objects.filter(is_active=True).values_list("code", flat=True))


def _keyed(rows: Iterable[Any], serialize: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {row.code: serialize(row) for row in rows}


def _book(row: ReferenceBook) -> dict[str, Any]:
    return {"name": row.name, "code": row.code, "active": row.is_active, "ordering": row.ordering}


def path_code(code: str, entity: str) -> str:
    """A code from the path, checked before it reaches a query (PostgreSQL refuses NUL bytes)."""
    if not CODE.match(code):
        raise ApiError(ENTITY_ERROR, 400, {f"{entity}.code": "Letters, digits, - and _ only, at most 64."})
    return code


def default_currency() -> str:
    """The account's currency: the first site's, as `GET /settings` reports it."""
    site = Site.objects.order_by("ordering", "code").first()
    return site.currency if site else "RUB"


# --- order reference books ---------------------------------------------------------------------------------


@api("GET", "reference/statuses", scope="reference_read")
def statuses(req: ApiRequest) -> dict[str, Any]:
    """Order statuses, keyed by code."""
    rows = Status.objects.select_related("group").order_by("group__ordering", "ordering", "code")
    return {"statuses": _keyed(rows, lambda s: {**_book(s), "group": s.group.code})}


@api("GET", "reference/status-groups", scope="reference_read")
def status_groups(req: ApiRequest) -> dict[str, Any]:
    """Status groups with their statuses, keyed by code."""
    members: dict[int, list[str]] = {}
    for group_id, code in Status.objects.order_by("ordering", "code").values_list("group_id", "code"):
        members.setdefault(group_id, []).append(code)
    return {
        "statusGroups": _keyed(
            StatusGroup.objects.all(),
            lambda g: {**_book(g), "process": g.code not in Group.CLOSED, "statuses": members.get(g.pk, [])},
        )
    }


@api("GET", "reference/order-types", scope="reference_read")
def order_types(req: ApiRequest) -> dict[str, Any]:
    """Order types, keyed by code."""
    return {
        "orderTypes": _keyed(
            OrderType.objects.all(),
            lambda t: {**_book(t), "defaultForCrm": t.default_for_crm, "defaultForApi": t.default_for_api},
        )
    }


@api("GET", "reference/order-methods", scope="reference_read")
def order_methods(req: ApiRequest) -> dict[str, Any]:
    """Order methods, keyed by code."""
    return {
        "orderMethods": _keyed(
            OrderMethod.objects.all(),
            lambda m: {
                **_book(m),
                "defaultForCrm": m.default_for_crm,
                "defaultForApi": m.default_for_api,
                "isFromPos": False,
            },
        )
    }


@api("GET", "reference/delivery-types", scope="reference_read")
def delivery_types(req: ApiRequest) -> dict[str, Any]:
    """Delivery types, keyed by code. Every payment type goes with every delivery type in Lavka."""
    payment_codes = _codes(PaymentType)
    currency = default_currency()
    return {
        "deliveryTypes": _keyed(
            DeliveryType.objects.all(),
            lambda d: {
                **_book(d),
                "defaultCost": formats.money(d.default_cost),
                "defaultNetCost": 0,
                "defaultForCrm": False,
                "currency": currency,
                "paymentTypes": payment_codes,
                "deliveryPaymentTypes": [{"code": code, "cod": False} for code in payment_codes],
                "deliveryServices": [],
                "sites": [],
            },
        )
    }


@api("GET", "reference/delivery-services", scope="reference_read")
def delivery_services(req: ApiRequest) -> dict[str, Any]:
    """Delivery services, keyed by code (Lavka has no delivery service integrations yet)."""
    return {"deliveryServices": {}}


@api("GET", "reference/payment-types", scope="reference_read")
def payment_types(req: ApiRequest) -> dict[str, Any]:
    """Payment types, keyed by code."""
    delivery_codes, status_codes = _codes(DeliveryType), _codes(PaymentStatus)
    return {
        "paymentTypes": _keyed(
            PaymentType.objects.all(),
            lambda t: {
                **_book(t),
                "defaultForCrm": False,
                "defaultForApi": False,
                "deliveryTypes": delivery_codes,
                "paymentStatuses": status_codes,
                "sites": [],
            },
        )
    }


@api("GET", "reference/payment-statuses", scope="reference_read")
def payment_statuses(req: ApiRequest) -> dict[str, Any]:
    """Payment statuses, keyed by code."""
    type_codes = _codes(PaymentType)
    return {
        "paymentStatuses": _keyed(
            PaymentStatus.objects.all(),
            lambda s: {
                **_book(s),
                "defaultForCrm": False,
                "defaultForApi": False,
                "paymentComplete": s.payment_complete,
                "paymentTypes": type_codes,
            },
        )
    }


@api("GET", "reference/product-statuses", scope="reference_read")
def product_statuses(req: ApiRequest) -> dict[str, Any]:
    """Order line statuses, keyed by code (Lavka's lines follow the order status, so there are none)."""
    return {"productStatuses": {}}


@dataclass(frozen=True)
class Book:
    model: type[ReferenceBook]
    entity: str
    form: Form


BOOKS = {
    "statuses": Book(Status, "status", Form({**BASE, "group": ("group", text(64))})),
    "order-types": Book(OrderType, "orderType", Form({**BASE, **DEFAULTS})),
    "order-methods": Book(OrderMethod, "orderMethod", Form({**BASE, **DEFAULTS})),
    "delivery-types": Book(
        DeliveryType, "deliveryType", Form({**BASE, "defaultCost": ("default_cost", money)})
    ),
    "payment-types": Book(PaymentType, "paymentType", Form(BASE)),
    "payment-statuses": Book(
        PaymentStatus, "paymentStatus", Form({**BASE, "paymentComplete": ("payment_complete", boolean)})
    ),
}


def _edit_book(req: ApiRequest, slug: str, code: str) -> tuple[int, dict[str, Any]]:
    book = BOOKS[slug]
    code = path_code(code, book.entity)
    values = book.form.read(req.entity(book.entity), book.entity)
    if book.model is Status:
        exists = Status.objects.filter(code=code).exists()
        if "group" in values:
            group = StatusGroup.objects.filter(code=values["group"]).first()
            if group is None:
                raise ApiError(
                    ENTITY_ERROR, 400, {"status.group": f"Status group '{values['group']}' not found."}
                )
            values["group"] = group
        elif not exists:
            raise ApiError(ENTITY_ERROR, 400, {"status.group": "This value should not be blank."})
    try:
        _row, created = upsert_reference(book.model, code, values, actor=req.actor)
    except ValidationError as exc:
        raise book.form.error(exc, book.entity) from None
    return (201 if created else 200), {}


def _register_edit(slug: str, book: Book) -> None:
    def edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
        return _edit_book(req, slug, code)

    edit.__name__ = f"{book.entity}_edit"
    api(
        "POST",
        f"reference/{slug}/{{code}}/edit",
        scope="reference_write",
        entity=book.entity,
        summary=f"Create or update a `{book.entity}` by code (201 when created).",
    )(edit)


for _slug, _book_spec in BOOKS.items():
    _register_edit(_slug, _book_spec)


# --- sites -------------------------------------------------------------------------------------------------

SITE_FORM = Form(
    {
        "name": ("name", text(255)),
        "url": ("url", text(200)),
        "description": ("description", text(5000)),
        "phones": ("phones", text(255)),
        "address": ("address", text(500)),
        "zip": ("zip_code", text(20)),
        "ymlUrl": ("yml_url", text(500)),
        "countryIso": ("country", text(2, upper=True)),
        "currency": ("currency", text(3, upper=True)),
        "ordering": ("ordering", whole),
        "active": ("is_active", boolean),
    }
)


def site_json(site: Site) -> dict[str, Any]:
    return formats.compact(
        {
            "id": site.pk,
            "code": site.code,
            "name": site.name,
            "url": site.url,
            "description": site.description,
            "phones": site.phones,
            "address": site.address,
            "zip": site.zip_code,
            "ymlUrl": site.yml_url,
            "loadFromYml": False,
            "ordering": site.ordering,
            "countryIso": site.country,
            "currency": site.currency,
            "active": site.is_active,
        }
    )


@api("GET", "reference/sites", scope="reference_read")
def sites(req: ApiRequest) -> dict[str, Any]:
    """The sites this key may use, keyed by code."""
    rows = Site.objects.all()
    if req.key.site_codes is not None:
        rows = rows.filter(code__in=req.key.site_codes)
    return {"sites": _keyed(rows, site_json)}


@api("POST", "reference/sites/{code}/edit", scope="reference_write", entity="site")
def site_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or update a site by code; the `site` form field is the JSON site object."""
    code = path_code(code, "site")
    values = SITE_FORM.read(req.entity("site"), "site")
    site = Site.objects.filter(code=code).first()
    if site is not None:
        req.check_site(site)
    elif req.key.site_codes is not None:
        raise AccessDenied()  # a key limited to some sites could not use a site it created
    try:
        save_site(site, {**values, "code": code}, actor=req.actor)
    except ValidationError as exc:
        raise SITE_FORM.error(exc, "site") from None
    return (201 if site is None else 200), {}


# --- stores (warehouses) and price types -------------------------------------------------------------------

STORE_FORM = Form(
    {
        "name": ("name", text(255)),
        "externalId": ("external_id", text(100)),
        "xmlId": ("xml_id", text(100)),
        "description": ("description", text(5000)),
        "email": ("email", text(254)),
        "type": ("type", choice(Warehouse.Type.values)),
        "inventoryType": ("inventory_type", choice(Warehouse.InventoryType.values)),
        "address": ("address", nested("text", 500)),
        "phone": ("phone", nested("number", 30)),
        "contact": ("contact", text(255)),
        "active": ("is_active", boolean),
        "ordering": ("ordering", whole),
    }
)


def store_json(warehouse: Warehouse) -> dict[str, Any]:
    out = formats.compact(
        {
            "code": warehouse.code,
            "name": warehouse.name,
            "externalId": warehouse.external_id,
            "xmlId": warehouse.xml_id,
            "description": warehouse.description,
            "email": warehouse.email,
            "type": warehouse.type,
            "inventoryType": warehouse.inventory_type,
            "contact": warehouse.contact,
            "active": warehouse.is_active,
            "ordering": warehouse.ordering,
        }
    )
    if warehouse.address:
        out["address"] = {"text": warehouse.address}
    if warehouse.phone:
        out["phone"] = {"number": warehouse.phone}
    return out


@api("GET", "reference/stores", scope="reference_read")
def stores(req: ApiRequest) -> dict[str, Any]:
    """Warehouses, as a list."""
    return {"stores": [store_json(w) for w in Warehouse.objects.all()]}


@api("POST", "reference/stores/{code}/edit", scope="reference_write", entity="store")
def store_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or update a warehouse by code."""
    code = path_code(code, "store")
    values = STORE_FORM.read(req.entity("store"), "store")
    warehouse = Warehouse.objects.filter(code=code).first()
    try:
        save_warehouse(warehouse, {**values, "code": code}, actor=req.actor)
    except ValidationError as exc:
        raise STORE_FORM.error(exc, "store") from None
    return (201 if warehouse is None else 200), {}


PRICE_TYPE_FORM = Form(
    {
        **BASE,
        "default": ("is_default", boolean),
        "description": ("description", text(5000)),
        "currency": ("currency", text(3, upper=True)),
    }
)


def price_type_json(price_type: PriceType, currency: str) -> dict[str, Any]:
    return {
        "id": price_type.pk,
        "code": price_type.code,
        "name": price_type.name,
        "active": price_type.is_active,
        "default": price_type.is_default,
        "description": price_type.description,
        "filterExpression": "",
        "currency": price_type.currency or currency,
        "geo": [],
        "groups": [],
        "ordering": price_type.ordering,
    }


@api("GET", "reference/price-types", scope="reference_read")
def price_types(req: ApiRequest) -> dict[str, Any]:
    """Price types, as a list; the default one is the offers' base price."""
    currency = default_currency()
    return {"priceTypes": [price_type_json(t, currency) for t in PriceType.objects.all()]}


@api("POST", "reference/price-types/{code}/edit", scope="reference_write", entity="priceType")
def price_type_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or update a price type by code (the Python client sends the field as `priceTypes`)."""
    code = path_code(code, "priceType")
    values = PRICE_TYPE_FORM.read(req.entity("priceType", "priceTypes"), "priceType")
    price_type = PriceType.objects.filter(code=code).first()
    try:
        save_price_type(price_type, {**values, "code": code}, actor=req.actor)
    except ValidationError as exc:
        raise PRICE_TYPE_FORM.error(exc, "priceType") from None
    return (201 if price_type is None else 200), {}


# --- books Lavka derives or does not keep ------------------------------------------------------------------


@api("GET", "reference/units", scope="reference_read")
def units(req: ApiRequest) -> dict[str, Any]:
    """Units of measure, keyed by code (Lavka sells pieces)."""
    return {"units": {"pc": {"code": "pc", "name": "Штука", "sym": "шт.", "default": True, "active": True}}}


@api("GET", "reference/countries", scope="reference_read")
def countries(req: ApiRequest) -> dict[str, Any]:
    """The countries of the sites, as ISO codes."""
    codes = Site.objects.order_by().values_list("country", flat=True).distinct()
    return {"countriesIso": sorted(set(codes))}


@api("GET", "reference/currencies", scope="reference_read")
def currencies(req: ApiRequest) -> dict[str, Any]:
    """The currencies the sites sell in; the first site's is the base one."""
    base = default_currency()
    codes = sorted(set(Site.objects.order_by().values_list("currency", flat=True)) | {base})
    return {
        "currencies": [
            {"id": n, "code": code, "isBase": code == base, "isAutoConvert": False}
            for n, code in enumerate(codes, start=1)
        ]
    }


@api("GET", "reference/couriers", scope="reference_read")
def couriers(req: ApiRequest) -> dict[str, Any]:
    """Couriers (Lavka keeps none yet)."""
    return {"couriers": []}


@api("GET", "reference/legal-entities", scope="reference_read")
def legal_entities(req: ApiRequest) -> dict[str, Any]:
    """The shop's legal entities (Lavka keeps none yet)."""
    return {"legalEntities": []}


@api("GET", "reference/mg-channels", scope="reference_read")
def mg_channels(req: ApiRequest) -> dict[str, Any]:
    """Messenger channels (Lavka has no messenger gateway)."""
    return {"mgChannels": []}
