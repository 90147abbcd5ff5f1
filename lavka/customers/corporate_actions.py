"""The only writers of corporate (B2B) customers, their addresses, companies, contacts and notes.

Like the person-customer actions, each one writes the change, its history (entity
"customer_corporate", field names as retailCRM's corporate history uses them) and its event in one
transaction. At most one address, company and contact is the main one; the first one added becomes it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.validation import clean_text
from lavka.customers.actions import (
    _tags,
    check_manager,
    clean_address_parts,
    custom_field_changes,
    tag_names_after,
)
from lavka.customers.choices import ADDRESS_PARTS, CONTRAGENT_FIELDS, CORPORATE_TRACKED_FIELDS, ContragentType
from lavka.customers.events import CorporateCustomerCreated, CorporateCustomerUpdated, CorporateManagerChanged
from lavka.customers.models import (
    Company,
    ContactCompany,
    CorporateAddress,
    CorporateContact,
    CorporateCustomer,
    CorporateNote,
    Customer,
    Tag,
)

ENTITY = "customer_corporate"
TEXT_LIMITS = {
    "nick_name": 255,
    "source": 255,
    "medium": 255,
    "campaign": 255,
    "keyword": 255,
    "content": 255,
}
_CUSTOM_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_CUSTOM_FIELDS = 100


class CorporateExists(ValidationError):
    """Another corporate customer of the site has this externalId."""

    def __init__(self) -> None:
        super().__init__({"external_id": _("Customer already exists.")})


@dataclass
class CorporateData:
    """What may be set on a corporate customer; None means "leave as it is"."""

    nick_name: str | None = None
    external_id: str | None = None
    manager: Any = None
    manager_set: bool = False
    vip: bool | None = None
    bad: bool | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    content: str | None = None
    custom_fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    add_tags: list[str] | None = None
    remove_tags: list[str] | None = None


@dataclass
class AddressData:
    parts: dict[str, Any] = field(default_factory=dict)  # index, country_iso, city … (given ones only)
    name: str | None = None
    external_id: str | None = None
    is_main: bool | None = None


@dataclass
class EntityRef:
    """One of the corporate customer's own addresses or companies, by id or externalId."""

    id: int | None = None
    external_id: str | None = None


@dataclass
class CompanyData:
    name: str | None = None
    brand: str | None = None
    external_id: str | None = None
    is_main: bool | None = None
    active: bool | None = None
    address: EntityRef | None = None
    address_set: bool = False  # `address` given (None: detach)
    contragent: dict[str, Any] | None = None  # model field names: inn, kpp, legal_name …
    custom_fields: dict[str, Any] | None = None


@dataclass
class ContactData:
    customer: Customer | None = None  # on create
    is_main: bool | None = None
    companies: list[EntityRef] | None = None  # the full new list


# --- cleaning ----------------------------------------------------------------------------------------


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    return ValidationError({f"{prefix}{k}": v for k, v in exc.message_dict.items()})


def clean_custom_values(values: Any) -> dict[str, Any]:
    """Corporate custom fields have no definitions (yet): codes and plain values only."""
    if values is None:
        return {}
    if not isinstance(values, dict) or len(values) > MAX_CUSTOM_FIELDS:
        raise ValidationError({"custom_fields": _("Expected a set of field values.")})
    cleaned: dict[str, Any] = {}
    for code, value in values.items():
        if not isinstance(code, str) or not _CUSTOM_CODE.match(code):
            raise ValidationError({"custom_fields": _("Unknown custom field.")})
        if value in (None, ""):
            continue
        items = value if isinstance(value, list) else [value]
        if len(items) > 100 or any(
            isinstance(v, dict | list) or (isinstance(v, str) and len(v) > 2000) for v in items
        ):
            raise ValidationError({f"custom_{code}": _("Invalid value.")})
        cleaned[code] = value
    return cleaned


