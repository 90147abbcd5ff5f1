"""API v5: customers (§2.3, §3.4).

Input is read into `CustomerData` and written by `lavka.customers.actions`; action errors come back
under the API's field names (`customer.email`, `customer.address.city` …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from lavka.accounts.models import User
from lavka.core.models import HistoryRecord, Site
from lavka.core.phones import InvalidPhone, normalize_phone
from lavka.core.ui import PHONE_CHARS, name_q
from lavka.customers import actions
from lavka.customers.actions import CustomerData, CustomerExists
from lavka.customers.models import (
    Consent,
    CorporateContact,
    Customer,
    CustomerAddress,
    CustomerNote,
    CustomerPhone,
)
from lavka.integrations.api_v5 import formats, history
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import (
    ENTITY_ERROR,
    ApiError,
    Errors,
    InvalidParameters,
    MissingParameter,
    NotFound,
)
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api

UPLOAD_LIMIT = 50
# What `customer_json` reads besides the row itself; `customer_prefetch("customer__")` for orders.
CUSTOMER_PREFETCH = ("phones", "tags", "addresses", "consents")
MAX_ID = 2**62

# Lavka's field names (in actions' errors) → the API's.
FIELD_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "patronymic": "patronymic",
    "email": "email",
    "phones": "phones",
    "birthday": "birthday",
    "sex": "sex",
    "manager": "managerId",
    "external_id": "externalId",
    "vip": "vip",
    "bad": "bad",
    "source": "source.source",
    "medium": "source.medium",
    "campaign": "source.campaign",
    "keyword": "source.keyword",
    "content": "source.content",
    "custom_fields": "customFields",
    "tags": "tags",
    "consents": "subscribed",
    "text": "text",
    "address.country_iso": "address.countryIso",
}
# The address as the API spells it ↔ the model's fields.
ADDRESS_KEYS = {
    "index": "index",
    "countryIso": "country_iso",
    "region": "region",
    "city": "city",
    "street": "street",
    "building": "building",
    "flat": "flat",
    "notes": "notes",
    "text": "text",
}
SOURCE_KEYS = ("source", "medium", "campaign", "keyword", "content")
# Subscription channels (retailCRM's codes) → Lavka's consent channels.
CHANNELS = {
    "email": "email",
    "sms": "sms",
    "waba": "messenger",
    "whatsapp": "messenger",
    "telegram": "messenger",
    "viber": "messenger",
    "messenger": "messenger",
}


# --- output --------------------------------------------------------------------------------------------


def customer_prefetch(prefix: str = "") -> list[str]:
    return [prefix + name for name in CUSTOMER_PREFETCH]


def address_json(address: Any) -> dict[str, Any]:
    """A customer's or a corporate customer's address (§3.4)."""
    values = {name: getattr(address, name) for name in ADDRESS_KEYS.values()}
    for extra in ("external_id", "name"):
        if hasattr(address, extra):
            values[extra] = getattr(address, extra)
    return address_values_json({"id": address.pk, **values})


def address_values_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """`address_json` from the address's values by field name, with `id`."""
    out = {"id": values["id"]}
    out.update({api_name: values[name] for api_name, name in ADDRESS_KEYS.items()})
    for extra, api_name in (("external_id", "externalId"), ("name", "name")):
        if extra in values:
            out[api_name] = values[extra]
    return formats.compact(out)


