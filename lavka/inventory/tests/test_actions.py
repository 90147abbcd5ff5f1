"""The stock ledger: levels change only through movements, which are never rewritten."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.inventory.actions import StockCount, save_warehouse, set_stock
from lavka.inventory.models import StockLevel, StockMovement, Warehouse

pytestmark = pytest.mark.django_db


@pytest.fixture
def main():
    return Warehouse.objects.get(code="main")  # every shop starts with it


def test_counts_become_movements(shop, main):
    actor = Actor.for_user(shop.admin)
    set_stock(shop.tea, [StockCount(main, Decimal(10))], actor=actor)
    set_stock(shop.tea, [StockCount(main, Decimal(6))], actor=actor)
    unchanged = set_stock(shop.tea, [StockCount(main, Decimal(6))], actor=actor)
    assert unchanged == []
    moves = list(StockMovement.objects.values_list("delta", "quantity_after", "source", "actor_name"))
    assert moves == [(10, 10, "user", "admin"), (-4, 6, "user", "admin")]
    assert StockLevel.objects.get(offer=shop.tea, warehouse=main).quantity == 6
    event = OutboxEvent.objects.filter(type="inventory.stock_changed").last()
    assert event.payload["changes"] == [{"warehouse": "main", "old": "10.000", "new": "6.000"}]


def test_fractional_stock_only_where_the_warehouse_allows_it(shop, main):
    actor = Actor.system("tests")
    with pytest.raises(ValidationError):
        set_stock(shop.tea, [StockCount(main, Decimal("1.5"))], actor=actor)
    with pytest.raises(ValidationError):
        set_stock(shop.tea, [StockCount(main, Decimal(-1))], actor=actor)
    loose = save_warehouse(
        None, {"code": "loose", "name": "Развес", "inventory_type": "fractional"}, actor=actor
    )
    set_stock(shop.tea, [StockCount(loose, Decimal("1.5"))], actor=actor)
    assert StockLevel.objects.get(warehouse=loose).quantity == Decimal("1.5")


def test_movements_are_append_only(shop, main):
    set_stock(shop.tea, [StockCount(main, Decimal(3))], actor=Actor.system("tests"))
    move = StockMovement.objects.get()
    with pytest.raises(PermissionError):
        move.save()
    with pytest.raises(PermissionError):
        StockMovement.objects.update(delta=0)
    with pytest.raises(PermissionError):
        move.delete()