def _clean(site: Site, data: CorporateData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        raw = getattr(data, name)
        if raw is not None:
            values[name] = clean_text(raw, name, limit)
    if data.external_id is not None:
        values["external_id"] = clean_text(data.external_id, "external_id", 100) or None
    for flag in ("vip", "bad"):
        if getattr(data, flag) is not None:
            values[flag] = bool(getattr(data, flag))
    if data.manager_set:
        check_manager(data.manager, site)
        values["manager"] = data.manager
    if data.custom_fields is not None:
        values["custom_fields"] = clean_custom_values(data.custom_fields)
    return values


def _clean_address(data: AddressData) -> dict[str, Any]:
    try:
        values: dict[str, Any] = clean_address_parts(data.parts, CorporateAddress)
    except ValidationError as exc:  # the address is the entity here: `city`, not `address.city`
        raise ValidationError({k.removeprefix("address."): v for k, v in exc.message_dict.items()}) from exc
    if data.name is not None:
        values["name"] = clean_text(data.name, "name", 255)
    if data.external_id is not None:
        values["external_id"] = clean_text(data.external_id, "external_id", 100) or None
    return values


def _clean_company(data: CompanyData, *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("name", "brand"):
        if getattr(data, name) is not None:
            values[name] = clean_text(getattr(data, name), name, 255)
    if ("name" in values or creating) and not values.get("name"):
        raise ValidationError({"name": _("This field is required.")})
    if data.external_id is not None:
        values["external_id"] = clean_text(data.external_id, "external_id", 100) or None
    if data.active is not None:
        values["active"] = bool(data.active)
    for name, raw in (data.contragent or {}).items():
        if name not in CONTRAGENT_FIELDS and name != "certificate_date":
            continue
        key = f"contragent.{name}"
        if name == "certificate_date":
            values[name] = _clean_date(raw, key)
            continue
        values[name] = clean_text(raw, key, Company._meta.get_field(name).max_length)
        if name == "contragent_type" and values[name] not in ("", *ContragentType.values):
            raise ValidationError({key: _("Unknown value.")})
    if data.custom_fields is not None:
        values["custom_fields"] = clean_custom_values(data.custom_fields)
    return values


def _clean_date(raw: Any, key: str) -> datetime.date | None:
    if raw in (None, ""):
        return None
    try:
        day = raw if isinstance(raw, datetime.date) else datetime.date.fromisoformat(str(raw)[:10])
    except ValueError as exc:
        raise ValidationError({key: _("Enter a valid date.")}) from exc
    if not datetime.date(1900, 1, 1) <= day <= datetime.date(2200, 1, 1):
        raise ValidationError({key: _("Enter a valid date.")})
    return day


def _save(instance: models.Model, exists_error: ValidationError) -> None:
    """Save; a taken externalId is decided by the unique constraint (also under concurrent requests)."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise exists_error from exc


def _resolve(model: type[models.Model], corporate: CorporateCustomer, ref: EntityRef, key: str) -> Any:
    found = None
    if ref.id is not None:
        found = model.objects.filter(corporate=corporate, pk=ref.id).first()
    elif ref.external_id:
        found = model.objects.filter(corporate=corporate, external_id=ref.external_id).first()
    if found is None:
        raise ValidationError({key: _("Not found.")})
    return found


def _ref(obj: Any, *names: str) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = {"id": obj.pk}
    for name in names:
        if getattr(obj, name):
            out[name] = getattr(obj, name)
    return out


def _set_main(
    model: type[models.Model], corporate: CorporateCustomer, obj: Any, main: bool, field_name: str
) -> list[Change]:
    """Make `obj` the main one (or stop it being main); the unique index allows one main at a time."""
    current = model.objects.filter(corporate=corporate, is_main=True).first()
    is_main_now = current is not None and current.pk == obj.pk
    if main == is_main_now:
        return []
    if current is not None:
        model.objects.filter(pk=current.pk).update(is_main=False)
    if main:
        model.objects.filter(pk=obj.pk).update(is_main=True)
    obj.is_main = main
    names = ("name",) if model is not CorporateContact else ()
    return [
        Change(ENTITY, corporate.pk, field_name, _ref(current, *names), _ref(obj, *names) if main else None)
    ]


def _finish(corporate: CorporateCustomer, changes: list[Change], actor: Actor) -> None:
    history.write(changes, actor)
    if changes:
        fields = sorted({c.field for c in changes})
        events.emit(CorporateCustomerUpdated(corporate.pk, corporate.site.code, fields), actor=actor)


# --- the corporate customer --------------------------------------------------------------------------


@transaction.atomic
def create_corporate(
    site: Site,
    data: CorporateData,
    *,
    actor: Actor,
    addresses: Sequence[AddressData] = (),
    companies: Sequence[CompanyData] = (),
    contacts: Sequence[ContactData] = (),
    created_at: datetime.datetime | None = None,
) -> CorporateCustomer:
    values = _clean(site, data)
    tags = _tags(tag_names_after([], data) or ())
    corporate = CorporateCustomer(
        site=site, created_at=created_at or timezone.now(), created_by=actor.user, **values
    )
    _save(corporate, CorporateExists())
    changes = [
        Change(ENTITY, corporate.pk, "id", None, corporate.pk, created=True, context={"site": site.code})
    ]
    changes += [
        Change(ENTITY, corporate.pk, name, None, value, created=True)
        for name, value in history.snapshot(corporate, CORPORATE_TRACKED_FIELDS).items()
        if value not in (None, "", False)
    ]
    changes += custom_field_changes(ENTITY, corporate.pk, {}, corporate.custom_fields, created=True)
    if tags:
        corporate.tags.set(tags)
        changes.append(Change(ENTITY, corporate.pk, "tags", None, sorted(t.name for t in tags), created=True))
    for n, address in enumerate(addresses):
        try:
            changes += _add_address(corporate, address)
        except ValidationError as exc:
            raise _prefixed(exc, f"addresses.{n}.") from exc
    for n, company in enumerate(companies):
        try:
            changes += _add_company(corporate, company)
        except ValidationError as exc:
            raise _prefixed(exc, f"companies.{n}.") from exc
    for n, contact in enumerate(contacts):
        try:
            changes += _add_contact(corporate, contact)
        except ValidationError as exc:
            raise _prefixed(exc, f"customer_contacts.{n}.") from exc
    for change in changes:
        change.created = True
    history.write(changes, actor)
    events.emit(CorporateCustomerCreated(corporate.pk, site.code), actor=actor)
    return corporate


@transaction.atomic
def update_corporate(corporate: CorporateCustomer, data: CorporateData, *, actor: Actor) -> CorporateCustomer:
    corporate = (
        CorporateCustomer.objects.select_for_update(of=("self",)).select_related("site").get(pk=corporate.pk)
    )
    values = _clean(corporate.site, data)
    before = history.snapshot(corporate, CORPORATE_TRACKED_FIELDS)
    old_custom = dict(corporate.custom_fields or {})
    old_manager_id = corporate.manager_id
    for name, value in values.items():
        setattr(corporate, name, value)
    _save(corporate, CorporateExists())
    changes = history.diff(
        ENTITY, corporate.pk, before, history.snapshot(corporate, CORPORATE_TRACKED_FIELDS)
    )
    changes += custom_field_changes(ENTITY, corporate.pk, old_custom, corporate.custom_fields or {})
    current = sorted(corporate.tags.values_list("name", flat=True))
    wanted = tag_names_after(current, data)
    if wanted is not None:
        tags = _tags(wanted)
        if sorted(t.name for t in tags) != current:
            corporate.tags.set(tags)
            changes.append(Change(ENTITY, corporate.pk, "tags", current, sorted(t.name for t in tags)))
    _finish(corporate, changes, actor)
    if corporate.manager_id != old_manager_id:
        events.emit(
            CorporateManagerChanged(corporate.pk, corporate.site.code, old_manager_id, corporate.manager_id),
            actor=actor,
        )
    return corporate


def _locked(corporate: CorporateCustomer) -> CorporateCustomer:
    """Sub-entity writers serialise on the corporate customer's row (main flags, contact links)."""
    return (
        CorporateCustomer.objects.select_for_update(of=("self",)).select_related("site").get(pk=corporate.pk)
    )


# --- addresses ---------------------------------------------------------------------------------------


def _add_address(corporate: CorporateCustomer, data: AddressData) -> list[Change]:
    values = _clean_address(data)
    address = CorporateAddress(corporate=corporate, **values)
    _save(address, ValidationError({"external_id": _("An address with this externalId already exists.")}))
    first = not CorporateAddress.objects.filter(corporate=corporate).exclude(pk=address.pk).exists()
    changes = [
        Change(
            ENTITY, corporate.pk, "address", None, _ref(address, "name"), context={"address_id": address.pk}
        )
    ]
    if data.is_main or data.is_main is None and first:
        changes += _set_main(CorporateAddress, corporate, address, True, "main_address")
    return changes


@transaction.atomic
def add_address(corporate: CorporateCustomer, data: AddressData, *, actor: Actor) -> CorporateAddress:
    corporate = _locked(corporate)
    changes = _add_address(corporate, data)
    _finish(corporate, changes, actor)
    return CorporateAddress.objects.get(pk=changes[0].context["address_id"])


@transaction.atomic
def update_address(address: CorporateAddress, data: AddressData, *, actor: Actor) -> CorporateAddress:
    corporate = _locked(address.corporate)
    address = CorporateAddress.objects.get(pk=address.pk)
    values = _clean_address(data)
    tracked = (*ADDRESS_PARTS, "name", "external_id")
    before = {name: getattr(address, name) for name in tracked}
    for name, value in values.items():
        setattr(address, name, value)
    _save(address, ValidationError({"external_id": _("An address with this externalId already exists.")}))
    context = {"address_id": address.pk}
    changes = [
        Change(
            ENTITY,
            corporate.pk,
            f"address.{name}",
            before[name] or None,
            getattr(address, name) or None,
            context=context,
        )
        for name in tracked
        if (before[name] or "") != (getattr(address, name) or "")
    ]
    if data.is_main is not None:
        changes += _set_main(CorporateAddress, corporate, address, data.is_main, "main_address")
    _finish(corporate, changes, actor)
    return address


# --- companies ---------------------------------------------------------------------------------------


def _company_address(corporate: CorporateCustomer, data: CompanyData) -> dict[str, Any]:
    if not data.address_set:
        return {}
    if data.address is None:
        return {"address": None}
    return {"address": _resolve(CorporateAddress, corporate, data.address, "address")}


def _add_company(corporate: CorporateCustomer, data: CompanyData) -> list[Change]:
    values = _clean_company(data, creating=True) | _company_address(corporate, data)
    company = Company(corporate=corporate, created_at=timezone.now(), **values)
    _save(company, ValidationError({"external_id": _("A company with this externalId already exists.")}))
    first = not Company.objects.filter(corporate=corporate).exclude(pk=company.pk).exists()
    changes = [
        Change(
            ENTITY, corporate.pk, "company", None, _ref(company, "name"), context={"company_id": company.pk}
        )
    ]
    if data.is_main or data.is_main is None and first:
        changes += _set_main(Company, corporate, company, True, "main_company")
    return changes


@transaction.atomic
def add_company(corporate: CorporateCustomer, data: CompanyData, *, actor: Actor) -> Company:
    corporate = _locked(corporate)
    changes = _add_company(corporate, data)
    _finish(corporate, changes, actor)
    return Company.objects.get(pk=changes[0].context["company_id"])


COMPANY_TRACKED = ("name", "brand", "external_id", "active", *CONTRAGENT_FIELDS, "certificate_date")


@transaction.atomic
def update_company(company: Company, data: CompanyData, *, actor: Actor) -> Company:
    corporate = _locked(company.corporate)
    company = Company.objects.get(pk=company.pk)
    values = _clean_company(data, creating=False) | _company_address(corporate, data)
    before = history.snapshot(company, {name: name for name in COMPANY_TRACKED})
    old_address_id = company.address_id
    for name, value in values.items():
        setattr(company, name, value)
    _save(company, ValidationError({"external_id": _("A company with this externalId already exists.")}))
    context = {"company_id": company.pk}
    changes = history.diff(
        ENTITY, corporate.pk, before, history.snapshot(company, {n: n for n in COMPANY_TRACKED}), context
    )
    for change in changes:
        change.field = f"company.{change.field}"
    if company.address_id != old_address_id:
        changes.append(
            Change(
                ENTITY,
                corporate.pk,
                "company.address",
                {"id": old_address_id} if old_address_id else None,
                {"id": company.address_id} if company.address_id else None,
                context=context,
            )
        )
    if data.is_main is not None:
        changes += _set_main(Company, corporate, company, data.is_main, "main_company")
    _finish(corporate, changes, actor)
    return company


# --- contacts ----------------------------------------------------------------------------------------


def _link_companies(
    corporate: CorporateCustomer, contact: CorporateContact, refs: list[EntityRef]
) -> list[Change]:
    """Make the contact's companies exactly `refs`; a record per link added or removed."""
    wanted = []
    for n, ref in enumerate(refs):
        company = _resolve(Company, corporate, ref, f"companies.{n}")
        if company not in wanted:
            wanted.append(company)
    links = {link.company_id: link for link in ContactCompany.objects.filter(contact=contact)}
    changes = []
    for company_id, link in links.items():
        if company_id not in {c.pk for c in wanted}:
            link_ref = {"id": link.pk, "customer_contact": {"id": contact.pk}}
            link.delete()
            changes.append(_link_change(corporate, contact, company_id, link_ref, None))
    for company in wanted:
        if company.pk not in links:
            link = ContactCompany.objects.create(contact=contact, company=company)
            link_ref = {"id": link.pk, "customer_contact": {"id": contact.pk}}
            changes.append(_link_change(corporate, contact, company.pk, None, link_ref))
    return changes


def _link_change(
    corporate: CorporateCustomer, contact: CorporateContact, company_id: int, old: Any, new: Any
) -> Change:
    context = {"contact_id": contact.pk, "company_id": company_id}
    return Change(ENTITY, corporate.pk, "contact.contact_company", old, new, context=context)


def _add_contact(corporate: CorporateCustomer, data: ContactData) -> list[Change]:
    person = data.customer
    if person is None or person.site_id != corporate.site_id or person.merged_into_id:
        raise ValidationError({"customer": _("Unknown customer.")})
    contact = CorporateContact(corporate=corporate, customer=person)
    _save(contact, ValidationError({"customer": _("This person is already a contact of the customer.")}))
    first = not CorporateContact.objects.filter(corporate=corporate).exclude(pk=contact.pk).exists()
    changes = [
        Change(ENTITY, corporate.pk, "contact", None, {"id": contact.pk}, context={"contact_id": contact.pk})
    ]
    if data.is_main or data.is_main is None and first:
        changes += _set_main(CorporateContact, corporate, contact, True, "main_contact")
    changes += _link_companies(corporate, contact, data.companies or [])
    return changes


@transaction.atomic
def add_contact(corporate: CorporateCustomer, data: ContactData, *, actor: Actor) -> CorporateContact:
    corporate = _locked(corporate)
    changes = _add_contact(corporate, data)
    _finish(corporate, changes, actor)
    return CorporateContact.objects.get(pk=changes[0].context["contact_id"])


@transaction.atomic
def update_contact(contact: CorporateContact, data: ContactData, *, actor: Actor) -> CorporateContact:
    corporate = _locked(contact.corporate)
    contact = CorporateContact.objects.get(pk=contact.pk)
    changes = []
    if data.is_main is not None:
        changes += _set_main(CorporateContact, corporate, contact, data.is_main, "main_contact")
    if data.companies is not None:
        changes += _link_companies(corporate, contact, data.companies)
    _finish(corporate, changes, actor)
    return contact


# --- notes -------------------------------------------------------------------------------------------


@transaction.atomic
def add_note(corporate: CorporateCustomer, text: str, *, actor: Actor, author: Any = None) -> CorporateNote:
    text = clean_text(text, "text", 5000)
    if not text:
        raise ValidationError({"text": _("This field is required.")})
    corporate = _locked(corporate)
    note = CorporateNote.objects.create(corporate=corporate, text=text, author=author or actor.user)
    _finish(
        corporate, [Change(ENTITY, corporate.pk, "note", None, text, context={"note_id": note.pk})], actor
    )
    return note


@transaction.atomic
def delete_note(note: CorporateNote, *, actor: Actor) -> None:
    corporate = _locked(note.corporate)
    note = CorporateNote.objects.get(pk=note.pk)
    changes = [Change(ENTITY, corporate.pk, "note", note.text, None, context={"note_id": note.pk})]
    note.delete()
    _finish(corporate, changes, actor)


# --- merging -----------------------------------------------------------------------------------------


def _move_external_ids(model: type[models.Model], survivor: CorporateCustomer, other_ids: list[int]) -> None:
    """An externalId the survivor (or an earlier merged one) already uses is dropped from the moved row."""
    taken = set(
        model.objects.filter(corporate=survivor, external_id__isnull=False).values_list(
            "external_id", flat=True
        )
    )
    rows = model.objects.filter(corporate_id__in=other_ids, external_id__isnull=False).order_by("id")
    for pk, external in rows.values_list("pk", "external_id"):
        if external in taken:
            model.objects.filter(pk=pk).update(external_id=None)
        taken.add(external)


def _move_rows(
    model: type[models.Model], survivor: CorporateCustomer, other_ids: list[int], field_name: str
) -> tuple[list[int], list[Change]]:
    """Move the others' rows, demoted: the survivor's main one stays; if it has none, the first moved main
    one takes its place."""
    moved = list(model.objects.filter(corporate_id__in=other_ids).order_by("id").values_list("pk", flat=True))
    mains = list(
        model.objects.filter(corporate_id__in=other_ids, is_main=True)
        .order_by("id")
        .values_list("pk", flat=True)
    )
    model.objects.filter(pk__in=moved).update(corporate=survivor, is_main=False)
    changes: list[Change] = []
    if mains and not model.objects.filter(corporate=survivor, is_main=True).exists():
        changes = _set_main(model, survivor, model.objects.get(pk=mains[0]), True, field_name)
    return moved, changes


def _move_contacts(survivor: CorporateCustomer, other_ids: list[int]) -> None:
    """A person who already speaks for the survivor keeps that contact, which gains the other's companies."""
    existing = dict(CorporateContact.objects.filter(corporate=survivor).values_list("customer_id", "pk"))
    for contact in CorporateContact.objects.filter(corporate_id__in=other_ids).order_by("id"):
        if contact.customer_id in existing:
            ContactCompany.objects.filter(contact=contact).update(contact_id=existing[contact.customer_id])
            contact.delete()
        else:
            CorporateContact.objects.filter(pk=contact.pk).update(corporate=survivor, is_main=False)
            existing[contact.customer_id] = contact.pk


@transaction.atomic
def merge_corporate(
    survivor: CorporateCustomer, others: Sequence[CorporateCustomer], *, actor: Actor
) -> CorporateCustomer:
    """Move the others' addresses, companies, contacts, notes and tags to `survivor`; its data wins.

    The others stay as merged stubs; both sides get a history record (`merged` on the survivor,
    `merged_into` on each merged one), as person customers do.
    """
    survivor = _locked(survivor)
    others = list(
        CorporateCustomer.objects.select_for_update()
        .filter(pk__in=[o.pk for o in others])
        .exclude(pk=survivor.pk)
        .order_by("id")
    )
    if not others:
        raise ValidationError({"customers": _("Choose at least one other customer to merge.")})
    if survivor.merged_into_id or any(o.site_id != survivor.site_id or o.merged_into_id for o in others):
        raise ValidationError({"customers": _("Only active customers of the same site can be merged.")})
    other_ids = [o.pk for o in others]
    had_main_contact = CorporateContact.objects.filter(corporate=survivor, is_main=True).exists()
    main_contacts = list(
        CorporateContact.objects.filter(corporate_id__in=other_ids, is_main=True)
        .order_by("id")
        .values_list("customer_id", flat=True)
    )
    changes: list[Change] = []
    moved: dict[str, list[int]] = {}
    for model, key, field_name in (
        (CorporateAddress, "addresses", "main_address"),
        (Company, "companies", "main_company"),
    ):
        _move_external_ids(model, survivor, other_ids)
        moved[key], main_changes = _move_rows(model, survivor, other_ids, field_name)
        changes += main_changes
    contact_persons = list(
        CorporateContact.objects.filter(corporate_id__in=other_ids).values_list("customer_id", flat=True)
    )
    _move_contacts(survivor, other_ids)
    if main_contacts and not had_main_contact:
        contact = CorporateContact.objects.get(corporate=survivor, customer_id=main_contacts[0])
        changes += _set_main(CorporateContact, survivor, contact, True, "main_contact")
    moved["contacts"] = sorted(
        CorporateContact.objects.filter(corporate=survivor, customer_id__in=contact_persons).values_list(
            "pk", flat=True
        )
    )
    moved["notes"] = list(
        CorporateNote.objects.filter(corporate_id__in=other_ids).values_list("pk", flat=True)
    )
    CorporateNote.objects.filter(pk__in=moved["notes"]).update(corporate=survivor)
    survivor.tags.add(*Tag.objects.filter(corporate_customers__in=other_ids))
    for other in others:
        if not survivor.nick_name and other.nick_name:
            changes.append(Change(ENTITY, survivor.pk, "nick_name", None, other.nick_name))
            survivor.nick_name = other.nick_name
        other.merged_into = survivor
        other.save(update_fields=["merged_into", "updated_at"])
        changes.append(Change(ENTITY, other.pk, "merged_into", None, survivor.pk))
    survivor.save()
    changes.append(Change(ENTITY, survivor.pk, "merged", None, other_ids, context=moved))
    history.write(changes, actor)
    events.emit(CorporateCustomerUpdated(survivor.pk, survivor.site.code, ["merged"]), actor=actor)
    return survivor
