"""The only writers of loyalty programmes, accounts and the bonus ledger (DESIGN.md §6).

Each action validates, writes, appends its history and emits its events in one transaction. An action
that writes to an account's ledger locks the account row first and, when it must change an order,
changes it through `orders.actions` afterwards (always account, then order: no lock cycles). The
balance is replayed from the ledger after every row and cached on the account in the same transaction.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.money import ZERO
from lavka.core.phones import InvalidPhone, normalize_phone
from lavka.core.validation import clean_decimal, clean_text
from lavka.customers.models import Customer
from lavka.loyalty import calculation, ledger, queries
from lavka.loyalty.choices import CHARGES, CREDITS, OperationType
from lavka.loyalty.events import (
    AccountActivated,
    AccountCreated,
    AccountUpdated,
    BonusCancelled,
    BonusCharged,
    BonusCredited,
    BonusExpired,
    LevelChanged,
    ProgramSaved,
)
from lavka.loyalty.models import BonusOperation, LoyaltyAccount, LoyaltyLevel, LoyaltyProgram
from lavka.orders import actions as order_actions
from lavka.orders.choices import Group
from lavka.orders.models import Order

ENTITY_PROGRAM = "loyalty_program"
ENTITY_ACCOUNT = "loyalty_account"
PROGRAM_FIELDS = {
    "name": "name",
    "active": "active",
    "currency": "currency",
    "max_charge_percent": "max_charge_percent",
    "activation_delay_days": "activation_delay_days",
    "expiry_days": "expiry_days",
}
ACCOUNT_FIELDS = {
    "phone_number": "phone_number",
    "card_number": "card_number",
    "active": "active",
    "level_id": "level",
    "custom_fields": "custom_fields",
}
MAX_DAYS = 3650
MAX_LEVELS = 20
MAX_CUSTOM_FIELDS = 50
HUNDRED = Decimal(100)


# --- programmes --------------------------------------------------------------------------------------


@dataclass
class LevelData:
    name: str
    threshold: Any
    percent: Any
    id: int | None = None  # an existing level, kept and changed


@dataclass
class ProgramData:
    """What the settings page may set; None means "leave as it is" on edit."""

    name: str | None = None
    sites: list[Site] | None = None
    active: bool | None = None
    currency: str | None = None
    max_charge_percent: Any = None
    activation_delay_days: Any = None
    expiry_days: Any = None
    levels: list[LevelData] | None = None


def _days(value: Any, field: str) -> int:
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ValidationError({field: _("Enter a whole number.")}) from None
    if not 0 <= days <= MAX_DAYS:
        raise ValidationError({field: _("Between 0 and %(max)s days.") % {"max": MAX_DAYS}})
    return days


def _apply_program(program: LoyaltyProgram, data: ProgramData) -> None:
    if data.name is not None:
        program.name = clean_text(data.name, "name", 255)
    if not program.name:
        raise ValidationError({"name": _("This field is required.")})
    if data.currency is not None:
        currency = clean_text(data.currency, "currency", 3).upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise ValidationError({"currency": _("A three-letter ISO 4217 code, e.g. RUB.")})
        program.currency = currency
    if data.max_charge_percent is not None:
        program.max_charge_percent = clean_decimal(
            data.max_charge_percent, "max_charge_percent", maximum=HUNDRED
        )
    if data.activation_delay_days is not None:
        program.activation_delay_days = _days(data.activation_delay_days, "activation_delay_days")
    if data.expiry_days is not None:
        program.expiry_days = _days(data.expiry_days, "expiry_days")
    if data.active is not None and data.active != program.active:
        program.active = data.active
        now = timezone.now()
        if data.active:
            program.activated_at = program.activated_at or now
            program.deactivated_at = None
        else:
            program.deactivated_at = now


def _check_sites(program: LoyaltyProgram, sites: list[Site]) -> None:
    if not sites:
        raise ValidationError({"sites": _("Choose at least one site.")})
    taken = LoyaltyProgram.objects.filter(sites__in=sites).exclude(pk=program.pk).distinct()
    for other in taken:
        codes = ", ".join(sorted(s.code for s in other.sites.all() if s in sites))
        raise ValidationError(
            {
                "sites": _("Already in the programme “%(name)s”: %(codes)s.")
                % {"name": other.name, "codes": codes}
            }
        )


def _clean_levels(levels: list[LevelData]) -> list[tuple[LevelData, str, Decimal, Decimal]]:
    if not levels:
        raise ValidationError({"levels": _("A programme needs at least one level.")})
    if len(levels) > MAX_LEVELS:
        raise ValidationError({"levels": _("At most %(n)s levels.") % {"n": MAX_LEVELS}})
    cleaned = []
    for index, level in enumerate(levels):
        prefix = f"levels.{index}."
        name = clean_text(level.name, prefix + "name", 255)
        if not name:
            raise ValidationError({prefix + "name": _("This field is required.")})
        threshold = clean_decimal(
            level.threshold if level.threshold not in (None, "") else 0, prefix + "threshold"
        )
        percent = clean_decimal(
            level.percent if level.percent not in (None, "") else 0, prefix + "percent", maximum=HUNDRED
        )
        cleaned.append((level, name, threshold, percent))
    thresholds = [threshold for _level, _name, threshold, _percent in cleaned]
    if len(set(thresholds)) != len(thresholds):
        raise ValidationError({"levels": _("Two levels start at the same orders sum.")})
    if min(thresholds) != 0:
        raise ValidationError({"levels": _("The first level must start at an orders sum of 0.")})
    return sorted(cleaned, key=lambda row: row[2])


def _levels_state(program: LoyaltyProgram) -> list[dict[str, Any]]:
    return [
        {"id": lv.pk, "name": lv.name, "threshold": lv.threshold, "percent": lv.percent}
        for lv in program.levels.all()
    ]


def _save_levels(program: LoyaltyProgram, levels: list[LevelData]) -> None:
    cleaned = _clean_levels(levels)
    existing = {lv.pk: lv for lv in program.levels.all()}
    for level, _name, _threshold, _percent in cleaned:
        if level.id is not None and level.id not in existing:
            raise ValidationError({"levels": _("Unknown level.")})
    kept = {level.id for level, *_rest in cleaned if level.id is not None}
    removed = [pk for pk in existing if pk not in kept]
    # Accounts on a removed level go back to the automatic level.
    LoyaltyAccount.objects.filter(level_id__in=removed).update(level=None, level_locked=False)
    LoyaltyLevel.objects.filter(pk__in=removed).delete()
    # Thresholds are unique per programme: move the kept ones out of the way before renumbering.
    for offset, pk in enumerate(kept):
        LoyaltyLevel.objects.filter(pk=pk).update(threshold=Decimal(-1 - offset))
    for level, name, threshold, percent in cleaned:
        row = existing[level.id] if level.id is not None else LoyaltyLevel(program=program)
        row.name, row.threshold, row.percent = name, threshold, percent
        row.save()
    _relevel(program)


def _relevel(program: LoyaltyProgram) -> None:
    """Every automatic account on the level its cached orders sum reaches (set-based: a programme may
    have millions of accounts; the level is derived, so this writes no per-account history)."""
    accounts = LoyaltyAccount.objects.filter(program=program, level_locked=False)
    accounts.update(level=None)
    for level in program.levels.order_by("threshold"):
        accounts.filter(orders_sum__gte=level.threshold).update(level=level)


@transaction.atomic
def save_program(program: LoyaltyProgram | None, data: ProgramData, *, actor: Actor) -> LoyaltyProgram:
    """Create or change a programme with its sites and levels."""
    created = program is None
    if program is None:
        program = LoyaltyProgram(created_at=timezone.now())
        if data.levels is None:
            raise ValidationError({"levels": _("A programme needs at least one level.")})
    else:
        program = LoyaltyProgram.objects.select_for_update().get(pk=program.pk)
    before = {} if created else history.snapshot(program, PROGRAM_FIELDS)
    before_sites = [] if created else sorted(program.sites.values_list("code", flat=True))
    before_levels = [] if created else _levels_state(program)
    _apply_program(program, data)
    if data.sites is not None or created:
        _check_sites(program, data.sites or [])
    program.save()
    if data.sites is not None:
        program.sites.set(data.sites)
    if data.levels is not None:
        _save_levels(program, data.levels)
    after = history.snapshot(program, PROGRAM_FIELDS)
    after["sites"] = sorted(program.sites.values_list("code", flat=True))
    after["levels"] = history.plain(_levels_state(program))
    before = {**before, "sites": before_sites, "levels": history.plain(before_levels)}
    if created:
        changes = [Change(ENTITY_PROGRAM, program.pk, "id", None, program.pk, created=True)]
        changes += [Change(ENTITY_PROGRAM, program.pk, k, None, v, created=True) for k, v in after.items()]
    else:
        changes = history.diff(ENTITY_PROGRAM, program.pk, before, after)
    history.write(changes, actor)
    if changes:
        fields = sorted({c.field for c in changes} - {"id"})
        events.emit(ProgramSaved(program.pk, created, after["sites"], fields), actor=actor)
    return program


# --- accounts ----------------------------------------------------------------------------------------


class AlreadyEnrolled(ValidationError):
    """The customer already has an account in the programme (one per customer and programme)."""

    def __init__(self) -> None:
        super().__init__({"customer": _("The customer already takes part in the loyalty programme.")})


@dataclass
class AccountData:
    """What a form or the API may set on an account; None means "leave as it is"."""

    phone_number: str | None = None
    card_number: str | None = None
    custom_fields: dict[str, Any] | None = None
    level: LoyaltyLevel | None = None
    level_set: bool = False  # with level=None: back to the level the orders sum gives


def _locked(account: LoyaltyAccount) -> LoyaltyAccount:
    return (
        LoyaltyAccount.objects.select_for_update(of=("self",))
        .select_related("program", "customer__site", "level")
        .get(pk=account.pk)
    )


def _site_code(account: LoyaltyAccount) -> str:
    return account.customer.site.code


def _clean_custom_fields(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ValidationError({"custom_fields": _("Expected a set of field values.")})
    if len(values) > MAX_CUSTOM_FIELDS:
        raise ValidationError({"custom_fields": _("Too many fields.")})
    cleaned: dict[str, Any] = {}
    for code, value in values.items():
        key = str(code)
        if not key or len(key) > 64 or not all(ch.isalnum() or ch in "_-" for ch in key):
            raise ValidationError({"custom_fields": _("Invalid field code.")})
        if isinstance(value, dict | list) or (isinstance(value, str) and len(value) > 2000):
            raise ValidationError({f"custom_{key}": _("A single value is expected.")})
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError({f"custom_{key}": _("Enter a number.")})
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError({f"custom_{key}": _("Contains a forbidden character.")})
        if value not in (None, ""):
            cleaned[key] = value
    return cleaned


def _apply_account(account: LoyaltyAccount, data: AccountData) -> None:
    site = account.customer.site
    if data.phone_number is not None:
        raw = str(data.phone_number).strip()
        try:
            account.phone_number = normalize_phone(raw, site.country) if raw else ""
        except InvalidPhone as exc:
            raise ValidationError({"phone_number": _("Enter a valid phone number.")}) from exc
    if data.card_number is not None:
        account.card_number = clean_text(data.card_number, "card_number", 64)
    if data.custom_fields is not None:
        account.custom_fields = _clean_custom_fields(data.custom_fields)
    if data.level_set:
        if data.level is not None and data.level.program_id != account.program_id:
            raise ValidationError({"level": _("This level belongs to another programme.")})
        account.level_locked = data.level is not None
        account.level = data.level or queries.level_for(account.program, account.orders_sum)
    if not account.phone_number and not account.card_number:
        raise ValidationError({"phone_number": _("Give a phone number or a card number.")})
    if (
        account.card_number
        and LoyaltyAccount.objects.filter(program=account.program_id, card_number=account.card_number)
        .exclude(pk=account.pk)
        .exists()
    ):
        raise ValidationError({"card_number": _("Another participant has this card.")})


@transaction.atomic
def create_account(
    customer: Customer, data: AccountData, *, actor: Actor, activate: bool = False
) -> LoyaltyAccount:
    """Enrol a customer in the programme of their site (inactive until `activate_account`, as a shop's
    registration form expects, unless `activate`)."""
    if customer.merged_into_id:
        raise ValidationError({"customer": _("Unknown customer.")})
    program = queries.program_for_site(customer.site_id)
    if program is None:
        raise ValidationError({"site": _("The site has no loyalty programme.")})
    if not program.active:
        raise ValidationError({"site": _("The site's loyalty programme is not active.")})
    if LoyaltyAccount.objects.filter(program=program, customer=customer).exists():
        raise AlreadyEnrolled()
    now = timezone.now()
    account = LoyaltyAccount(program=program, customer=customer, created_at=now)
    account.orders_sum = queries.orders_sum(account)
    account.level = queries.level_for(program, account.orders_sum)
    _apply_account(account, data)
    if activate:
        account.active, account.activated_at = True, now
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError as exc:  # a concurrent enrolment or card took it meanwhile
        raise AlreadyEnrolled() from exc
    changes = [
        Change(
            ENTITY_ACCOUNT,
            account.pk,
            "id",
            None,
            account.pk,
            created=True,
            context={"site": customer.site.code, "customer": customer.pk, "program": program.pk},
        )
    ]
    changes += [
        Change(ENTITY_ACCOUNT, account.pk, name, None, value, created=True)
        for name, value in history.snapshot(account, ACCOUNT_FIELDS).items()
        if value not in (None, "", False, {})
    ]
    history.write(changes, actor)
    events.emit(
        AccountCreated(account.pk, program.pk, customer.pk, customer.site.code, account.active), actor=actor
    )
    if account.active:
        events.emit(AccountActivated(account.pk, customer.pk, customer.site.code), actor=actor)
    return account


@transaction.atomic
def update_account(account: LoyaltyAccount, data: AccountData, *, actor: Actor) -> LoyaltyAccount:
    """Change the phone, card, custom fields or (by hand) the level."""
    account = _locked(account)
    before = history.snapshot(account, ACCOUNT_FIELDS)
    _apply_account(account, data)
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError as exc:
        raise ValidationError({"card_number": _("Another participant has this card.")}) from exc
    changes = history.diff(ENTITY_ACCOUNT, account.pk, before, history.snapshot(account, ACCOUNT_FIELDS))
    history.write(changes, actor)
    if changes:
        fields = sorted({c.field for c in changes})
        events.emit(AccountUpdated(account.pk, account.customer_id, _site_code(account), fields), actor=actor)
    if before["level"] != account.level_id:
        events.emit(
            LevelChanged(
                account.pk, account.customer_id, _site_code(account), before["level"], account.level_id
            ),
            actor=actor,
        )
    return account


@transaction.atomic
def activate_account(account: LoyaltyAccount, *, actor: Actor) -> LoyaltyAccount:
    """Start the participation (nothing happens if it is active). No SMS confirmation is asked."""
    account = _locked(account)
    if account.active:
        return account
    if not account.program.active:
        raise ValidationError({"program": _("The loyalty programme is not active.")})
    account.active, account.activated_at = True, timezone.now()
    account.save(update_fields=["active", "activated_at"])
    history.write([Change(ENTITY_ACCOUNT, account.pk, "active", False, True)], actor)
    events.emit(AccountActivated(account.pk, account.customer_id, _site_code(account)), actor=actor)
    return account


# --- the ledger --------------------------------------------------------------------------------------


def _refresh(account: LoyaltyAccount, state: ledger.LedgerState, actor: Actor) -> None:
    """Cache the replayed balance and the orders sum, and move an automatic level with the sum."""
    account.amount, account.pending_amount = state.balance, state.pending
    account.balance_changes_on = state.next_change_on()
    account.orders_sum = queries.orders_sum(account)
    old_level = account.level_id
    if not account.level_locked:
        account.level = queries.level_for(account.program, account.orders_sum)
    account.save(update_fields=["amount", "pending_amount", "balance_changes_on", "orders_sum", "level"])
    if account.level_id != old_level:
        history.write([Change(ENTITY_ACCOUNT, account.pk, "level", old_level, account.level_id)], actor)
        events.emit(
            LevelChanged(account.pk, account.customer_id, _site_code(account), old_level, account.level_id),
            actor=actor,
        )


def _record(
    account: LoyaltyAccount,
    kind: str,
    amount: Decimal,
    *,
    actor: Actor,
    activation_date: datetime.date | None = None,
    expire_date: datetime.date | None = None,
    order: Order | None = None,
    related: BonusOperation | None = None,
    comment: str = "",
    today: datetime.date | None = None,
) -> BonusOperation:
    """Append one row to a locked account's ledger, re-cache the balance, write the history."""
    now = timezone.now()
    operation = BonusOperation(
        account=account,
        type=kind,
        amount=amount,
        activation_date=activation_date or timezone.localdate(now),
        expire_date=expire_date,
        order=order,
        related=related,
        comment=comment,
        source=actor.source,
        user=actor.user,
        created_at=now,
    )
    operation.save()
    old_amount = account.amount
    _refresh(account, queries.state(account, today), actor)
    record = {
        "id": operation.pk,
        "type": kind,
        "amount": amount,
        "activation_date": operation.activation_date if kind in CREDITS else None,
        "expire_date": expire_date,
        "order": order.pk if order else None,
        "related": related.pk if related else None,
        "comment": comment or None,
    }
    history.write(
        [
            Change(
                ENTITY_ACCOUNT,
                account.pk,
                "bonus_operation",
                None,
                {k: v for k, v in record.items() if v is not None},
            ),
            Change(ENTITY_ACCOUNT, account.pk, "amount", old_amount, account.amount),
        ],
        actor,
    )
    return operation


