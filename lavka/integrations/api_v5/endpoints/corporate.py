"""API v5: corporate (B2B) customers with their addresses, companies and contact persons (§2.3, §3.5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet

from lavka.core.models import HistoryRecord
from lavka.customers import corporate_actions as actions
from lavka.customers.corporate_actions import (
    AddressData,
    CompanyData,
    ContactData,
    CorporateData,
    CorporateExists,
    EntityRef,
)
from lavka.customers.models import (
    Company,
    ContactCompany,
    CorporateAddress,
    CorporateContact,
    CorporateCustomer,
    CorporateNote,
)
from lavka.integrations.api_v5 import formats, history
from lavka.integrations.api_v5.endpoints.customers import (
    ENTITY_ERROR,
    FIELD_NAMES,
    SOURCE_KEYS,
    Errors,
    NoteKind,
    UploadResult,
    action_error,
    address_json,
    address_parts,
    bool_value,
    created_at_value,
    custom_fields_value,
    customer_by_ref,
    entity_list,
    external_id_value,
    filter_bool,
    filter_date_range,
    filter_ints,
    filter_strings,
    filter_text,
    find_by,
    fix_external_ids,
    history_scope,
    int_id,
    manager_value,
    merged_custom_fields,
    names_value,
    note_create,
    note_delete,
    notes_list,
    site_for,
    source_json,
    source_value,
    tags_json,
    text_value,
    upload,
)
from lavka.integrations.api_v5.errors import ApiError, NotFound
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api

# Company contragent fields: the API's names ↔ the model's.
CONTRAGENT_KEYS = {
    "contragentType": "contragent_type",
    "legalName": "legal_name",
    "legalAddress": "legal_address",
    "INN": "inn",
    "KPP": "kpp",
    "OKPO": "okpo",
    "OGRN": "ogrn",
    "OGRNIP": "ogrnip",
    "certificateNumber": "certificate_number",
    "certificateDate": "certificate_date",
    "BIK": "bik",
    "bank": "bank",
    "bankAddress": "bank_address",
    "corrAccount": "corr_account",
    "bankAccount": "bank_account",
}
# How retailCRM's history spells the contragent fields (INN → i_n_n).
CONTRAGENT_HISTORY = {
    "contragent_type": "contragent_type",
    "legal_name": "legal_name",
    "legal_address": "legal_address",
    "inn": "i_n_n",
    "kpp": "k_p_p",
    "okpo": "o_k_p_o",
    "ogrn": "o_g_r_n",
    "ogrnip": "o_g_r_n_i_p",
    "certificate_number": "certificate_number",
    "certificate_date": "certificate_date",
    "bik": "b_i_k",
    "bank": "bank",
    "bank_address": "bank_address",
    "corr_account": "corr_account",
    "bank_account": "bank_account",
}
CORPORATE_FIELD_NAMES = {
    **FIELD_NAMES,
    "nick_name": "nickName",
    "name": "name",
    "brand": "brand",
    "active": "active",
    "address": "address",
    "customer": "customer",
    "country_iso": "countryIso",
    **{f"contragent.{name}": f"contragent.{key}" for key, name in CONTRAGENT_KEYS.items()},
}


def api_field(name: str) -> str:
    """An action's error key (`companies.0.contragent.inn`) in the API's words."""
    parts = name.split(".")
    if parts[0] in ("addresses", "companies", "customer_contacts") and len(parts) > 2:
        head = "customerContacts" if parts[0] == "customer_contacts" else parts[0]
        return f"{head}[{parts[1]}].{api_field('.'.join(parts[2:]))}"
    if name.startswith("custom_"):
        return "customFields." + name.removeprefix("custom_")
    return CORPORATE_FIELD_NAMES.get(name, name)


def corporate_error(exc: ValidationError, prefix: str) -> ApiError:
    if isinstance(exc, CorporateExists):
        return ApiError("Customer already exists.", 400, {prefix + "externalId": "Customer already exists."})
    return action_error(exc, prefix, api_field)


# --- output --------------------------------------------------------------------------------------------


def corporate_ref(corporate: CorporateCustomer) -> dict[str, Any]:
    return formats.compact(
        {"id": corporate.pk, "externalId": corporate.external_id, "site": corporate.site.code}
    )


def short_ref(entity: Any) -> dict[str, Any]:
    """`{id, externalId?, name?}`: a main address or company."""
    return formats.compact({"id": entity.pk, "externalId": entity.external_id, "name": entity.name})


def corporate_address_json(address: CorporateAddress) -> dict[str, Any]:
    return {**address_json(address), "isMain": address.is_main}


def company_json(company: Company, corporate: CorporateCustomer) -> dict[str, Any]:
    contragent = {key: getattr(company, name) for key, name in CONTRAGENT_KEYS.items()}
    contragent["certificateDate"] = formats.date(company.certificate_date)
    address = company.address
    return formats.compact(
        {
            "id": company.pk,
            "externalId": company.external_id,
            "isMain": company.is_main,
            "active": company.active,
            "name": company.name,
            "brand": company.brand,
            "site": corporate.site.code,
            "createdAt": formats.dt(company.created_at),
            "customer": {**corporate_ref(corporate), "type": "customer_corporate"},
            "contragent": formats.compact(contragent) or None,
            "address": short_ref(address) if address else None,
            "customFields": company.custom_fields or [],
        }
    )


def contact_json(contact: CorporateContact) -> dict[str, Any]:
    person = contact.customer
    return {
        "id": contact.pk,
        "isMain": contact.is_main,
        "customer": formats.compact(
            {"id": person.pk, "externalId": person.external_id, "site": person.site.code}
        ),
        "companies": [
            {"id": link.pk, "company": short_ref(link.company)} for link in contact.company_links.all()
        ],
    }


def corporate_json(corporate: CorporateCustomer) -> dict[str, Any]:
    """A corporate customer (§3.5) from a row that prefetched `CORPORATE_PREFETCH`."""
    addresses = list(corporate.addresses.all())
    companies = list(corporate.companies.all())
    contacts = list(corporate.contacts.all())
    main_address = next((a for a in addresses if a.is_main), None)
    main_company = next((c for c in companies if c.is_main), None)
    main_contact = next((c for c in contacts if c.is_main), None)
    return formats.compact(
        {
            "type": "customer_corporate",
            "id": corporate.pk,
            "externalId": corporate.external_id,
            "nickName": corporate.nick_name,
            "site": corporate.site.code,
            "createdAt": formats.dt(corporate.created_at),
            "managerId": corporate.manager_id,
            "vip": corporate.vip,
            "bad": corporate.bad,
            "tags": tags_json((tag.name, tag.color) for tag in corporate.tags.all()),
            "customFields": corporate.custom_fields or [],
            "source": source_json({key: getattr(corporate, key) for key in SOURCE_KEYS}),
            "mainAddress": short_ref(main_address) if main_address else None,
            "mainCompany": short_ref(main_company) if main_company else None,
            "mainCustomerContact": contact_json(main_contact) if main_contact else None,
            "addresses": [corporate_address_json(a) for a in addresses],
            "companies": [company_json(c, corporate) for c in companies],
            "customerContacts": [contact_json(c) for c in contacts],
        }
    )


CONTACTS = Prefetch(
    "contacts",
    CorporateContact.objects.select_related("customer__site").prefetch_related(
        Prefetch("company_links", ContactCompany.objects.select_related("company"))
    ),
)
CORPORATE_PREFETCH = (
    "tags",
    "addresses",
    Prefetch("companies", Company.objects.select_related("address")),
    CONTACTS,
)


def corporates() -> QuerySet[CorporateCustomer]:
    return active_corporates().prefetch_related(*CORPORATE_PREFETCH)


def active_corporates() -> QuerySet[CorporateCustomer]:
    """Corporate customers not merged into another one: a merged one is gone from the API (404)."""
    return CorporateCustomer.objects.filter(merged_into__isnull=True).select_related("site")


def find_corporate(req: ApiRequest, uid: Any) -> CorporateCustomer:
    return find_by(req, corporates().filter(merged_into__isnull=True), uid, req.by())


# --- input ---------------------------------------------------------------------------------------------


def corporate_data(raw: dict[str, Any], errors: Errors) -> CorporateData:
    data = CorporateData(
        nick_name=text_value(raw, "nickName", errors),
        external_id=external_id_value(raw, errors),
        vip=bool_value(raw, "vip", errors),
        bad=bool_value(raw, "bad", errors),
        custom_fields=custom_fields_value(raw, errors),
        tags=names_value(raw, "tags", errors),
        add_tags=names_value(raw, "addTags", errors),
        remove_tags=names_value(raw, "removeTags", errors),
        **source_value(raw, errors),
    )
    data.manager_set, data.manager = manager_value(raw, errors)
    return data


def address_data(raw: Any, errors: Errors) -> AddressData:
    if not isinstance(raw, dict):
        errors.add("", "This value is not valid.")
        return AddressData()
    return AddressData(
        parts=address_parts(raw, errors),
        name=text_value(raw, "name", errors),
        external_id=external_id_value(raw, errors),
        is_main=bool_value(raw, "isMain", errors),
    )


def entity_ref(raw: Any) -> EntityRef | None:
    """`{id}` or `{externalId}` of one of the corporate customer's own addresses or companies."""
    if not isinstance(raw, dict):
        return None
    if raw.get("id") not in (None, ""):
        pk = int_id(raw["id"])
        return EntityRef(id=pk) if pk is not None else None
    external = formats.external_id(raw.get("externalId"))
    return EntityRef(external_id=external) if external else None


