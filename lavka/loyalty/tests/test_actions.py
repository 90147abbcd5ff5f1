"""Loyalty actions: programmes, accounts, the ledger balance, orders, and accrual exactly once."""

import datetime
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone, translation

from lavka.core import history
from lavka.core.dispatcher import drain, process
from lavka.core.models import HistoryRecord, OutboxEvent, ReceiverDelivery
from lavka.loyalty import actions, queries
from lavka.loyalty.actions import AccountData, LevelData, ProgramData
from lavka.loyalty.models import BonusOperation, LoyaltyAccount
from lavka.loyalty.receivers import accrue
from lavka.loyalty.tests.factories import (
    INTEGRATION,
    SYSTEM,
    complete,
    make_account,
    make_customer,
    make_order,
    make_program,
)
from lavka.orders.actions import change_status

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def program(shop):
    return make_program(shop)


@pytest.fixture
def account(shop, program):
    return make_account(shop)


def fresh(account):
    return LoyaltyAccount.objects.get(pk=account.pk)


def assert_cache_matches_ledger(account):
    account = fresh(account)
    state = queries.state(account)
    assert (account.amount, account.pending_amount) == (state.balance, state.pending)


# --- programmes --------------------------------------------------------------------------------------


def test_a_programme_with_levels_history_and_event(shop, program):
    assert [(lv.name, lv.threshold, lv.percent) for lv in program.levels.all()] == [
        ("Базовый", 0, 5),
        ("Серебряный", 5000, 10),
    ]
    assert program.activated_at is not None
    fields = set(HistoryRecord.objects.filter(entity="loyalty_program").values_list("field", flat=True))
    assert {"id", "name", "sites", "levels", "max_charge_percent"} <= fields
    event = OutboxEvent.objects.get(type="loyalty.program_saved")
    assert event.payload["created"] is True and event.payload["sites"] == ["shop"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"currency": "рубль"}, "currency"),
        ({"max_charge_percent": "101"}, "max_charge_percent"),
        ({"expiry_days": "-1"}, "expiry_days"),
        ({"sites": []}, "sites"),
        ({"levels": []}, "levels"),
        ({"levels": [LevelData("A", 100, 5)]}, "levels"),
        ({"levels": [LevelData("A", 0, 5), LevelData("B", 0, 7)]}, "levels"),
        ({"levels": [LevelData("A", 0, 120)]}, "levels.0.percent"),
        ({"levels": [LevelData("", 0, 1)]}, "levels.0.name"),
    ],
)
def test_programme_errors_name_the_field(shop, change, field):
    with pytest.raises(ValidationError) as err:
        make_program(shop, **change)
    assert field in err.value.message_dict


def test_a_site_takes_part_in_one_programme(shop, program):
    with pytest.raises(ValidationError) as err:
        make_program(shop, name="Вторая")
    assert "sites" in err.value.message_dict


def test_editing_levels_moves_accounts(shop, program, account):
    silver = program.levels.get(name="Серебряный")
    base = program.levels.get(name="Базовый")
    LoyaltyAccount.objects.filter(pk=account.pk).update(orders_sum=D("3000"))
    levels = [LevelData("Базовый", 0, 3, id=base.pk), LevelData("Серебряный", 2500, 8, id=silver.pk)]
    actions.save_program(program, ProgramData(levels=levels), actor=SYSTEM)
    assert fresh(account).level_id == silver.pk
    assert program.levels.get(pk=silver.pk).percent == 8
    actions.save_program(program, ProgramData(levels=[LevelData("Единый", 0, 4)]), actor=SYSTEM)
    assert [lv.name for lv in program.levels.all()] == ["Единый"]
    assert fresh(account).level.name == "Единый"
    changed = OutboxEvent.objects.filter(type="loyalty.program_saved").last()
    assert changed.payload["fields"] == ["levels"] and changed.payload["created"] is False


# --- accounts ----------------------------------------------------------------------------------------