def _amount(value: Any) -> Decimal:
    return clean_decimal(value, "amount", minimum=Decimal("0.01"))


def _credited(account: LoyaltyAccount, operation: BonusOperation, actor: Actor) -> None:
    events.emit(
        BonusCredited(
            account.pk,
            account.customer_id,
            _site_code(account),
            operation.pk,
            operation.type,
            str(operation.amount),
            operation.activation_date.isoformat(),
            operation.expire_date.isoformat() if operation.expire_date else None,
            operation.order_id,
        ),
        actor=actor,
    )


@transaction.atomic
def credit(
    account: LoyaltyAccount,
    amount: Any,
    *,
    actor: Actor,
    activation_date: datetime.date | None = None,
    expire_date: datetime.date | None = None,
    comment: str = "",
) -> BonusOperation:
    """Credit bonuses by hand: spendable from `activation_date` (today), until `expire_date` (the
    programme's lifetime, or never)."""
    amount = _amount(amount)
    comment = clean_text(comment, "comment", 1000)
    account = _locked(account)
    today = timezone.localdate()
    activation = activation_date or today
    if expire_date is None and account.program.expiry_days:
        # The programme's lifetime counts from when the bonuses can first be spent (back-dated
        # credits live as long as new ones).
        expire_date = max(activation, today) + datetime.timedelta(days=account.program.expiry_days)
    if expire_date is not None and expire_date <= max(activation, today):
        raise ValidationError({"expire_date": _("Must be later than the activation date and today.")})
    operation = _record(
        account,
        OperationType.CREDIT_MANUAL,
        amount,
        actor=actor,
        activation_date=activation,
        expire_date=expire_date,
        comment=comment,
    )
    _credited(account, operation, actor)
    return operation