def company_data(raw: Any, errors: Errors) -> CompanyData:
    if not isinstance(raw, dict):
        errors.add("", "This value is not valid.")
        return CompanyData()
    data = CompanyData(
        name=text_value(raw, "name", errors),
        brand=text_value(raw, "brand", errors),
        external_id=external_id_value(raw, errors),
        is_main=bool_value(raw, "isMain", errors),
        active=bool_value(raw, "active", errors),
        custom_fields=custom_fields_value(raw, errors),
    )
    if "address" in raw:
        data.address_set = True
        if raw["address"] not in (None, {}):
            data.address = entity_ref(raw["address"])
            if data.address is None:
                errors.add("address")
    contragent = raw.get("contragent")
    if contragent is not None:
        if not isinstance(contragent, dict):
            errors.add("contragent")
        else:
            sub = Errors(errors.prefix + "contragent.")
            data.contragent = {
                name: value
                for key, name in CONTRAGENT_KEYS.items()
                if (value := text_value(contragent, key, sub)) is not None
            }
            errors.map.update(sub.map)
    return data


def companies_refs(raw: dict[str, Any], errors: Errors) -> list[EntityRef] | None:
    """A contact's companies: `[{company: {id|externalId}}]`, or `[{id}]` meaning the company's id."""
    value = raw.get("companies")
    if value is None:
        return None
    if not isinstance(value, list):
        errors.add("companies")
        return None
    refs = []
    for n, item in enumerate(value):
        ref = entity_ref(item.get("company") if isinstance(item, dict) and "company" in item else item)
        if ref is None:
            errors.add(f"companies[{n}]")
        else:
            refs.append(ref)
    return refs


