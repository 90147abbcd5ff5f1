"""The only writers of customers (DESIGN.md §6): each action writes the change, its history and its
event in one transaction."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import CustomField, Site
from lavka.core.validation import clean_custom_fields, clean_email, clean_phone, clean_text
from lavka.customers.choices import ADDRESS_PARTS, TRACKED_FIELDS, Channel, Purpose, Sex
from lavka.customers.events import CustomerCreated, CustomerManagerChanged, CustomersMerged, CustomerUpdated
from lavka.customers.models import (
    Consent,
    CorporateContact,
    Customer,
    CustomerAddress,
    CustomerNote,
    CustomerPhone,
    Tag,
)

ENTITY = "customer"
ADDRESS_FIELDS = ADDRESS_PARTS
TEXT_LIMITS = {
    "first_name": 150,
    "last_name": 150,
    "patronymic": 150,
    "source": 255,
    "medium": 255,
    "campaign": 255,
    "keyword": 255,
    "content": 255,
}


@dataclass
class CustomerData:
    """What a form, the API or an import may set on a customer; None means "leave as it is"."""

    first_name: str | None = None
    last_name: str | None = None
    patronymic: str | None = None
    email: str | None = None
    phones: list[str] | None = None
    birthday: datetime.date | str | None = None
    sex: str | None = None
    manager: Any = None  # a User, or None; see `manager_set`
    manager_set: bool = False
    external_id: str | None = None
    vip: bool | None = None
    bad: bool | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    content: str | None = None
    custom_fields: dict[str, Any] | None = None
    address: dict[str, str] | None = None
    tags: list[str] | None = None
    add_tags: list[str] | None = None  # on update: tags to attach / detach, leaving the others
    remove_tags: list[str] | None = None
    consents: dict[tuple[str, str], bool] | None = None
    consent_source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class CustomerExists(ValidationError):
    """Another customer of the site has this externalId (the unique constraint said so)."""

    def __init__(self) -> None:
        super().__init__({"external_id": _("Customer already exists.")})


def check_manager(manager: Any, site: Site, field_name: str = "manager") -> None:
    """A responsible manager must be an active staff member who works on the site."""
    if manager is None:
        return
    if not manager.is_active or (manager.role not in ("admin",) and site.pk not in manager.site_ids):
        raise ValidationError({field_name: _("This user cannot be responsible on this site.")})


def _clean(site: Site, data: CustomerData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        raw = getattr(data, name)
        if raw is not None:
            values[name] = clean_text(raw, name, limit)
    if data.email is not None:
        values["email"] = clean_email(data.email)
    if data.external_id is not None:
        values["external_id"] = clean_text(data.external_id, "external_id", 100) or None
    if data.birthday is not None:
        values["birthday"] = _clean_birthday(data.birthday)
    if data.sex is not None:
        if data.sex not in ("", *Sex.values):
            raise ValidationError({"sex": _("Unknown value.")})
        values["sex"] = data.sex
    for flag in ("vip", "bad"):
        if getattr(data, flag) is not None:
            values[flag] = bool(getattr(data, flag))
    if data.manager_set:
        check_manager(data.manager, site)
        values["manager"] = data.manager
    if data.custom_fields is not None:
        values["custom_fields"] = clean_custom_fields(site, CustomField.Entity.CUSTOMER, data.custom_fields)
    return values


def _clean_birthday(raw: Any) -> datetime.date | None:
    if raw in ("", None):
        return None
    try:
        day = raw if isinstance(raw, datetime.date) else datetime.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValidationError({"birthday": _("Enter a valid date.")}) from exc
    if not datetime.date(1900, 1, 1) <= day <= timezone.localdate():
        raise ValidationError({"birthday": _("Enter a valid date.")})
    return day


def _clean_phones(site: Site, phones: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in phones:
        if not str(raw).strip():
            continue
        number = clean_phone(str(raw), site, "phones")
        if number not in cleaned:
            cleaned.append(number)
    if len(cleaned) > 10:
        raise ValidationError({"phones": _("At most 10 phone numbers.")})
    return cleaned


def clean_address_parts(address: dict[str, Any], model: Any = CustomerAddress) -> dict[str, str]:
    """The parts of `address` that were given, cleaned; the ones left out are not in the result."""
    cleaned = {}
    for key in ADDRESS_FIELDS:
        if key not in address:
            continue
        value = clean_text(address[key], f"address.{key}", model._meta.get_field(key).max_length)
        if key == "country_iso":
            value = value.upper()
            if value and not (len(value) == 2 and value.isascii() and value.isalpha()):
                raise ValidationError({"address.country_iso": _("Expected a two-letter country code.")})
        cleaned[key] = value
    return cleaned


def _clean_address(address: dict[str, Any]) -> dict[str, str]:
    return clean_address_parts(address)


def _address_changes(
    entity_id: int, address_id: int, old: dict[str, str], new: dict[str, str], *, created: bool = False
) -> list[Change]:
    """One record per changed part (`address.city` …), as retailCRM's history names them."""
    return [
        Change(
            ENTITY,
            entity_id,
            f"address.{key}",
            old.get(key) or None,
            new.get(key) or None,
            created=created,
            context={"address_id": address_id},
        )
        for key in ADDRESS_FIELDS
        if (old.get(key) or "") != (new.get(key) or "")
    ]