@transaction.atomic
def charge(account: LoyaltyAccount, amount: Any, *, actor: Actor, comment: str = "") -> BonusOperation:
    """Take bonuses by hand. Never below zero: more than the spendable balance is refused."""
    amount = _amount(amount)
    comment = clean_text(comment, "comment", 1000)
    account = _locked(account)
    _check_balance(account, amount)
    operation = _record(account, OperationType.CHARGE_MANUAL, -amount, actor=actor, comment=comment)
    _charged(account, operation, actor)
    return operation


def _check_balance(account: LoyaltyAccount, amount: Decimal) -> None:
    available = queries.state(account).balance
    if amount > available:
        raise ValidationError(
            {
                "amount": _("Not enough bonuses: %(available)s available.")
                % {"available": max(available, ZERO)}
            }
        )


def _charged(account: LoyaltyAccount, operation: BonusOperation, actor: Actor) -> None:
    events.emit(
        BonusCharged(
            account.pk,
            account.customer_id,
            _site_code(account),
            operation.pk,
            operation.type,
            str(-operation.amount),
            operation.order_id,
        ),
        actor=actor,
    )


def _cancel(account: LoyaltyAccount, operation: BonusOperation, actor: Actor) -> BonusOperation:
    """Undo a charge (its bonuses go back to the lots they came from) or a credit (what is left of it)."""
    if operation.type in CHARGES:
        kind, amount = OperationType.CANCEL_OF_CHARGE, -operation.amount
    else:
        lot = queries.state(account).lots.get(operation.pk)
        kind, amount = OperationType.CANCEL_OF_CREDIT, -(lot.remaining if lot else ZERO)
    cancel = _record(account, kind, amount, actor=actor, order=operation.order, related=operation)
    events.emit(
        BonusCancelled(
            account.pk,
            account.customer_id,
            _site_code(account),
            cancel.pk,
            kind,
            operation.pk,
            str(amount),
            operation.order_id,
        ),
        actor=actor,
    )
    return cancel