def contact_data(
    req: ApiRequest, raw: Any, errors: Errors, corporate_site: Any, *, creating: bool
) -> ContactData:
    if not isinstance(raw, dict):
        errors.add("", "This value is not valid.")
        return ContactData()
    data = ContactData(is_main=bool_value(raw, "isMain", errors), companies=companies_refs(raw, errors))
    if creating:
        data.customer = customer_by_ref(
            req, raw.get("customer"), errors.prefix + "customer", site=corporate_site
        )
    return data


def entity_items(raw: dict[str, Any], name: str, errors: Errors) -> list[Any]:
    value = raw.get(name)
    if value is None:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list) or len(value) > 100:
        errors.add(name)
        return []
    return value


# --- the corporate customer ----------------------------------------------------------------------------


def create_one(req: ApiRequest, raw: Any, prefix: str) -> CorporateCustomer:
    if not isinstance(raw, dict):
        raise ApiError(ENTITY_ERROR, 400, {prefix.rstrip("."): "This value is not valid."})
    errors = Errors(prefix)
    data = corporate_data(raw, errors)
    addresses = [
        address_data(item, Errors(f"{prefix}addresses[{n}]."))
        for n, item in enumerate(entity_items(raw, "addresses", errors))
    ]
    companies = [
        company_data(item, Errors(f"{prefix}companies[{n}]."))
        for n, item in enumerate(entity_items(raw, "companies", errors))
    ]
    errors.raise_if_any()
    site = site_for(req, raw)
    contacts = []
    for n, item in enumerate(entity_items(raw, "customerContacts", errors)):
        item_errors = Errors(f"{prefix}customerContacts[{n}].")
        contacts.append(contact_data(req, item, item_errors, site, creating=True))
        errors.map.update(item_errors.map)
    errors.raise_if_any()
    created_at = created_at_value(raw, prefix)
    try:
        return actions.create_corporate(
            site,
            data,
            actor=req.actor,
            addresses=addresses,
            companies=companies,
            contacts=contacts,
            created_at=created_at,
        )
    except ValidationError as exc:
        raise corporate_error(exc, prefix) from exc