def test_account_starts_inactive_and_is_activated(shop, program):
    customer = make_customer(shop)
    account = actions.create_account(customer, AccountData(phone_number="8 916 000-11-22"), actor=SYSTEM)
    assert (account.active, account.phone_number, account.level.name) == (False, "+79160001122", "Базовый")
    actions.activate_account(account, actor=SYSTEM)
    account = fresh(account)
    assert account.active and account.activated_at
    actions.activate_account(account, actor=SYSTEM)  # again: nothing happens
    assert OutboxEvent.objects.filter(type="loyalty.account_activated").count() == 1
    assert OutboxEvent.objects.filter(type="loyalty.account_created").count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (AccountData(), "phone_number"),
        (AccountData(phone_number="12"), "phone_number"),
        (AccountData(card_number="x" * 65), "card_number"),
        (AccountData(phone_number="+79160001122", custom_fields={"a": {"b": 1}}), "custom_a"),
    ],
)
def test_account_errors_name_the_field(shop, program, data, field):
    with pytest.raises(ValidationError) as err:
        actions.create_account(make_customer(shop), data, actor=SYSTEM)
    assert field in err.value.message_dict
    assert not LoyaltyAccount.objects.exists()


def test_one_account_per_customer_and_card(shop, program, account):
    with pytest.raises(ValidationError) as err:
        actions.create_account(account.customer, AccountData(phone_number="+79160001122"), actor=SYSTEM)
    assert "customer" in err.value.message_dict
    actions.update_account(account, AccountData(card_number="C-1"), actor=SYSTEM)
    other = make_customer(shop, external_id="c-2")
    with pytest.raises(ValidationError) as err:
        actions.create_account(other, AccountData(card_number="C-1"), actor=SYSTEM)
    assert "card_number" in err.value.message_dict


def test_no_account_without_an_active_programme(shop):
    customer = make_customer(shop)
    with pytest.raises(ValidationError) as err:
        actions.create_account(customer, AccountData(phone_number="+79160001122"), actor=SYSTEM)
    assert "site" in err.value.message_dict
    make_program(shop, active=False)
    with pytest.raises(ValidationError) as err:
        actions.create_account(customer, AccountData(phone_number="+79160001122"), actor=SYSTEM)
    assert "site" in err.value.message_dict


def test_a_level_set_by_hand_stays(shop, program, account):
    silver = program.levels.get(name="Серебряный")
    actions.update_account(account, AccountData(level=silver, level_set=True), actor=SYSTEM)
    assert fresh(account).level_id == silver.pk and fresh(account).level_locked
    actions.credit(account, "10", actor=SYSTEM)  # a refresh does not move it
    assert fresh(account).level_id == silver.pk
    actions.update_account(account, AccountData(level=None, level_set=True), actor=SYSTEM)
    assert fresh(account).level.name == "Базовый" and not fresh(account).level_locked
    assert OutboxEvent.objects.filter(type="loyalty.level_changed").count() == 2


# --- the ledger --------------------------------------------------------------------------------------


def test_credit_and_charge_keep_the_cached_balance_equal_to_the_ledger(shop, account):
    actions.credit(account, "100.50", actor=SYSTEM, comment="приветственные")
    actions.charge(account, "40", actor=SYSTEM)
    actions.credit(
        account, "10", actor=SYSTEM, activation_date=timezone.localdate() + datetime.timedelta(days=3)
    )
    account = fresh(account)
    assert (account.amount, account.pending_amount) == (D("60.50"), D("10"))
    assert account.balance_changes_on == timezone.localdate() + datetime.timedelta(days=3)
    assert_cache_matches_ledger(account)
    records = HistoryRecord.objects.filter(entity="loyalty_account", entity_id=account.pk, field="amount")
    assert [r.new_value for r in records] == ["100.50", "60.50"]  # a pending credit leaves the balance
    assert history.verify_chain()[1] is None
    types = [e.type for e in OutboxEvent.objects.filter(type__startswith="loyalty.bonus")]
    assert types == ["loyalty.bonus_credited", "loyalty.bonus_charged", "loyalty.bonus_credited"]


def test_a_charge_below_zero_is_refused_and_names_amount(shop, account):
    actions.credit(account, "50", actor=SYSTEM)
    with pytest.raises(ValidationError) as err:
        actions.charge(account, "50.01", actor=SYSTEM)
    assert list(err.value.message_dict) == ["amount"]
    assert "50" in err.value.message_dict["amount"][0]
    with pytest.raises(ValidationError) as err:
        actions.charge(account, "0", actor=SYSTEM)
    assert list(err.value.message_dict) == ["amount"]
    assert BonusOperation.objects.count() == 1 and fresh(account).amount == D("50")
    actions.charge(account, "50", actor=SYSTEM)
    assert fresh(account).amount == 0


def test_pending_bonuses_cannot_be_spent(shop, account):
    later = timezone.localdate() + datetime.timedelta(days=1)
    actions.credit(account, "50", actor=SYSTEM, activation_date=later)
    with pytest.raises(ValidationError):
        actions.charge(account, "1", actor=SYSTEM)