def _open_operations(account: LoyaltyAccount, order: Order, kinds: tuple[str, ...]) -> list[BonusOperation]:
    """The order's charges or credits on the account that nothing has cancelled yet."""
    cancels = (OperationType.CANCEL_OF_CHARGE, OperationType.CANCEL_OF_CREDIT)
    return list(
        BonusOperation.objects.filter(account=account, order=order, type__in=kinds)
        .exclude(followers__type__in=cancels)
        .select_related("order")
    )


def _set_order_discount(order: Order, before: Decimal, after: Decimal, *, actor: Actor) -> Order:
    """Move the bonuses part of the order's discount from `before` to `after` (Lavka's orders carry
    one order-level discount; the bonuses an order took are part of it)."""
    if before == after:
        return order
    discount = max(order.discount_manual_amount - before + after, ZERO)
    return order_actions.update_order(
        order, order_actions.OrderData(discount_manual_amount=discount), actor=actor
    )


@transaction.atomic
def apply_to_order(order: Order, bonuses: Any, *, actor: Actor) -> Order:
    """Pay `bonuses` of an order with the customer's bonuses, as a discount on the order.

    Applying again sets the amount (the earlier charge is cancelled first), so a client that repeats
    the call does not charge twice; 0 takes the bonuses off the order.
    """
    bonuses = clean_decimal(bonuses, "bonuses")
    order = Order.objects.select_related("site", "customer", "status__group").get(pk=order.pk)
    account = queries.account_for_customer(order.customer, order.site)
    if account is None:
        raise ValidationError({"order": _("The order's customer takes no part in a loyalty programme.")})
    account = _locked(account)
    if not account.active or not account.program.active:
        raise ValidationError({"order": _("The customer's loyalty account is not active.")})
    if order.status.group.code in Group.CLOSED:
        raise ValidationError({"order": _("The order is closed.")})
    charges = _open_operations(account, order, (OperationType.CHARGE_FOR_ORDER,))
    charged = -sum((op.amount for op in charges), ZERO)
    if bonuses == charged:
        return order
    for operation in charges:
        _cancel(account, operation, actor)
    if bonuses > 0:
        limit = calculation.max_charge(
            queries.order_payable(order, charged),
            queries.state(account).balance,
            account.program.max_charge_percent,
        )
        if bonuses > limit:
            raise ValidationError(
                {"bonuses": _("At most %(limit)s bonuses can pay for this order.") % {"limit": limit}}
            )
        operation = _record(account, OperationType.CHARGE_FOR_ORDER, -bonuses, actor=actor, order=order)
        _charged(account, operation, actor)
    return _set_order_discount(order, charged, bonuses, actor=actor)