def filtered_corporates(req: ApiRequest) -> QuerySet[CorporateCustomer]:
    flt = req.filter
    qs = CorporateCustomer.objects.filter(req.site_q(), merged_into__isnull=True)
    if (ids := filter_ints(flt, "ids")) is not None:
        qs = qs.filter(pk__in=ids)
    if (external_ids := filter_strings(flt, "externalIds")) is not None:
        qs = qs.filter(external_id__in=external_ids)
    if (sites := filter_strings(flt, "sites")) is not None:
        qs = qs.filter(site__code__in=sites)
    if (nick_names := filter_strings(flt, "nickName")) is not None:
        qs = qs.filter(nick_name__in=nick_names)
    if (managers := filter_ints(flt, "managers")) is not None:
        qs = qs.filter(manager_id__in=managers)
    if (tags := filter_strings(flt, "tags")) is not None:
        through = CorporateCustomer.tags.through.objects.filter(tag__name__in=tags)
        qs = qs.filter(pk__in=through.values("corporatecustomer_id"))
    if company_name := filter_text(flt, "companyName"):
        qs = qs.filter(pk__in=Company.objects.filter(name__icontains=company_name).values("corporate_id"))
    for name, field in (("contragentInn", "inn"), ("contragentKpp", "kpp")):
        if value := filter_text(flt, name):
            qs = qs.filter(pk__in=Company.objects.filter(**{field: value}).values("corporate_id"))
    for flag in ("vip", "bad"):
        if (value := filter_bool(flt, flag)) is not None:
            qs = qs.filter(**{flag: value})
    return filter_date_range(qs, flt, "created_at", "dateFrom", "dateTo")


