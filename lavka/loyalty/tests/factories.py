"""Shared set-up for loyalty tests (also used by the API tests)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lavka.core.actor import Actor, Source
from lavka.core.testing import Shop
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.loyalty import actions
from lavka.loyalty.actions import AccountData, LevelData, ProgramData
from lavka.loyalty.models import LoyaltyAccount, LoyaltyProgram
from lavka.orders.actions import ItemData, OrderData, change_status, create_order
from lavka.orders.models import Order

SYSTEM = Actor.system("tests")
# An integration reports statuses without the UI's transition rules (orders.actions.change_status).
INTEGRATION = Actor(Source.API, ref="0", name="tests")


def make_program(shop: Shop, **fields: Any) -> LoyaltyProgram:
    values: dict[str, Any] = {
        "name": "Чайные бонусы",
        "sites": [shop.site],
        "active": True,
        "currency": "RUB",
        "max_charge_percent": Decimal("50"),
        "levels": [LevelData("Базовый", 0, 5), LevelData("Серебряный", 5000, 10)],
    }
    values.update(fields)
    return actions.save_program(None, ProgramData(**values), actor=SYSTEM)


def make_customer(shop: Shop, **fields: Any) -> Customer:
    values: dict[str, Any] = {"first_name": "Ольга", "phones": ["+79160001122"], "external_id": "c-1"}
    values.update(fields)
    return create_customer(shop.site, CustomerData(**values), actor=SYSTEM)


def make_account(
    shop: Shop, customer: Customer | None = None, *, active: bool = True, **fields: Any
) -> LoyaltyAccount:
    customer = customer or make_customer(shop)
    data = AccountData(**{"phone_number": "+79160001122", **fields})
    return actions.create_account(customer, data, actor=SYSTEM, activate=active)


def make_order(shop: Shop, customer: Customer, *, quantity: int = 2, **fields: Any) -> Order:
    """Tea at 450.00 × `quantity`, delivery 300 unless given."""
    data = OrderData(
        customer=customer,
        items=[ItemData(offer_id=shop.tea.pk, quantity=quantity)],
        delivery_cost=fields.pop("delivery_cost", "300"),
        **fields,
    )
    return create_order(shop.site, data, actor=SYSTEM)


def complete(order: Order) -> Order:
    return change_status(order, "complete", actor=INTEGRATION)