def test_the_ledger_is_append_only(shop, account):
    operation = actions.credit(account, "5", actor=SYSTEM)
    with pytest.raises(PermissionError):
        operation.save()
    with pytest.raises(PermissionError):
        BonusOperation.objects.update(amount=1)
    with pytest.raises(PermissionError):
        BonusOperation.objects.all().delete()


def test_expired_bonuses_burn(shop, program, account):
    program.expiry_days = 30
    program.save()
    actions.credit(account, "100", actor=SYSTEM)
    actions.charge(account, "30", actor=SYSTEM)
    account = fresh(account)
    assert account.balance_changes_on == timezone.localdate() + datetime.timedelta(days=30)
    later = timezone.localdate() + datetime.timedelta(days=31)
    assert actions.refresh_stale_accounts(today=later) == 1
    burn = BonusOperation.objects.get(type="burn")
    assert burn.amount == D("-70") and burn.related.type == "credit_manual"
    account = fresh(account)
    assert account.amount == 0 and account.balance_changes_on is None
    assert actions.refresh_stale_accounts(today=later) == 0  # nothing left to do
    assert OutboxEvent.objects.filter(type="loyalty.bonus_expired", payload__amount="-70.00").count() == 1


# --- orders ------------------------------------------------------------------------------------------


def test_apply_writes_the_discount_on_the_order_and_cancel_takes_it_off(shop, account):
    actions.credit(account, "1000", actor=SYSTEM)
    order = make_order(shop, account.customer, discount_manual_amount="10")
    assert order.total_summ == D("1190")
    order = actions.apply_to_order(order, "300", actor=SYSTEM)
    assert (order.discount_manual_amount, order.total_summ) == (D("310"), D("890"))
    assert fresh(account).amount == D("700")
    order = actions.apply_to_order(order, "100", actor=SYSTEM)  # sets, does not add
    assert order.total_summ == D("1090") and fresh(account).amount == D("900")
    assert queries.order_bonuses(order).charged == D("100")
    order = actions.cancel_order_operations(order, actor=SYSTEM)
    assert (order.discount_manual_amount, order.total_summ) == (D("10"), D("1190"))
    assert fresh(account).amount == D("1000")
    assert_cache_matches_ledger(account)
    fields = set(
        HistoryRecord.objects.filter(entity="order", entity_id=order.pk).values_list("field", flat=True)
    )
    assert "discount_manual_amount" in fields


def test_apply_is_limited_by_the_share_and_the_balance(shop, account):
    actions.credit(account, "100", actor=SYSTEM)
    order = make_order(shop, account.customer)  # 900 of goods; half may be paid with bonuses
    with pytest.raises(ValidationError) as err:
        actions.apply_to_order(order, "100.01", actor=SYSTEM)
    assert list(err.value.message_dict) == ["bonuses"]
    actions.credit(account, "1000", actor=SYSTEM)
    with pytest.raises(ValidationError) as err:
        actions.apply_to_order(order, "451", actor=SYSTEM)
    assert list(err.value.message_dict) == ["bonuses"]
    assert not BonusOperation.objects.filter(order=order).exists()


def test_apply_needs_an_active_account_and_an_open_order(shop, program):
    inactive = make_account(shop, active=False)
    order = make_order(shop, inactive.customer)
    with pytest.raises(ValidationError) as err:
        actions.apply_to_order(order, "1", actor=SYSTEM)
    assert list(err.value.message_dict) == ["order"]
    actions.activate_account(inactive, actor=SYSTEM)
    actions.credit(inactive, "10", actor=SYSTEM)
    change_status(order, "cancel-other", actor=INTEGRATION)
    with pytest.raises(ValidationError) as err:
        actions.apply_to_order(order, "1", actor=SYSTEM)
    assert err.value.message_dict == {"order": ["The order is closed."]}


# --- accrual -----------------------------------------------------------------------------------------


def test_a_completed_order_earns_the_level_percent(shop, program, account):
    order = make_order(shop, account.customer)  # 900 of goods + 300 delivery
    complete(order)
    drain()
    credit = BonusOperation.objects.get(type="credit_for_order")
    assert (credit.amount, credit.order_id) == (D("45.00"), order.pk)  # 5 % of 900
    account = fresh(account)
    assert account.amount == D("45") and account.orders_sum == D("1200")
    assert OutboxEvent.objects.filter(type="loyalty.bonus_credited", payload__order_id=order.pk).count() == 1