@api("GET", "customers-corporate", scope="customer_read", query=("limit", "page"))
def corporate_list(req: ApiRequest) -> dict[str, Any]:
    """Corporate customers by filter: ids, externalIds, nickName, companyName, sites, managers, tags …"""
    rows, pagination = req.paginate(
        filtered_corporates(req).order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    found = {c.pk: c for c in corporates().filter(pk__in=rows)}
    return {
        "pagination": pagination,
        "customersCorporate": [corporate_json(found[pk]) for pk in rows if pk in found],
    }


@api("GET", "customers-corporate/{id}", scope="customer_read", query=("by", "site"))
def corporate_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """One corporate customer by externalId (default) or id."""
    return {"customerCorporate": corporate_json(find_corporate(req, id))}


@api(
    "POST", "customers-corporate/create", scope="customer_write", entity="customerCorporate", query=("site",)
)
def corporate_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create a corporate customer with its addresses, companies and contact persons."""
    corporate = create_one(req, req.entity("customerCorporate"), "customerCorporate.")
    return 201, {"id": corporate.pk}


@api(
    "POST",
    "customers-corporate/{id}/edit",
    scope="customer_write",
    entity="customerCorporate",
    query=("by", "site"),
)
def corporate_edit(req: ApiRequest, id: str) -> dict[str, Any]:
    """Change the fields sent (the Python client names the entity `customersCorporate`)."""
    raw = req.entity("customerCorporate", "customersCorporate")
    corporate = find_by(req, active_corporates(), id, req.by(), site_value=raw.get("site"))
    errors = Errors("customerCorporate.")
    data = corporate_data(raw, errors)
    errors.raise_if_any()
    data.custom_fields = merged_custom_fields(corporate.custom_fields, data.custom_fields)
    try:
        actions.update_corporate(corporate, data, actor=req.actor)
    except ValidationError as exc:
        raise corporate_error(exc, "customerCorporate.") from exc
    return {"id": corporate.pk}


@api(
    "POST", "customers-corporate/upload", scope="customer_write", entity="customersCorporate", query=("site",)
)
def corporate_upload(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Create up to 50 corporate customers; 460 when some of them failed."""
    result: UploadResult = upload(req, "customersCorporate", create_one)
    return result.answer()


@api("POST", "customers-corporate/fix-external-ids", scope="customer_write", entity="customersCorporate")
def corporate_fix_external_ids(req: ApiRequest) -> dict[str, Any]:
    """Give corporate customers created in the CRM the shop's externalIds."""

    def save(corporate: CorporateCustomer, external: str) -> None:
        actions.update_corporate(corporate, CorporateData(external_id=external), actor=req.actor)

    return fix_external_ids(req, "customersCorporate", active_corporates(), save)


def _combine_ref(req: ApiRequest, ref: Any, key: str) -> CorporateCustomer:
    """`{id}` of a corporate customer the key may see: 404 when there is none, 403 for another site."""
    if not isinstance(ref, dict) or int_id(ref.get("id")) is None:
        raise ApiError(ENTITY_ERROR, 400, {key: "Customer id is required."})
    return find_by(req, active_corporates(), ref["id"], "id")


@api("POST", "customers-corporate/combine", scope="customer_write", entity="customers")
def corporate_combine(req: ApiRequest) -> dict[str, Any]:
    """Merge `customers` into `resultCustomer`: its data wins; addresses, companies, contacts and notes
    move to it (the Python client sends `customers`; `customersCorporate` is accepted too)."""
    result = _combine_ref(req, req.entity("resultCustomer"), "resultCustomer")
    name = "customers" if "customers" in req.params else "customersCorporate"
    others = [_combine_ref(req, ref, f"{name}[{n}]") for n, ref in enumerate(entity_list(req, name))]
    try:
        actions.merge_corporate(result, others, actor=req.actor)
    except ValidationError as exc:
        raise corporate_error(exc, "") from exc
    return {}


# --- history -------------------------------------------------------------------------------------------


def history_field(field: str) -> str:
    """Lavka's corporate history names → retailCRM's (`company.inn` → `company.contragent.i_n_n`)."""
    if field == "address.country_iso":
        return "address.country"
    if field.startswith("company."):
        name = field.removeprefix("company.")
        if name in CONTRAGENT_HISTORY:
            return f"company.contragent.{CONTRAGENT_HISTORY[name]}"
    return field


def corporate_history(records: list[HistoryRecord], req: ApiRequest) -> list[dict[str, Any]]:
    """§2.3 corporate records: the full customer on creation, else a stub; `address`, `company` and
    `customerContact` objects for changes of those."""
    ids = {r.entity_id for r in records}
    stubs = {
        c.pk: corporate_ref(c) for c in CorporateCustomer.objects.filter(pk__in=ids).select_related("site")
    }
    full = {
        c.pk: corporate_json(c)
        for c in corporates().filter(pk__in={r.entity_id for r in records if r.created})
    }

    def context_ids(key: str) -> set[int]:
        return {r.context[key] for r in records if r.context.get(key)}

    addresses = {a.pk: a for a in CorporateAddress.objects.filter(pk__in=context_ids("address_id"))}
    companies = {
        c.pk: c
        for c in Company.objects.filter(pk__in=context_ids("company_id")).select_related(
            "address", "corporate__site"
        )
    }
    contacts = {
        c.pk: c
        for c in CorporateContact.objects.filter(pk__in=context_ids("contact_id"))
        .select_related("customer__site")
        .prefetch_related(Prefetch("company_links", ContactCompany.objects.select_related("company")))
    }
    out = []
    for record in records:
        item = history.record_base(record, req)
        field = history_field(record.field)
        old, new = record.old_value, record.new_value
        if field == "manager":
            old, new = ({"id": v} if isinstance(v, int) else v for v in (old, new))
        item.update({"field": field, "oldValue": old, "newValue": new})
        if field == "merged_into":  # combined into another corporate customer
            item["combinedTo"] = {"id": new}
        item["customer"] = (full if record.created else stubs).get(record.entity_id, {"id": record.entity_id})
        context = record.context
        if (address_id := context.get("address_id")) is not None:
            address = addresses.get(address_id)
            item["address"] = corporate_address_json(address) if address else {"id": address_id}
        if (company_id := context.get("company_id")) is not None:
            company = companies.get(company_id)
            item["company"] = company_json(company, company.corporate) if company else {"id": company_id}
        if (contact_id := context.get("contact_id")) is not None:
            contact = contacts.get(contact_id)
            item["customerContact"] = contact_json(contact) if contact else {"id": contact_id}
        out.append(item)
    return out


@api("GET", "customers-corporate/history", scope="customer_read", query=("limit", "page"))
def corporate_history_feed(req: ApiRequest) -> dict[str, Any]:
    """Corporate customer changes in id order: move `filter[sinceId]` forward to read them all once."""
    entity_ids = history_scope(req, CorporateCustomer, "customerId", "customerExternalId")
    return history.feed(req, actions.ENTITY, corporate_history, entity_ids=entity_ids)


# --- notes ---------------------------------------------------------------------------------------------


def _note_owner(req: ApiRequest, ref: Any, key: str) -> CorporateCustomer:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("externalId")):
        raise ApiError(ENTITY_ERROR, 400, {key: "Customer id or externalId is required."})
    by = "id" if ref.get("id") not in (None, "") else "externalId"
    try:
        return find_by(req, active_corporates(), ref[by], by, site_value=ref.get("site"))
    except NotFound:
        raise ApiError(ENTITY_ERROR, 400, {key: f"Customer with {by}={ref[by]} not found."}) from None


