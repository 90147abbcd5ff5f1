"""The bonus ledger replayed: balances, lots and what is due, derived from the operations alone.

No I/O here. A credit is a lot, spendable from its activation date until (not including) its expiry
date. Charges take from the lots spendable on their day, soonest-expiring first; cancelling a charge
gives back exactly what it took; cancelling a credit or burning an expired lot takes what is left of
that lot. Replaying the same rows always gives the same answer, so the balance cached on the account
can be checked against the ledger at any time.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from lavka.core.money import ZERO
from lavka.loyalty.choices import CHARGES, CREDITS, OperationType

NEVER = datetime.date.max


@dataclass
class Lot:
    operation_id: int
    amount: Decimal
    remaining: Decimal
    activation_date: datetime.date
    expire_date: datetime.date | None

    def spendable_on(self, day: datetime.date) -> bool:
        return self.activation_date <= day and (self.expire_date is None or self.expire_date > day)


@dataclass
class LedgerState:
    today: datetime.date
    lots: dict[int, Lot] = field(default_factory=dict)
    # Charges beyond what the lots held (cannot happen through the actions; kept so nothing is lost).
    overdraft: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        spendable = sum((lot.remaining for lot in self.lots.values() if lot.spendable_on(self.today)), ZERO)
        return spendable - self.overdraft

    @property
    def pending(self) -> Decimal:
        return sum((lot.remaining for lot in self.lots.values() if lot.activation_date > self.today), ZERO)

    def expired(self) -> list[Lot]:
        """Lots past their expiry with something left: what a burn must take."""
        return [
            lot
            for lot in self.lots.values()
            if lot.expire_date is not None and lot.expire_date <= self.today and lot.remaining > 0
        ]

    def next_change_on(self) -> datetime.date | None:
        """The first day the balance changes by itself (a lot becomes spendable or expires)."""
        days = []
        for lot in self.lots.values():
            if lot.remaining <= 0:
                continue
            if lot.activation_date > self.today:
                days.append(lot.activation_date)
            if lot.expire_date is not None:
                days.append(lot.expire_date)
        return min(days, default=None)

    def waiting_activation(self) -> dict[datetime.date, Decimal]:
        return _by_day(
            (lot.activation_date, lot.remaining)
            for lot in self.lots.values()
            if lot.remaining > 0 and lot.activation_date > self.today
        )

    def burning(self, until: datetime.date) -> dict[datetime.date, Decimal]:
        """What expires from tomorrow up to `until`, by expiry date, among spendable lots."""
        return _by_day(
            (lot.expire_date, lot.remaining)
            for lot in self.lots.values()
            if lot.remaining > 0
            and lot.expire_date is not None
            and lot.spendable_on(self.today)
            and lot.expire_date <= until
        )


def _by_day(pairs: Iterable[tuple[Any, Decimal]]) -> dict[datetime.date, Decimal]:
    out: dict[datetime.date, Decimal] = {}
    for day, amount in pairs:
        out[day] = out.get(day, ZERO) + amount
    return dict(sorted(out.items()))


def operation_day(operation: Any) -> datetime.date:
    return timezone.localdate(operation.created_at)


def replay(operations: Iterable[Any], today: datetime.date) -> LedgerState:
    """The state after `operations` (any objects with the BonusOperation fields), as seen on `today`."""
    state = LedgerState(today=today)
    taken: dict[int, list[tuple[int | None, Decimal]]] = {}  # charge id → [(lot id or None, amount)]
    for op in sorted(operations, key=lambda o: (o.created_at, o.id)):
        if op.type in CREDITS:
            state.lots[op.id] = Lot(op.id, op.amount, op.amount, op.activation_date, op.expire_date)
        elif op.type in CHARGES:
            taken[op.id] = _take(state, -op.amount, operation_day(op))
        elif op.type == OperationType.CANCEL_OF_CHARGE:
            for lot_id, amount in taken.pop(op.related_id, []):
                if lot_id is None:
                    state.overdraft -= amount
                else:
                    state.lots[lot_id].remaining += amount
        elif op.type in (OperationType.CANCEL_OF_CREDIT, OperationType.BURN):
            lot = state.lots.get(op.related_id)
            if lot is not None:
                lot.remaining += op.amount  # the amount is negative
    return state


def _take(state: LedgerState, amount: Decimal, day: datetime.date) -> list[tuple[int | None, Decimal]]:
    usable = sorted(
        (lot for lot in state.lots.values() if lot.remaining > 0 and lot.spendable_on(day)),
        key=lambda lot: (lot.expire_date or NEVER, lot.activation_date, lot.operation_id),
    )
    parts: list[tuple[int | None, Decimal]] = []
    for lot in usable:
        if amount <= 0:
            break
        part = min(lot.remaining, amount)
        lot.remaining -= part
        amount -= part
        parts.append((lot.operation_id, part))
    if amount > 0:
        state.overdraft += amount
        parts.append((None, amount))
    return parts


def charged_for_order(operations: Iterable[Any]) -> Decimal:
    """Bonuses an order's operations took and did not give back."""
    kinds = (OperationType.CHARGE_FOR_ORDER, OperationType.CANCEL_OF_CHARGE)
    return -sum((op.amount for op in operations if op.type in kinds), ZERO)