def custom_field_changes(
    entity: str, entity_id: int, old: dict[str, Any], new: dict[str, Any], *, created: bool = False
) -> list[Change]:
    """One record per custom field that changed, named `custom_<code>`."""
    return [
        Change(entity, entity_id, f"custom_{code}", old.get(code), new.get(code), created=created)
        for code in sorted(set(old) | set(new))
        if old.get(code) != new.get(code)
    ]


def phone_changes(entity_id: int, old: list[str], new: list[str], *, created: bool = False) -> list[Change]:
    """A record per number removed (old → None) and added (None → new)."""
    removed = [Change(ENTITY, entity_id, "phones", n, None) for n in old if n not in new]
    added = [Change(ENTITY, entity_id, "phones", None, n, created=created) for n in new if n not in old]
    return removed + added


def find_duplicates(
    site: Site, *, phones: Iterable[str] = (), email: str = "", exclude_id: int | None = None
) -> list[Customer]:
    """Customers of the site with one of these phones (any format) or this e-mail."""
    numbers = []
    for raw in phones:
        try:
            numbers.append(clean_phone(str(raw), site))
        except ValidationError:
            continue
    try:
        email = clean_email(email)
    except ValidationError:
        email = ""
    q = Q()
    if numbers:
        q |= Q(phones__number__in=numbers)
    if email:
        q |= Q(email__iexact=email)
    if not q:
        return []
    found = Customer.objects.active().filter(q, site=site).distinct()
    if exclude_id:
        found = found.exclude(pk=exclude_id)
    return list(found.order_by("id")[:20])


@transaction.atomic
def create_customer(
    site: Site, data: CustomerData, *, actor: Actor, created_at: datetime.datetime | None = None
) -> Customer:
    return create_customer_in_transaction(site, data, actor=actor, created_at=created_at)