CORPORATE_NOTES = NoteKind(
    model=CorporateNote,
    owner="corporate",
    owner_type="customer_corporate",
    find=_note_owner,
    add=actions.add_note,
    delete=actions.delete_note,
)


@api("GET", "customers-corporate/notes", scope="customer_read", query=("limit", "page"))
def corporate_notes(req: ApiRequest) -> dict[str, Any]:
    """Notes on corporate customers, newest first."""
    return notes_list(req, CORPORATE_NOTES)


@api("POST", "customers-corporate/notes/create", scope="customer_write", entity="note", query=("site",))
def corporate_note_create(req: ApiRequest) -> tuple[int, dict[str, Any]]:
    """Add a note to a corporate customer."""
    return note_create(req, CORPORATE_NOTES)


@api("POST", "customers-corporate/notes/{id}/delete", scope="customer_write")
def corporate_note_delete(req: ApiRequest, id: str) -> dict[str, Any]:
    """Delete a corporate customer's note."""
    return note_delete(req, CORPORATE_NOTES, id)


# --- addresses, companies, contacts --------------------------------------------------------------------


def _sub_entity(
    req: ApiRequest, queryset: QuerySet, eid: str, id_field: str = "pk", external_field: str = "external_id"
) -> Any:
    """One of a corporate customer's addresses, companies or contacts by `entityBy` (id | externalId)."""
    if req.by("entityBy") == "id":
        pk = int_id(eid)
        found = queryset.filter(**{id_field: pk}).first() if pk is not None else None
    else:
        external = formats.external_id(eid)
        found = queryset.filter(**{external_field: external}).first() if external else None
    if found is None:
        raise NotFound()
    return found