def tags_json(tags: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Tags given as (name, color)."""
    return [{"name": name, "color": color, "attached": False} for name, color in tags]


def source_json(values: Mapping[str, Any]) -> dict[str, str] | None:
    """The UTM source of a customer or corporate customer, from its values by field name."""
    return formats.compact({key: values[key] for key in SOURCE_KEYS}) or None


def customer_ref(customer: Customer) -> dict[str, Any]:
    """The short form used in history, notes and contacts: `{id, externalId?, site}`."""
    return formats.compact(
        {"id": customer.pk, "externalId": customer.external_id, "site": customer.site.code}
    )


CUSTOMER_FIELDS = (
    "id",
    "external_id",
    "site__code",
    "created_at",
    "manager_id",
    "vip",
    "bad",
    "first_name",
    "last_name",
    "patronymic",
    "email",
    "birthday",
    "sex",
    "custom_fields",
    *SOURCE_KEYS,
    "orders_count",
    "total_summ",
)
ADDRESS_FIELDS = ("id", *ADDRESS_KEYS.values())


@dataclass
class CustomerParts:
    """What a customer's JSON shows besides its own row: phones, tags, main address, e-mail consent."""

    phones: list[str]
    tags: list[tuple[str, str]]
    address: dict[str, Any] | None = None
    email_marketing: tuple[bool, Any] | None = None  # (granted, changed_at)


def _customer_out(row: dict[str, Any], parts: CustomerParts) -> dict[str, Any]:
    """A customer as retailCRM shows it (the full object, also embedded in orders), from plain values."""
    count, total = row["orders_count"], row["total_summ"]
    out: dict[str, Any] = {
        "type": "customer",
        "id": row["id"],
        "externalId": row["external_id"],
        "site": row["site__code"],
        "isContact": row.get("is_contact"),
        "createdAt": formats.dt(row["created_at"]),
        "managerId": row["manager_id"],
        "vip": row["vip"],
        "bad": row["bad"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "patronymic": row["patronymic"],
        "email": row["email"],
        "phones": [{"number": number} for number in parts.phones],
        "address": address_values_json(parts.address) if parts.address else None,
        "birthday": formats.date(row["birthday"]),
        "sex": row["sex"],
        "tags": tags_json(parts.tags),
        "customFields": row["custom_fields"] or [],
        "source": source_json(row),
        "ordersCount": count,
        "totalSumm": formats.money(total),
        "averageSumm": formats.money(round(total / count, 2) if count else 0),
    }
    if parts.email_marketing is not None:
        granted, changed_at = parts.email_marketing
        out["subscribed"] = granted
        if not granted:
            out["emailMarketingUnsubscribedAt"] = formats.dt(changed_at)
    return formats.compact(out)


def customer_json(customer: Customer) -> dict[str, Any]:
    """A customer instance as the API shows it.

    Reads phones, tags, addresses and consents through `.all()`, so a queryset that prefetched
    `CUSTOMER_PREFETCH` serialises any number of customers without further queries.
    """
    main = next((a for a in customer.addresses.all() if a.is_main), None)
    consent = next(
        (c for c in customer.consents.all() if c.channel == "email" and c.purpose == "marketing"), None
    )
    row = {name: getattr(customer, name) for name in CUSTOMER_FIELDS if name != "site__code"}
    row["site__code"] = customer.site.code
    row["is_contact"] = getattr(customer, "is_contact", None)
    parts = CustomerParts(
        phones=[phone.number for phone in customer.phones.all()],
        tags=[(tag.name, tag.color) for tag in customer.tags.all()],
        address={name: getattr(main, name) for name in ADDRESS_FIELDS} if main else None,
        email_marketing=(consent.granted, consent.changed_at) if consent else None,
    )
    return _customer_out(row, parts)


def customers_json(ids: Iterable[int], *, contact_flag: bool = False) -> dict[int, dict[str, Any]]:
    """Customers by id as the API shows them, from plain rows in five queries.

    A history page or an order list embeds up to 100 customers; model instances with four prefetched
    relations cost several times more to build than the JSON itself. `contact_flag` adds `isContact`
    (whether the customer is a corporate customer's contact), which lists show and orders do not.
    """
    found = Customer.objects.filter(pk__in=ids)
    if contact_flag:
        found = found.annotate(is_contact=Exists(CorporateContact.objects.filter(customer=OuterRef("pk"))))
    names = (*CUSTOMER_FIELDS, "is_contact") if contact_flag else CUSTOMER_FIELDS
    rows = {row["id"]: row for row in found.values(*names)}
    parts = {pk: CustomerParts(phones=[], tags=[]) for pk in rows}
    for pk, number in (
        CustomerPhone.objects.filter(customer_id__in=rows)
        .order_by("position", "id")
        .values_list("customer_id", "number")
    ):
        parts[pk].phones.append(number)
    for pk, name, color in (
        Customer.tags.through.objects.filter(customer_id__in=rows)
        .order_by("tag__name", "tag_id")
        .values_list("customer_id", "tag__name", "tag__color")
    ):
        parts[pk].tags.append((name, color))
    for address in (
        CustomerAddress.objects.filter(customer_id__in=rows, is_main=True)
        .order_by("-id")
        .values("customer_id", *ADDRESS_FIELDS)
    ):
        parts[address["customer_id"]].address = address  # the lowest id wins, as in `customer_json`
    for pk, granted, changed_at in Consent.objects.filter(
        customer_id__in=rows, channel="email", purpose="marketing"
    ).values_list("customer_id", "granted", "changed_at"):
        parts[pk].email_marketing = (granted, changed_at)
    return {pk: _customer_out(row, parts[pk]) for pk, row in rows.items()}


def customers_queryset() -> QuerySet[Customer]:
    return (
        Customer.objects.select_related("site")
        .prefetch_related(*CUSTOMER_PREFETCH)
        .annotate(is_contact=Exists(CorporateContact.objects.filter(customer=OuterRef("pk"))))
    )


# --- input ---------------------------------------------------------------------------------------------


def text_value(raw: dict[str, Any], name: str, errors: Errors) -> str | None:
    """A plain string field; numbers are taken as text, objects are an error; absent → None."""
    if name not in raw:
        return None
    value = raw[name]
    if value is None:
        return ""
    if isinstance(value, dict | list):
        errors.add(name)
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def bool_value(raw: dict[str, Any], name: str, errors: Errors) -> bool | None:
    if raw.get(name) is None:
        return None
    try:
        return p.boolean(raw[name], name)
    except p.ParameterError:
        errors.add(name)
        return None


def external_id_value(raw: dict[str, Any], errors: Errors, name: str = "externalId") -> str | None:
    if name not in raw:
        return None
    value = formats.external_id(raw[name])
    if value is None and raw[name] not in (None, ""):
        errors.add(name)
    return value if value is not None else ""


def manager_value(raw: dict[str, Any], errors: Errors) -> tuple[bool, User | None]:
    """(`managerId` given, the user); an unknown user is an error."""
    if "managerId" not in raw:
        return False, None
    value = raw["managerId"]
    if value in (None, ""):
        return True, None
    user = None
    if (
        isinstance(value, int | str)
        and not isinstance(value, bool)
        and str(value).strip().isascii()
        and str(value).strip().isdigit()
    ):
        number = int(str(value).strip())
        user = User.objects.filter(pk=number).first() if number < MAX_ID else None
    if user is None:
        errors.add("managerId", f"User with id={value} not found.")
    return True, user


def names_value(raw: dict[str, Any], name: str, errors: Errors) -> list[str] | None:
    """Tags as `["a", "b"]` or `[{"name": "a"}]`."""
    value = p.decode_entity(raw.get(name))
    if value is None:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        errors.add(name)
        return None
    names = []
    for item in value:
        item = item.get("name") if isinstance(item, dict) else item
        if isinstance(item, dict | list | None):
            errors.add(name)
            return None
        names.append(str(item))
    return names


def custom_fields_value(raw: dict[str, Any], errors: Errors) -> dict[str, Any] | None:
    value = raw.get("customFields")
    if value is None:
        return None
    if value == []:
        return {}
    if not isinstance(value, dict):
        errors.add("customFields")
        return None
    return value


def source_value(raw: dict[str, Any], errors: Errors) -> dict[str, str]:
    value = raw.get("source")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("source")
        return {}
    sub = Errors(errors.prefix + "source.")
    out = {key: text for key in SOURCE_KEYS if (text := text_value(value, key, sub)) is not None}
    errors.map.update(sub.map)
    return out


def address_value(raw: dict[str, Any], errors: Errors) -> dict[str, str] | None:
    """The given parts of `address`, under the model's names."""
    value = raw.get("address")
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add("address")
        return None
    sub = Errors(errors.prefix + "address.")
    parts = address_parts(value, sub)
    errors.map.update(sub.map)
    return parts


def address_parts(value: dict[str, Any], errors: Errors) -> dict[str, str]:
    """The given parts of an address object, under the model's names."""
    return {
        name: text
        for api_name, name in ADDRESS_KEYS.items()
        if (text := text_value(value, api_name, errors)) is not None
    }


def phones_value(raw: dict[str, Any], errors: Errors) -> list[str] | None:
    value = raw.get("phones")
    if value is None:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        errors.add("phones")
        return None
    numbers = []
    for n, item in enumerate(value):
        number = item.get("number") if isinstance(item, dict) else item
        if isinstance(number, dict | list | bool):
            errors.add(f"phones[{n}].number")
        elif number not in (None, ""):
            numbers.append(str(number))
    return numbers


def consents_value(raw: dict[str, Any], errors: Errors) -> dict[tuple[str, str], bool]:
    """`subscribed` and `emailMarketingUnsubscribedAt` are the e-mail marketing consent."""
    subscribed = bool_value(raw, "subscribed", errors)
    if raw.get("emailMarketingUnsubscribedAt") not in (None, ""):
        try:
            formats.parse_datetime(raw["emailMarketingUnsubscribedAt"], "emailMarketingUnsubscribedAt")
        except ApiError:
            errors.add("emailMarketingUnsubscribedAt")
        subscribed = False
    return {} if subscribed is None else {("email", "marketing"): subscribed}


def customer_data(raw: dict[str, Any], errors: Errors) -> CustomerData:
    """The customer fields of §3.4 that `raw` carries (an edit changes only those)."""
    data = CustomerData(
        first_name=text_value(raw, "firstName", errors),
        last_name=text_value(raw, "lastName", errors),
        patronymic=text_value(raw, "patronymic", errors),
        email=text_value(raw, "email", errors),
        phones=phones_value(raw, errors),
        birthday=text_value(raw, "birthday", errors),
        sex=text_value(raw, "sex", errors),
        external_id=external_id_value(raw, errors),
        vip=bool_value(raw, "vip", errors),
        bad=bool_value(raw, "bad", errors),
        custom_fields=custom_fields_value(raw, errors),
        address=address_value(raw, errors),
        tags=names_value(raw, "tags", errors),
        add_tags=names_value(raw, "addTags", errors),
        remove_tags=names_value(raw, "removeTags", errors),
        consents=consents_value(raw, errors),
        consent_source="api",
        **source_value(raw, errors),
    )
    data.manager_set, data.manager = manager_value(raw, errors)
    return data


def api_field(name: str) -> str:
    """An action's error key in the API's words."""
    if name in FIELD_NAMES:
        return FIELD_NAMES[name]
    if name.startswith("custom_"):
        return "customFields." + name.removeprefix("custom_")
    return name


def action_error(exc: ValidationError, prefix: str, names: Callable[[str], str] = api_field) -> ApiError:
    if isinstance(exc, CustomerExists):
        return ApiError("Customer already exists.", 400, {prefix + "externalId": "Customer already exists."})
    if not hasattr(exc, "error_dict"):
        return ApiError(ENTITY_ERROR, 400, {prefix.rstrip("."): " ".join(exc.messages)})
    return ApiError(ENTITY_ERROR, 400, {prefix + names(k): " ".join(v) for k, v in exc.message_dict.items()})


# --- lookups -------------------------------------------------------------------------------------------


def int_id(value: Any) -> int | None:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def find_by(
    req: ApiRequest,
    queryset: QuerySet,
    uid: Any,
    by: str,
    *,
    site_value: Any = None,
    site_field: str = "site",
) -> Any:
    """An entity by id or by externalId (+ site) that the key may see; 404 or 403 otherwise.

    By externalId without a site, all the key's sites are searched; two hits need `site`.
    """
    if by == "id":
        pk = int_id(uid)
        found = queryset.filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise NotFound()
        site = req.site(value=site_value) if (site_value or req.params.get("site")) else None
        owner_site = _site_of(found, site_field)
        if site is not None and owner_site.pk != site.pk:
            raise NotFound()
        req.check_site(owner_site)
        return found
    external = formats.external_id(uid)
    if external is None:
        raise NotFound()
    site = req.site(value=site_value)
    if site is not None:
        found = queryset.filter(**{site_field: site, "external_id": external}).first()
    else:
        hits = list(queryset.filter(req.site_q(site_field), external_id=external)[:2])
        if len(hits) > 1:
            raise MissingParameter("site")
        found = hits[0] if hits else None
    if found is None:
        raise NotFound()
    return found


def _site_of(entity: Model, site_field: str) -> Site:
    value: Any = entity
    for part in site_field.split("__"):
        value = getattr(value, part)
    return value


def find_customer(req: ApiRequest, uid: Any, by: str | None = None, *, site_value: Any = None) -> Customer:
    customer = find_by(req, customers_queryset(), uid, by or req.by(), site_value=site_value)
    if customer.merged_into_id:
        raise NotFound()
    return customer


def customer_by_ref(req: ApiRequest, ref: Any, key: str, *, site: Site | None = None) -> Customer:
    """`{id}` or `{externalId, site?}` in an entity (a note's customer, a contact's person …)."""
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("externalId")):
        raise ApiError(ENTITY_ERROR, 400, {key: "Customer id or externalId is required."})
    by = "id" if ref.get("id") not in (None, "") else "externalId"
    try:
        return find_customer(req, ref[by], by, site_value=ref.get("site") or (site.code if site else None))
    except NotFound:
        raise ApiError(ENTITY_ERROR, 400, {key: f"Customer with {by}={ref[by]} not found."}) from None


def site_for(req: ApiRequest, entity: dict[str, Any]) -> Site:
    site = req.site(required=True, value=entity.get("site"))
    assert site is not None
    return site


def created_at_value(raw: dict[str, Any], prefix: str) -> Any:
    if raw.get("createdAt") in (None, ""):
        return None
    return formats.parse_datetime(raw["createdAt"], prefix + "createdAt")


# --- list filters ----------------------------------------------------------------------------------------


def filter_ints(flt: dict[str, Any], name: str) -> list[int] | None:
    return p.int_list(flt[name], name) if flt.get(name) not in (None, "", []) else None


def filter_strings(flt: dict[str, Any], name: str) -> list[str] | None:
    return p.string_list(flt[name], name) if flt.get(name) not in (None, "", []) else None


def filter_text(flt: dict[str, Any], name: str) -> str:
    value = flt.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise InvalidParameters(name)
    return str(value).strip()[:255]


def filter_bool(flt: dict[str, Any], name: str) -> bool | None:
    if flt.get(name) in (None, ""):
        return None
    return p.boolean(flt[name], name)


def filter_date_range(qs: QuerySet, flt: dict[str, Any], field: str, low: str, high: str) -> QuerySet:
    """`low`/`high` (`Y-m-d` or a datetime) as a range on `field`; a bare date covers the whole day."""
    for name, op in ((low, "gte"), (high, "lte")):
        value = filter_text(flt, name)
        if not value:
            continue
        try:
            moment = formats.parse_datetime(value, name)
        except ApiError:
            raise InvalidParameters(name) from None
        if op == "lte" and len(value) <= 10:
            moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
        qs = qs.filter(**{f"{field}__{op}": moment})
    return qs


def filter_number_range(qs: QuerySet, flt: dict[str, Any], field: str, low: str, high: str) -> QuerySet:
    for name, op in ((low, "gte"), (high, "lte")):
        value = filter_text(flt, name)
        if not value:
            continue
        try:
            number = formats.parse_decimal(value, name)
        except ApiError:
            raise InvalidParameters(name) from None
        qs = qs.filter(**{f"{field}__{op}": number})
    return qs


def phone_regions(req: ApiRequest, site_codes: list[str] | None) -> set[str]:
    """The countries whose number formats a phone search reads (the sites searched)."""
    sites = Site.objects.all()
    if site_codes:
        sites = sites.filter(code__in=site_codes)
    elif req.key.site_codes is not None:
        sites = sites.filter(code__in=req.key.site_codes)
    return set(sites.values_list("country", flat=True)) or {"RU"}


def name_or_phone_q(text: str, regions: set[str]) -> Q:
    """`filter[name]`: the full name, or a phone number in any format (§1.8, §6 #4)."""
    text = text.strip()[:100]
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not (PHONE_CHARS.match(text) and len(digits) >= 5):
        return name_q(text)
    numbers = set()
    for region in regions:
        try:
            numbers.add(normalize_phone(text, region))
        except InvalidPhone:
            continue
    phones = (
        CustomerPhone.objects.filter(number__in=numbers)
        if numbers
        else CustomerPhone.objects.filter(number__contains=digits)
    )
    return Q(pk__in=phones.values("customer_id"))


def filtered_customers(req: ApiRequest) -> QuerySet[Customer]:
    flt = req.filter
    qs = Customer.objects.active().filter(req.site_q())
    if (ids := filter_ints(flt, "ids")) is not None:
        qs = qs.filter(pk__in=ids)
    if (external_ids := filter_strings(flt, "externalIds")) is not None:
        qs = qs.filter(external_id__in=external_ids)
    sites = filter_strings(flt, "sites")
    if sites is not None:
        qs = qs.filter(site__code__in=sites)
    if name := filter_text(flt, "name"):
        qs = qs.filter(name_or_phone_q(name, phone_regions(req, sites)))
    if email := filter_text(flt, "email"):
        qs = qs.filter(email__iexact=email)
    if (managers := filter_ints(flt, "managers")) is not None:
        qs = qs.filter(manager_id__in=managers)
    if (tags := filter_strings(flt, "tags")) is not None:
        qs = qs.filter(pk__in=Customer.tags.through.objects.filter(tag__name__in=tags).values("customer_id"))
    for flag in ("vip", "bad"):
        if (value := filter_bool(flt, flag)) is not None:
            qs = qs.filter(**{flag: value})
    qs = filter_date_range(qs, flt, "created_at", "dateFrom", "dateTo")
    qs = filter_number_range(qs, flt, "orders_count", "minOrdersCount", "maxOrdersCount")
    qs = filter_number_range(qs, flt, "total_summ", "minTotalSumm", "maxTotalSumm")
    return qs


# --- endpoints -----------------------------------------------------------------------------------------


@api("GET", "customers", scope="customer_read", query=("limit", "page"))
def customer_list(req: ApiRequest) -> dict[str, Any]:
    """Customers by filter: ids, externalIds, name (or phone), email, sites, managers, tags …"""
    qs = filtered_customers(req)
    rows, pagination = req.paginate(qs.order_by("-created_at", "-id").values_list("pk", flat=True))
    found = customers_json(rows, contact_flag=True)
    return {"pagination": pagination, "customers": [found[pk] for pk in rows if pk in found]}


@api("GET", "customers/{id}", scope="customer_read", query=("by", "site"))
def customer_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """One customer by externalId (default) or id."""
    return {"customer": customer_json(find_customer(req, id))}


def create_one(req: ApiRequest, raw: Any, prefix: str) -> Customer:
    if not isinstance(raw, dict):
        raise ApiError(ENTITY_ERROR, 400, {prefix.rstrip("."): "This value is not valid."})
    errors = Errors(prefix)
    data = customer_data(raw, errors)
    errors.raise_if_any()
    site = site_for(req, raw)
    created_at = created_at_value(raw, prefix)
    try:
        return actions.create_customer(site, data, actor=req.actor, created_at=created_at)
    except ValidationError as exc:
        raise action_error(exc, prefix) from exc


@api("POST", "customers/create", scope="customer_write", entity="customer", query=("site",))
def customer_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create a customer; an externalId the site already has → 400 `Customer already exists.`"""
    customer = create_one(req, req.entity("customer"), "customer.")
    return 201, {"id": customer.pk}


def merged_custom_fields(current: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any] | None:
    """An edit sends only the fields it changes; null removes one."""
    if given is None:
        return None
    return {k: v for k, v in {**current, **given}.items() if v not in (None, "")}


@api("POST", "customers/{id}/edit", scope="customer_write", entity="customer", query=("by", "site"))
def customer_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change the fields sent; `phones` and `tags` are replaced, `addTags`/`removeTags` adjust."""
    raw = req.entity("customer")
    customer = find_customer(req, id, site_value=raw.get("site"))
    errors = Errors("customer.")
    data = customer_data(raw, errors)
    errors.raise_if_any()
    data.custom_fields = merged_custom_fields(customer.custom_fields, data.custom_fields)
    try:
        actions.update_customer(customer, data, actor=req.actor)
    except ValidationError as exc:
        raise action_error(exc, "customer.") from exc
    return {"id": customer.pk}


def entity_list(req: ApiRequest, name: str) -> list[Any]:
    items = req.entity(name, kind=(list, dict))
    if isinstance(items, dict):
        items = list(items.values())
    if not items:
        raise ApiError(ENTITY_ERROR, 400, {name: "This collection should contain 1 element or more."})
    if len(items) > UPLOAD_LIMIT:
        raise ApiError(
            ENTITY_ERROR, 400, {name: f"This collection should contain {UPLOAD_LIMIT} elements or less."}
        )
    return items


@dataclass
class UploadResult:
    uploaded: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    errors: dict[str, str]

    def answer(self) -> tuple[int, dict[str, Any]]:
        if not self.failed:
            return 201, {"uploadedCustomers": self.uploaded, "failedCustomers": []}
        return 460, {
            "errorMsg": "Customers are loaded with errors",
            "errors": self.errors,
            "uploadedCustomers": self.uploaded,
            "failedCustomers": self.failed,
        }


def upload(req: ApiRequest, name: str, create: Callable[[ApiRequest, Any, str], Any]) -> UploadResult:
    """Each item is created on its own (all or nothing); the failures are reported per item."""
    result = UploadResult([], [], {})
    for n, raw in enumerate(entity_list(req, name)):
        prefix = f"{name}[{n}]."
        try:
            created = create(req, raw, prefix)
        except ApiError as exc:
            external = formats.external_id(raw.get("externalId")) if isinstance(raw, dict) else None
            result.failed.append(formats.compact({"externalId": external}))
            errors = exc.errors if isinstance(exc.errors, dict) else {}
            result.errors.update(errors or {prefix.rstrip("."): exc.message})
        else:
            result.uploaded.append(formats.compact({"id": created.pk, "externalId": created.external_id}))
    return result


@api("POST", "customers/upload", scope="customer_write", entity="customers", query=("site",))
def customer_upload(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create up to 50 customers; 460 when some of them failed."""
    return upload(req, "customers", create_one).answer()


def fix_external_ids(
    req: ApiRequest, name: str, queryset: QuerySet, save: Callable[[Any, str], None]
) -> dict[str, Any]:
    """Set externalIds by id, all or none (`save(entity, external_id)` writes one)."""
    rows = entity_list(req, name)
    with transaction.atomic():
        for n, row in enumerate(rows):
            key = f"{name}[{n}]"
            pk = int_id(row.get("id")) if isinstance(row, dict) else None
            external = formats.external_id(row.get("externalId")) if isinstance(row, dict) else None
            if pk is None or external is None:
                raise ApiError(ENTITY_ERROR, 400, {key: "Both id and externalId are required."})
            entity = queryset.filter(pk=pk).first()
            if entity is None:
                raise ApiError(ENTITY_ERROR, 400, {f"{key}.id": f"Customer with id={pk} not found."})
            req.check_site(entity.site)
            try:
                save(entity, external)
            except ValidationError as exc:
                raise action_error(exc, f"{key}.") from exc
    return {}


@api("POST", "customers/fix-external-ids", scope="customer_write", entity="customers")
def customer_fix_external_ids(req: ApiRequest) -> dict[str, Any]:
    """Give customers created in the CRM the shop's externalIds."""

    def save(customer: Customer, external: str) -> None:
        actions.update_customer(customer, CustomerData(external_id=external), actor=req.actor)

    return fix_external_ids(req, "customers", Customer.objects.active().select_related("site"), save)


@api("POST", "customers/combine", scope="customer_write", entity="customers")
def customer_combine(req: ApiRequest) -> dict[str, Any]:
    """Merge `customers` into `resultCustomer` (its data wins; orders, notes, phones move)."""
    result = customer_by_ref(req, req.entity("resultCustomer"), "resultCustomer")
    others = [
        customer_by_ref(req, ref, f"customers[{n}]") for n, ref in enumerate(entity_list(req, "customers"))
    ]
    try:
        actions.merge_customers(result, others, actor=req.actor)
    except ValidationError as exc:
        raise action_error(exc, "") from exc
    return {}


@api(
    "POST",
    "customers/{id}/subscriptions",
    scope="customer_write",
    entity="subscriptions",
    query=("by", "site"),
)
def customer_subscriptions(req: ApiRequest, id: str) -> dict[str, Any]:
    """Marketing subscriptions per channel, kept as the customer's consent."""
    customer = find_customer(req, id)
    items = req.entity("subscriptions", kind=(list, dict))
    if isinstance(items, dict):
        items = [items]
    consents: dict[tuple[str, str], bool] = {}
    errors = Errors("subscriptions")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            errors.add(f"[{n}]")
            continue
        channel = CHANNELS.get(str(item.get("channel", "")).lower())
        if channel is None:
            errors.add(f"[{n}].channel", "Unknown channel.")
        try:
            active = p.boolean(item.get("active"), "active")
        except p.ParameterError:
            active = None
        if active is None:
            errors.add(f"[{n}].active")
        if channel is not None and active is not None:
            consents[(channel, "marketing")] = active
    errors.raise_if_any()
    actions.update_customer(customer, CustomerData(consents=consents, consent_source="api"), actor=req.actor)
    return {}


# --- history -------------------------------------------------------------------------------------------


def history_value(field: str, value: Any) -> Any:
    """A value as the feed shows it: a user as `{id}`, and "no value" as null, never ""."""
    if value == "":
        return None
    if field in ("manager", "merged_into") and isinstance(value, int):
        return {"id": value}
    return value


def customer_history(records: list[HistoryRecord], req: ApiRequest) -> list[dict[str, Any]]:
    """Lavka's records in the shape of §2.3: the full customer on creation and removal, else a stub."""
    ids = {r.entity_id for r in records}
    full_ids = {r.entity_id for r in records if r.created or r.field == "merged_into"}
    stubs = {c.pk: customer_ref(c) for c in Customer.objects.filter(pk__in=ids).select_related("site")}
    full = customers_json(full_ids, contact_flag=True)
    address_ids = {r.context.get("address_id") for r in records} - {None}
    addresses = {a.pk: a for a in CustomerAddress.objects.filter(pk__in=address_ids)}
    out = []
    for record in records:
        item = history.record_base(record, req)
        field, old, new = record.field, record.old_value, record.new_value
        if field == "merged_into":  # combined into another customer: it is gone from the list
            item["deleted"] = True
            item["combinedTo"] = {"id": new}
            field, old, new = "id", record.entity_id, None
        elif field == "consent.email.marketing":
            field = "email_marketing_unsubscribed_at"
            old, new = None, (None if new else formats.dt(record.created_at))
        elif field == "address.country_iso":
            field = "address.country"
        item.update(
            {"field": field, "oldValue": history_value(field, old), "newValue": history_value(field, new)}
        )
        whole = record.created or record.field == "merged_into"
        item["customer"] = (full if whole else stubs).get(record.entity_id, {"id": record.entity_id})
        address_id = record.context.get("address_id")
        if address_id:
            address = addresses.get(address_id)
            item["address"] = {"id": address_id, "isMain": address.is_main} if address else {"id": address_id}
        out.append(item)
    return out


def history_scope(req: ApiRequest, model: type[Model], id_filter: str, external_filter: str) -> Any:
    """The entity ids the feed is narrowed to: one entity's, the key's sites', or None (all)."""
    flt = req.filter
    rows = model.objects.all()
    narrowed = False
    if flt.get(id_filter) not in (None, ""):
        pk = int_id(flt[id_filter])
        if pk is None:
            raise InvalidParameters(id_filter)
        rows, narrowed = rows.filter(pk=pk), True
    if flt.get(external_filter) not in (None, ""):
        external = formats.external_id(flt[external_filter])
        if external is None:
            raise InvalidParameters(external_filter)
        rows, narrowed = rows.filter(external_id=external), True
    if req.key.site_codes is not None:
        rows, narrowed = rows.filter(req.site_q()), True
    return rows.values("id") if narrowed else None


@api("GET", "customers/history", scope="customer_read", query=("limit", "page"))
def customers_history(req: ApiRequest) -> dict[str, Any]:
    """Customer changes in id order: move `filter[sinceId]` forward to read them all once."""
    entity_ids = history_scope(req, Customer, "customerId", "customerExternalId")
    return history.feed(req, "customer", customer_history, entity_ids=entity_ids)


# --- notes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteKind:
    """Customers' and corporate customers' notes share the endpoints' logic."""

    model: type[Model]
    owner: str  # the note's FK to its customer
    owner_type: str  # "customer" | "customer_corporate"
    find: Callable[[ApiRequest, Any, str], Any]  # (req, {id|externalId, site?}, error key) → owner
    add: Callable[..., Any]
    delete: Callable[..., None]


def note_json(note: Any, kind: NoteKind) -> dict[str, Any]:
    owner = getattr(note, kind.owner)
    ref = formats.compact({"id": owner.pk, "externalId": owner.external_id, "site": owner.site.code})
    return formats.compact(
        {
            "id": note.pk,
            "text": note.text,
            "createdAt": formats.dt(note.created_at),
            "managerId": note.author_id,
            "customer": {**ref, "type": kind.owner_type},
        }
    )


def notes_list(req: ApiRequest, kind: NoteKind) -> dict[str, Any]:
    flt = req.filter
    qs = kind.model.objects.filter(req.site_q(f"{kind.owner}__site")).select_related(f"{kind.owner}__site")
    if (ids := filter_ints(flt, "ids")) is not None:
        qs = qs.filter(pk__in=ids)
    if (owner_ids := filter_ints(flt, "customerIds")) is not None:
        qs = qs.filter(**{f"{kind.owner}_id__in": owner_ids})
    if (owner_external := filter_strings(flt, "customerExternalIds")) is not None:
        qs = qs.filter(**{f"{kind.owner}__external_id__in": owner_external})
    if (managers := filter_ints(flt, "managerIds")) is not None:
        qs = qs.filter(author_id__in=managers)
    if text := filter_text(flt, "text"):
        qs = qs.filter(text__icontains=text)
    qs = filter_date_range(qs, flt, "created_at", "createdAtFrom", "createdAtTo")
    rows, pagination = req.paginate(qs.order_by("-created_at", "-id"))
    return {"pagination": pagination, "notes": [note_json(note, kind) for note in rows]}


def note_create(req: ApiRequest, kind: NoteKind) -> tuple[int, dict[str, Any]]:
    raw = req.entity("note")
    errors = Errors("note.")
    text = text_value(raw, "text", errors)
    _given, manager = manager_value(raw, errors)
    errors.raise_if_any()
    owner = kind.find(req, raw.get("customer"), "note.customer")
    try:
        note = kind.add(owner, text or "", actor=req.actor, author=manager)
    except ValidationError as exc:
        raise action_error(exc, "note.") from exc
    return 201, {"id": note.pk}


def note_delete(req: ApiRequest, kind: NoteKind, id: str) -> dict[str, Any]:
    pk = int_id(id)
    note = kind.model.objects.filter(pk=pk).select_related(f"{kind.owner}__site").first() if pk else None
    if note is None:
        raise NotFound()
    req.check_site(getattr(note, kind.owner).site)
    kind.delete(note, actor=req.actor)
    return {}


CUSTOMER_NOTES = NoteKind(
    model=CustomerNote,
    owner="customer",
    owner_type="customer",
    find=lambda req, ref, key: customer_by_ref(req, ref, key),
    add=actions.add_note,
    delete=actions.delete_note,
)


@api("GET", "customers/notes", scope="customer_read", query=("limit", "page"))
def customer_notes(req: ApiRequest) -> dict[str, Any]:
    """Notes on customers, newest first."""
    return notes_list(req, CUSTOMER_NOTES)


@api("POST", "customers/notes/create", scope="customer_write", entity="note", query=("site",))
def customer_note_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Add a note to a customer (`note.customer` = `{id}` or `{externalId}`)."""
    return note_create(req, CUSTOMER_NOTES)


@api("POST", "customers/notes/{id}/delete", scope="customer_write")
def customer_note_delete(req: ApiRequest, id: str) -> dict[str, Any]:
    """Delete a note (its text stays in the customer's history)."""
    return note_delete(req, CUSTOMER_NOTES, id)