def test_accrual_waits_for_the_activation_delay_and_moves_the_level(shop, program, account):
    program.activation_delay_days = 14
    program.save()
    big = make_order(shop, account.customer, quantity=20)  # 9000 of goods
    complete(big)
    drain()
    account = fresh(account)
    assert (account.amount, account.pending_amount) == (0, D("450"))  # 5 %: the level before the order
    assert account.level.name == "Серебряный" and account.orders_sum == D("9300")
    small = make_order(shop, account.customer)
    complete(small)
    drain()
    assert BonusOperation.objects.get(order=small).amount == D("90")  # 10 % now
    assert OutboxEvent.objects.filter(type="loyalty.level_changed").count() == 1


def test_accrual_happens_once_even_if_the_event_is_delivered_twice(shop, program, account):
    order = make_order(shop, account.customer)
    complete(order)
    event = OutboxEvent.objects.get(type="orders.status_changed", payload__order_id=order.pk)
    accrue(event)
    accrue(event)  # a second delivery of the same event, straight to the receiver
    assert BonusOperation.objects.filter(order=order).count() == 1
    process(event, "worker-a")
    process(event, "worker-b")  # and through the dispatcher, twice
    assert BonusOperation.objects.filter(order=order).count() == 1
    assert ReceiverDelivery.objects.filter(event=event, receiver="loyalty.accrue").count() == 1
    assert fresh(account).amount == D("45")


def test_an_order_completed_twice_is_credited_once(shop, program, account):
    order = make_order(shop, account.customer)
    complete(order)
    change_status(order, "complaint", actor=INTEGRATION)
    complete(order)
    drain()
    assert BonusOperation.objects.filter(order=order, type="credit_for_order").count() == 1
    with pytest.raises(Exception):  # noqa: B017 (the database refuses a second credit for the order)
        BonusOperation.objects.create(
            account=account,
            type="credit_for_order",
            amount=1,
            activation_date=timezone.localdate(),
            order=order,
            source="system",
            created_at=timezone.now(),
        )


def test_no_accrual_without_an_active_account(shop, program):
    inactive = make_account(shop, active=False)
    order = make_order(shop, inactive.customer)
    complete(order)
    drain()
    assert not BonusOperation.objects.exists()
    assert fresh(inactive).orders_sum == D("1200")  # the account still follows the orders sum


def test_bonuses_used_on_an_order_are_not_earned_on(shop, program, account):
    actions.credit(account, "200", actor=SYSTEM)
    order = actions.apply_to_order(make_order(shop, account.customer), "200", actor=SYSTEM)
    complete(order)
    drain()
    assert BonusOperation.objects.get(order=order, type="credit_for_order").amount == D("35")  # 5 % of 700
    order = actions.cancel_order_operations(order, actor=SYSTEM)
    kinds = list(BonusOperation.objects.filter(order=order).values_list("type", "amount"))
    assert kinds == [
        ("charge_for_order", D("-200")),
        ("credit_for_order", D("35")),
        ("cancel_of_charge", D("200")),
        ("cancel_of_credit", D("-35")),
    ]
    assert fresh(account).amount == D("200")
    assert_cache_matches_ledger(account)


def test_waiting_bonuses_become_spendable_on_their_day(shop, program, account):
    day = timezone.localdate() + datetime.timedelta(days=14)
    actions.credit(account, "45", actor=SYSTEM, activation_date=day)
    assert actions.refresh_stale_accounts(today=day - datetime.timedelta(days=1)) == 0
    assert actions.refresh_stale_accounts(today=day) == 1
    account = fresh(account)
    assert (account.amount, account.pending_amount, account.balance_changes_on) == (D("45"), 0, None)
    assert not BonusOperation.objects.filter(type="burn").exists()


def test_a_back_dated_credit_lives_the_programmes_lifetime_from_today(shop, program, account):
    program.expiry_days = 30
    program.save()
    operation = actions.credit(account, "5", actor=SYSTEM, activation_date=datetime.date(2020, 1, 1))
    assert operation.expire_date == timezone.localdate() + datetime.timedelta(days=30)
    assert fresh(account).amount == D("5")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_never_overdraw(shop):
    make_program(shop)
    account = make_account(shop)
    actions.credit(account, "100", actor=SYSTEM)
    outcomes = []

    def charge():
        try:
            actions.charge(LoyaltyAccount(pk=account.pk), "60", actor=SYSTEM)
            outcomes.append("charged")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=charge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["charged", "refused", "refused", "refused"]
    assert fresh(account).amount == D("40")
    assert_cache_matches_ledger(account)