def _paginated(req: ApiRequest, qs: QuerySet, key: str, serialize: Any) -> dict[str, Any]:
    flt = req.filter
    if (ids := filter_ints(flt, "ids")) is not None:
        qs = qs.filter(pk__in=ids)
    rows, pagination = req.paginate(qs)
    return {key: [serialize(row) for row in rows], "pagination": pagination}


@api(
    "GET", "customers-corporate/{id}/addresses", scope="customer_read", query=("by", "site", "limit", "page")
)
def address_list(req: ApiRequest, id: str) -> dict[str, Any]:
    """A corporate customer's addresses (`filter[ids][]`, `filter[name]`)."""
    corporate = find_by(req, active_corporates(), id, req.by())
    qs = corporate.addresses.order_by("-is_main", "id")
    if name := filter_text(req.filter, "name"):
        qs = qs.filter(name__icontains=name)
    return _paginated(req, qs, "addresses", corporate_address_json)


def _write_part(
    req: ApiRequest, name: str, parse: Callable[[Any, Errors], Any], write: Callable[..., Any], target: Any
) -> Any:
    """Read the `name` entity (`address`, `company`, `contact`) and hand it to its action with `target`;
    every field error comes back under `name.`."""
    errors = Errors(f"{name}.")
    data = parse(req.entity(name), errors)
    errors.raise_if_any()
    try:
        return write(target, data, actor=req.actor)
    except ValidationError as exc:
        raise corporate_error(exc, f"{name}.") from exc


@api(
    "POST",
    "customers-corporate/{id}/addresses/create",
    scope="customer_write",
    entity="address",
    query=("by", "site"),
)
def address_create(req: ApiRequest, id: str) -> tuple[int, dict[str, Any]]:
    """Add an address; the first one becomes the main address."""
    corporate = find_by(req, active_corporates(), id, req.by())
    address = _write_part(req, "address", address_data, actions.add_address, corporate)
    return 201, {"id": address.pk}


@api(
    "POST",
    "customers-corporate/{id}/addresses/{eid}/edit",
    scope="customer_write",
    entity="address",
    query=("by", "entityBy", "site"),
)
def address_edit(req: ApiRequest, id: str, eid: str) -> dict[str, Any]:
    """Change an address (`entityBy` names it by id or externalId)."""
    corporate = find_by(req, active_corporates(), id, req.by())
    address = _sub_entity(req, corporate.addresses.select_related("corporate"), eid)
    _write_part(req, "address", address_data, actions.update_address, address)
    return {"id": address.pk}