@transaction.atomic
def cancel_order_operations(order: Order, *, actor: Actor) -> Order:
    """Give back the bonuses an order took and take back what it credited (what is left of it), and
    remove the bonuses from the order's discount. Nothing to cancel is not an error."""
    order = Order.objects.select_related("site", "customer").get(pk=order.pk)
    account_ids = sorted(set(BonusOperation.objects.filter(order=order).values_list("account_id", flat=True)))
    charged = ZERO
    for account_id in account_ids:
        account = _locked(LoyaltyAccount(pk=account_id))
        kinds = (OperationType.CHARGE_FOR_ORDER, OperationType.CREDIT_FOR_ORDER)
        for operation in _open_operations(account, order, kinds):
            if operation.type == OperationType.CHARGE_FOR_ORDER:
                charged -= operation.amount
            _cancel(account, operation, actor)
    return _set_order_discount(order, charged, ZERO, actor=actor)


@transaction.atomic
def accrue_for_order(order: Order, *, actor: Actor) -> BonusOperation | None:
    """Credit the bonuses a completed order earns (the level's percent of what it cost without
    delivery). Once per order, whatever happens: the unique constraint on the ledger makes a second
    credit impossible, so a re-delivered event or an order completed twice credits once."""
    order = Order.objects.select_related("site", "customer", "status__group").get(pk=order.pk)
    if order.status.group.code != Group.COMPLETE:
        return None
    account = queries.account_for_customer(order.customer, order.site)
    if account is None:
        return None
    account = _locked(account)
    existing = BonusOperation.objects.filter(order=order, type=OperationType.CREDIT_FOR_ORDER).first()
    if existing is not None:
        return existing
    program = account.program
    level = (
        account.level
        if account.level_locked
        else queries.level_for(program, queries.orders_sum(account, order))
    )
    amount = ZERO
    if account.active and program.active and level is not None:
        amount = calculation.credit_for(order.total_summ - order.delivery_cost, level.percent)
    if amount <= 0:
        _refresh(account, queries.state(account), actor)  # the orders sum and level still move
        return None
    activation = timezone.localdate() + datetime.timedelta(days=program.activation_delay_days)
    expire = activation + datetime.timedelta(days=program.expiry_days) if program.expiry_days else None
    try:
        with transaction.atomic():
            operation = _record(
                account,
                OperationType.CREDIT_FOR_ORDER,
                amount,
                actor=actor,
                activation_date=activation,
                expire_date=expire,
                order=order,
            )
    except IntegrityError:  # credited meanwhile by another worker
        return BonusOperation.objects.filter(order=order, type=OperationType.CREDIT_FOR_ORDER).first()
    _credited(account, operation, actor)
    return operation