def create_customer_in_transaction(
    site: Site, data: CustomerData, *, actor: Actor, created_at: datetime.datetime | None = None
) -> Customer:
    """`create_customer` for an action that holds the transaction already (an order with a new
    customer): an error rolls the caller back with it, and no savepoint is spent on the way."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("create_customer_in_transaction runs inside the caller's transaction")
    values = _clean(site, data)
    phones = _clean_phones(site, data.phones or [])
    address = _clean_address(data.address) if data.address else None
    tags = _tags(data.tags or ())
    customer = Customer(site=site, created_at=created_at or timezone.now(), created_by=actor.user, **values)
    _save_unique(customer)
    phones_rows = CustomerPhone.objects.bulk_create(
        [CustomerPhone(customer=customer, number=n, position=i) for i, n in enumerate(phones)]
    )
    changes = [
        Change(ENTITY, customer.pk, "id", None, customer.pk, created=True, context={"site": site.code})
    ]
    after = history.snapshot(customer, TRACKED_FIELDS)
    changes += [
        Change(ENTITY, customer.pk, name, None, value, created=True)
        for name, value in after.items()
        if value not in (None, "", False, {})
    ]
    changes += custom_field_changes(ENTITY, customer.pk, {}, customer.custom_fields, created=True)
    changes += phone_changes(customer.pk, [], phones, created=True)
    addresses = []
    if address and any(address.values()):
        main = CustomerAddress.objects.create(customer=customer, is_main=True, **address)
        addresses.append(main)
        changes += _address_changes(customer.pk, main.pk, {}, address, created=True)
    if tags:
        customer.tags.set(tags)
        changes.append(Change(ENTITY, customer.pk, "tags", None, sorted(t.name for t in tags), created=True))
    if data.consents:
        changes += _set_consents(customer, data.consents, data.consent_source or actor.source)
    else:
        _keep_related(customer, consents=[])
    _keep_related(customer, phones=phones_rows, tags=tags, addresses=addresses)
    history.write(changes, actor)
    events.emit(CustomerCreated(customer.pk, site.code), actor=actor)
    return customer


def _keep_related(customer: Customer, **related: list[Any]) -> None:
    """Leave rows just written in the customer's prefetch cache, so showing the new customer at once
    (the API's create answer) reads them without querying again."""
    cache = customer.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in related.items():
        queryset = getattr(customer, name).all()
        queryset._result_cache, queryset._prefetch_done = list(rows), True
        cache[name] = queryset


def _save_unique(customer: Customer) -> None:
    """Save; a taken externalId is decided by the database's unique constraint, also under races."""
    if not customer.external_id:  # nothing unique to clash on: no savepoint needed
        customer.save()
        return
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        if customer.external_id:
            raise CustomerExists() from exc
        raise


def _tags(names: Iterable[str]) -> list[Tag]:
    wanted = {clean_text(n, "tags", 100) for n in names if str(n).strip()}
    if len(wanted) > 100:
        raise ValidationError({"tags": _("At most 100 tags.")})
    tags = []
    for name in sorted(wanted):
        try:
            with transaction.atomic():
                tag, _created = Tag.objects.get_or_create(name=name)
        except IntegrityError:  # created by a concurrent request in the meantime
            tag = Tag.objects.get(name=name)
        tags.append(tag)
    return tags


def tag_names_after(current: Iterable[str], data: CustomerData) -> list[str] | None:
    """The tag names after applying `tags` (the full set) or `add_tags`/`remove_tags`; None: unchanged."""
    if data.tags is None and data.add_tags is None and data.remove_tags is None:
        return None
    names = list(data.tags) if data.tags is not None else list(current)
    names += list(data.add_tags or ())
    removed = {clean_text(n, "tags", 100) for n in data.remove_tags or ()}
    return [n for n in names if clean_text(n, "tags", 100) not in removed]


def _set_consents(customer: Customer, consents: dict[tuple[str, str], bool], source: str) -> list[Change]:
    changes = []
    now = timezone.now()
    existing = {(c.channel, c.purpose): c for c in customer.consents.all()}
    for (channel, purpose), granted in consents.items():
        if channel not in Channel.values or purpose not in Purpose.values:
            raise ValidationError({"consents": _("Unknown channel or purpose.")})
        current = existing.get((channel, purpose))
        if current is not None and current.granted == bool(granted):
            continue
        Consent.objects.update_or_create(
            customer=customer,
            channel=channel,
            purpose=purpose,
            defaults={"granted": bool(granted), "changed_at": now, "source": source[:100]},
        )
        changes.append(
            Change(
                ENTITY,
                customer.pk,
                f"consent.{channel}.{purpose}",
                current.granted if current else None,
                bool(granted),
                context={"source": source},
            )
        )
    return changes


@transaction.atomic
def update_customer(customer: Customer, data: CustomerData, *, actor: Actor) -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    site = customer.site
    values = _clean(site, data)
    before = history.snapshot(customer, TRACKED_FIELDS)
    old_custom = dict(customer.custom_fields or {})
    old_manager_id = customer.manager_id
    for name, value in values.items():
        setattr(customer, name, value)
    if "external_id" in values:
        _save_unique(customer)
    else:
        customer.save()
    changes = history.diff(ENTITY, customer.pk, before, history.snapshot(customer, TRACKED_FIELDS))
    changes += custom_field_changes(ENTITY, customer.pk, old_custom, customer.custom_fields or {})
    if data.phones is not None:
        phones = _clean_phones(site, data.phones)
        old_phones = [p.number for p in customer.phones.all()]
        if phones != old_phones:
            customer.phones.all().delete()
            CustomerPhone.objects.bulk_create(
                CustomerPhone(customer=customer, number=n, position=i) for i, n in enumerate(phones)
            )
            changes += phone_changes(customer.pk, old_phones, phones)
    if data.address is not None:
        changes += _update_main_address(customer, _clean_address(data.address))
    new_tag_names = tag_names_after(customer.tags.values_list("name", flat=True), data)
    if new_tag_names is not None:
        old_tags = sorted(customer.tags.values_list("name", flat=True))
        new_tags = _tags(new_tag_names)
        if sorted(t.name for t in new_tags) != old_tags:
            customer.tags.set(new_tags)
            changes.append(Change(ENTITY, customer.pk, "tags", old_tags, sorted(t.name for t in new_tags)))
    if data.consents:
        changes += _set_consents(customer, data.consents, data.consent_source or actor.source)
    history.write(changes, actor)
    if changes:
        events.emit(CustomerUpdated(customer.pk, site.code, sorted({c.field for c in changes})), actor=actor)
    if customer.manager_id != old_manager_id:
        events.emit(
            CustomerManagerChanged(customer.pk, site.code, old_manager_id, customer.manager_id), actor=actor
        )
    return customer


def _update_main_address(customer: Customer, address: dict[str, str]) -> list[Change]:
    """Merge the given parts into the main address (creating it when there is none)."""
    main = customer.addresses.filter(is_main=True).first()
    old = {k: getattr(main, k) for k in ADDRESS_FIELDS} if main else {}
    new = {k: "" for k in ADDRESS_FIELDS} | old | address
    if new == ({k: "" for k in ADDRESS_FIELDS} | old):
        return []
    if main:
        CustomerAddress.objects.filter(pk=main.pk).update(**new)
    else:
        main = CustomerAddress.objects.create(customer=customer, is_main=True, **new)
    return _address_changes(customer.pk, main.pk, old, new)


@transaction.atomic
def add_note(customer: Customer, text: str, *, actor: Actor, author: Any = None) -> CustomerNote:
    """`author` defaults to the acting user (an API client names the manager it writes for)."""
    text = clean_text(text, "text", 5000)
    if not text:
        raise ValidationError({"text": _("This field is required.")})
    note = CustomerNote.objects.create(customer=customer, text=text, author=author or actor.user)
    history.write([Change(ENTITY, customer.pk, "note", None, text, context={"note_id": note.pk})], actor)
    events.emit(CustomerUpdated(customer.pk, customer.site.code, ["note"]), actor=actor)
    return note


@transaction.atomic
def delete_note(note: CustomerNote, *, actor: Actor) -> None:
    note = (
        CustomerNote.objects.select_for_update(of=("self",)).select_related("customer__site").get(pk=note.pk)
    )
    customer = note.customer
    history.write([Change(ENTITY, customer.pk, "note", note.text, None, context={"note_id": note.pk})], actor)
    note.delete()
    events.emit(CustomerUpdated(customer.pk, customer.site.code, ["note"]), actor=actor)


@transaction.atomic
def merge_customers(survivor: Customer, others: Iterable[Customer], *, actor: Actor) -> Customer:
    """Move the others' orders, phones, notes and consents to `survivor`; they stay as merged stubs.

    History is append-only, so their records are not moved: the survivor's timeline reads the records
    of every customer merged into it, and both sides get a `merged` record.
    """
    survivor = Customer.objects.select_for_update().get(pk=survivor.pk)
    others = list(
        Customer.objects.select_for_update().filter(pk__in=[o.pk for o in others]).exclude(pk=survivor.pk)
    )
    if not others:
        raise ValidationError({"customers": _("Choose at least one other customer to merge.")})
    if any(o.site_id != survivor.site_id for o in others) or any(o.merged_into_id for o in others):
        raise ValidationError({"customers": _("Only active customers of the same site can be merged.")})
    Order = apps.get_model("orders", "Order")
    other_ids = [o.pk for o in others]
    moved_orders = list(Order.objects.filter(customer_id__in=other_ids).values_list("id", flat=True))
    Order.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    known = set(survivor.phones.values_list("number", flat=True))
    position = len(known)
    for phone in CustomerPhone.objects.filter(customer_id__in=other_ids).order_by("customer_id", "position"):
        if phone.number not in known:
            CustomerPhone.objects.create(customer=survivor, number=phone.number, position=position)
            known.add(phone.number)
            position += 1
    CustomerNote.objects.filter(customer_id__in=other_ids).update(customer=survivor)
    # The survivor speaks for the corporate customers the others did (unless it already does).
    taken = set(CorporateContact.objects.filter(customer=survivor).values_list("corporate_id", flat=True))
    for contact in CorporateContact.objects.filter(customer_id__in=other_ids).order_by("id"):
        if contact.corporate_id not in taken:
            CorporateContact.objects.filter(pk=contact.pk).update(customer=survivor)
            taken.add(contact.corporate_id)
    CustomerAddress.objects.filter(customer_id__in=other_ids).update(customer=survivor, is_main=False)
    survivor.tags.add(*Tag.objects.filter(customers__in=other_ids))
    changes = []
    for other in others:
        for field_name in ("first_name", "last_name", "patronymic", "email", "birthday"):
            if not getattr(survivor, field_name) and getattr(other, field_name):
                changes.append(Change(ENTITY, survivor.pk, field_name, None, getattr(other, field_name)))
                setattr(survivor, field_name, getattr(other, field_name))
        other.merged_into = survivor
        other.save(update_fields=["merged_into", "updated_at"])
        changes.append(Change(ENTITY, other.pk, "merged_into", None, survivor.pk))
    survivor.save()
    changes.append(Change(ENTITY, survivor.pk, "merged", None, other_ids, context={"orders": moved_orders}))
    history.write(changes, actor)
    refresh_stats(survivor.pk)
    events.emit(CustomersMerged(survivor.pk, survivor.site.code, other_ids), actor=actor)
    return survivor


def refresh_stats(customer_id: int) -> None:
    """Recompute the derived order figures (a receiver of order events calls this)."""
    Order = apps.get_model("orders", "Order")
    figures = (
        Order.objects.filter(customer_id=customer_id)
        .counted()
        .aggregate(n=Count("id"), total=Sum("total_summ"), first=Min("created_at"), last=Max("created_at"))
    )
    Customer.objects.filter(pk=customer_id).update(
        orders_count=figures["n"] or 0,
        total_summ=figures["total"] or 0,
        first_order_at=figures["first"],
        last_order_at=figures["last"],
    )


def timeline_ids(customer: Customer) -> list[int]:
    return [customer.pk, *customer.merged_customers.values_list("id", flat=True)]
