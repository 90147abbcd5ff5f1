"""The ledger replay and the bonus arithmetic, without a database."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

from django.utils import timezone

from lavka.loyalty import calculation, ledger

D = Decimal
TODAY = datetime.date(2030, 6, 15)
_ids = iter(range(1, 10_000))


def op(kind, amount, *, day=TODAY, activation=None, expire=None, related=None):
    moment = timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))
    return SimpleNamespace(
        id=next(_ids),
        type=kind,
        amount=D(amount),
        activation_date=activation or day,
        expire_date=expire,
        related_id=related.id if related else None,
        created_at=moment,
    )


def days(n):
    return TODAY + datetime.timedelta(days=n)


def test_balance_is_the_sum_of_spendable_lots():
    ops = [
        op("credit_manual", "100"),
        op("credit_for_order", "40", activation=days(3)),
        op("charge_manual", "-30"),
    ]
    state = ledger.replay(ops, TODAY)
    assert (state.balance, state.pending) == (D("70"), D("40"))
    assert state.next_change_on() == days(3)
    assert ledger.replay(ops, days(3)).balance == D("110")


def test_charges_take_the_soonest_expiring_lot_first_and_a_cancel_gives_back_the_same():
    late = op("credit_manual", "100", day=days(-10), expire=days(30))
    soon = op("credit_manual", "50", day=days(-10), expire=days(5))
    charge = op("charge_manual", "-60", day=days(-1))
    state = ledger.replay([late, soon, charge], TODAY)
    assert state.lots[soon.id].remaining == 0 and state.lots[late.id].remaining == D("90")
    cancel = op("cancel_of_charge", "60", related=charge)
    state = ledger.replay([late, soon, charge, cancel], TODAY)
    assert state.lots[soon.id].remaining == D("50") and state.balance == D("150")


def test_expired_lots_leave_the_balance_and_wait_for_a_burn():
    lot = op("credit_manual", "80", day=days(-20), expire=days(-1))
    spent = op("charge_manual", "-30", day=days(-5))
    state = ledger.replay([lot, spent], TODAY)
    assert state.balance == 0
    assert [(x.operation_id, x.remaining) for x in state.expired()] == [(lot.id, D("50"))]
    burnt = ledger.replay([lot, spent, op("burn", "-50", related=lot)], TODAY)
    assert burnt.expired() == [] and burnt.balance == 0 and burnt.next_change_on() is None


def test_a_charge_cannot_use_a_lot_that_was_not_yet_spendable_on_its_day():
    future = op("credit_manual", "100", activation=days(2))
    charge = op("charge_manual", "-10")
    state = ledger.replay([future, charge], days(5))
    assert state.overdraft == D("10") and state.balance == D("90")


def test_cancelling_a_credit_takes_what_is_left_of_it():
    lot = op("credit_for_order", "45")
    state = ledger.replay(
        [lot, op("charge_manual", "-20"), op("cancel_of_credit", "-25", related=lot)], TODAY
    )
    assert state.balance == 0 and state.lots[lot.id].remaining == 0


def test_waiting_and_burning_by_day():
    ops = [
        op("credit_manual", "10", activation=days(2)),
        op("credit_manual", "5", activation=days(2)),
        op("credit_manual", "7", expire=days(10)),
        op("credit_manual", "8", expire=days(40)),
    ]
    state = ledger.replay(ops, TODAY)
    assert state.waiting_activation() == {days(2): D("15")}
    assert state.burning(days(30)) == {days(10): D("7")}


def test_spread_sums_exactly_and_never_exceeds_a_line():
    assert calculation.spread(D("100"), [D("800"), D("333.33")]) == [D("70.59"), D("29.41")]
    assert calculation.spread(D("0.03"), [D("1"), D("1"), D("1")]) == [D("0.01"), D("0.01"), D("0.01")]
    assert calculation.spread(D("5"), [D("2"), D("1")]) == [D("2"), D("1")]  # capped at the lines' total
    assert calculation.spread(D("5"), [D("0")]) == [D("0")]


def test_max_charge_is_the_smallest_of_share_balance_and_amount():
    assert calculation.max_charge(D("1133.33"), D("1000"), D("50")) == D("566.66")
    assert calculation.max_charge(D("1000"), D("12.5"), D("50")) == D("12.5")
    assert calculation.max_charge(D("1000"), D("-3"), D("50")) == 0
    assert calculation.credit_for(D("700"), D("5")) == D("35.00")