@transaction.atomic
def refresh_account(
    account: LoyaltyAccount, *, actor: Actor, today: datetime.date | None = None
) -> LoyaltyAccount:
    """Burn what has expired and re-cache the balance (credits waiting for activation become
    spendable on their day without any row: only the cache moves)."""
    account = _locked(account)
    for lot in queries.state(account, today).expired():
        burn = _record(
            account,
            OperationType.BURN,
            -lot.remaining,
            actor=actor,
            related=BonusOperation.objects.get(pk=lot.operation_id),
            today=today,
        )
        events.emit(
            BonusExpired(
                account.pk,
                account.customer_id,
                _site_code(account),
                burn.pk,
                lot.operation_id,
                str(burn.amount),
            ),
            actor=actor,
        )
    _refresh(account, queries.state(account, today), actor)
    return account


def refresh_stale_accounts(*, today: datetime.date | None = None, limit: int = 500) -> int:
    """Refresh the accounts whose cached balance a date has overtaken; each in its own transaction."""
    today = today or timezone.localdate()
    actor = Actor.system("loyalty")
    ids = list(
        LoyaltyAccount.objects.filter(balance_changes_on__lte=today)
        .order_by("balance_changes_on", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        refresh_account(LoyaltyAccount(pk=pk), actor=actor, today=today)
    return len(ids)