@api(
    "GET", "customers-corporate/{id}/companies", scope="customer_read", query=("by", "site", "limit", "page")
)
def company_list(req: ApiRequest, id: str) -> dict[str, Any]:
    """A corporate customer's companies (legal entities)."""
    corporate = find_by(req, active_corporates(), id, req.by())
    qs = corporate.companies.select_related("address").order_by("-is_main", "id")
    if name := filter_text(req.filter, "name"):
        qs = qs.filter(name__icontains=name)
    return _paginated(req, qs, "companies", lambda company: company_json(company, corporate))


@api(
    "POST",
    "customers-corporate/{id}/companies/create",
    scope="customer_write",
    entity="company",
    query=("by", "site"),
)
def company_create(req: ApiRequest, id: str) -> tuple[int, dict[str, Any]]:
    """Add a company; the first one becomes the main company."""
    corporate = find_by(req, active_corporates(), id, req.by())
    company = _write_part(req, "company", company_data, actions.add_company, corporate)
    return 201, {"id": company.pk}


@api(
    "POST",
    "customers-corporate/{id}/companies/{eid}/edit",
    scope="customer_write",
    entity="company",
    query=("by", "entityBy", "site"),
)
def company_edit(req: ApiRequest, id: str, eid: str) -> dict[str, Any]:
    """Change a company (`entityBy` names it by id or externalId)."""
    corporate = find_by(req, active_corporates(), id, req.by())
    company = _sub_entity(req, corporate.companies.select_related("corporate"), eid)
    _write_part(req, "company", company_data, actions.update_company, company)
    return {"id": company.pk}


def _contacts(corporate: CorporateCustomer) -> QuerySet[CorporateContact]:
    return (
        corporate.contacts.select_related("customer__site", "corporate")
        .prefetch_related(Prefetch("company_links", ContactCompany.objects.select_related("company")))
        .order_by("-is_main", "id")
    )


@api("GET", "customers-corporate/{id}/contacts", scope="customer_read", query=("by", "site", "limit", "page"))
def contact_list(req: ApiRequest, id: str) -> dict[str, Any]:
    """A corporate customer's contact persons (`filter[contactIds][]`, `filter[contactExternalIds][]`)."""
    corporate = find_by(req, active_corporates(), id, req.by())
    qs = _contacts(corporate)
    flt = req.filter
    if (person_ids := filter_ints(flt, "contactIds")) is not None:
        qs = qs.filter(customer_id__in=person_ids)
    if (person_external := filter_strings(flt, "contactExternalIds")) is not None:
        qs = qs.filter(customer__external_id__in=person_external)
    rows, pagination = req.paginate(qs)
    return {"contacts": [contact_json(c) for c in rows], "pagination": pagination}


@api(
    "POST",
    "customers-corporate/{id}/contacts/create",
    scope="customer_write",
    entity="contact",
    query=("by", "site"),
)
def contact_create(req: ApiRequest, id: str) -> tuple[int, dict[str, Any]]:
    """Make a person of the same site a contact: `contact.customer` = `{id}` or `{externalId}`."""
    corporate = find_by(req, active_corporates(), id, req.by())

    def parse(raw: Any, errors: Errors) -> Any:
        return contact_data(req, raw, errors, corporate.site, creating=True)

    contact = _write_part(req, "contact", parse, actions.add_contact, corporate)
    return 201, {"id": contact.pk}


@api(
    "POST",
    "customers-corporate/{id}/contacts/{eid}/edit",
    scope="customer_write",
    entity="contact",
    query=("by", "entityBy", "site"),
)
def contact_edit(req: ApiRequest, id: str, eid: str) -> dict[str, Any]:
    """Change a contact, named by its person's id or externalId (`entityBy`): main flag, companies."""
    corporate = find_by(req, active_corporates(), id, req.by())
    contact = _sub_entity(req, _contacts(corporate), eid, "customer_id", "customer__external_id")

    def parse(raw: Any, errors: Errors) -> Any:
        return contact_data(req, raw, errors, corporate.site, creating=False)

    _write_part(req, "contact", parse, actions.update_contact, contact)
    return {"id": contact.customer_id}
