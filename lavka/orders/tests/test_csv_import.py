"""`lavka import orders FILE.csv`: past orders from a file, through the bulk import, with automation muted."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from lavka import cli
from lavka.analytics.models import OrderFacts
from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.automation.models import RuleRun
from lavka.catalog.models import Offer
from lavka.core import dispatcher
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.integrations.webhooks.actions import create_subscription
from lavka.integrations.webhooks.models import WebhookDelivery
from lavka.orders.actions import ItemData, OrderData, create_order
from lavka.orders.csv_import import ITEMLESS_SKU, FileError, import_orders_csv
from lavka.orders.models import Order
from lavka.tasks.models import Task

MOSCOW = ZoneInfo("Europe/Moscow")
SYSTEM = Actor.system("tests")


def write(tmp_path: Path, text: str, name: str = "orders.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


SAMPLE = """customer_id,order_id,date,amount,items,source
C1,O1,2023-03-01,900.00,PU-100:2:450,yandex
C1,O2,2023-06-15 18:30,1233.33,PU-100:2;CUP-1:1,
C2,O3,2024-01-10T09:00:00+00:00,500,,vk
C3,O4,01.02.2024,"1 234,50",NEW-SKU:1:1000,
"""


def test_a_file_becomes_orders_of_found_and_new_customers_with_their_dates(shop, tmp_path):
    known = create_customer(
        shop.site, CustomerData(first_name="Анна", external_id="C1"), actor=shop.actor(shop.alice)
    )
    report = import_orders_csv(shop.site, write(tmp_path, SAMPLE))

    assert (report.rows, report.imported, report.errors) == (4, 4, [])
    assert (report.customers_created, report.offers_created) == (2, 2)  # NEW-SKU and the itemless one
    orders = {o.external_id: o for o in Order.objects.filter(site=shop.site)}
    assert orders["O1"].created_at == datetime.datetime(2023, 3, 1, 12, tzinfo=MOSCOW)
    assert orders["O2"].created_at == datetime.datetime(2023, 6, 15, 18, 30, tzinfo=MOSCOW)
    assert orders["O3"].created_at == datetime.datetime(2024, 1, 10, 9, tzinfo=datetime.UTC)
    assert orders["O4"].created_at == datetime.datetime(2024, 2, 1, 12, tzinfo=MOSCOW)
    assert {k: o.total_summ for k, o in orders.items()} == {
        "O1": Decimal("900.00"),
        "O2": Decimal("1233.33"),
        "O3": Decimal("500.00"),
        "O4": Decimal("1234.50"),  # 1000 of items + 234.50 recorded as delivery
    }
    assert orders["O4"].delivery_cost == Decimal("234.50")
    assert all(o.status.code == "complete" for o in orders.values())
    assert (orders["O1"].customer_id, orders["O2"].customer_id) == (known.pk, known.pk)
    assert [(i.sku, i.quantity, i.summ) for i in orders["O2"].items.all()] == [
        ("PU-100", Decimal("2.000"), Decimal("900.00")),
        ("CUP-1", Decimal("1.000"), Decimal("333.33")),
    ]
    itemless = orders["O3"].items.get()
    assert (itemless.sku, itemless.summ) == (ITEMLESS_SKU, Decimal("500.00"))
    assert Offer.objects.get(sku="NEW-SKU", product__site=shop.site).price == Decimal("1000.00")

    new = Customer.objects.get(site=shop.site, external_id="C2")
    assert new.created_at == orders["O3"].created_at and new.source == "vk"
    known.refresh_from_db()
    assert (known.orders_count, known.total_summ) == (2, Decimal("2133.33"))
    assert (known.first_order_at, known.last_order_at) == (orders["O1"].created_at, orders["O2"].created_at)
    assert orders["O1"].source == "yandex"


def test_the_same_file_again_creates_nothing(shop, tmp_path):
    path = write(tmp_path, SAMPLE)
    import_orders_csv(shop.site, path)
    counts = (Order.objects.count(), Customer.objects.count(), Offer.objects.count())

    again = import_orders_csv(shop.site, path)

    assert (again.imported, again.already_imported, again.errors) == (0, 4, [])
    assert (again.customers_created, again.offers_created) == (0, 0)
    assert (Order.objects.count(), Customer.objects.count(), Offer.objects.count()) == counts
    assert Customer.objects.get(external_id="C1").orders_count == 2


BAD = """customer_id;order_id;date;amount;items;status;manager
C1;O1;2023-03-01;100;;;
;O2;2023-03-01;100;;;
C1;O3;yesterday;100;;;
C1;O4;2999-01-01;100;;;
C1;O5;2023-03-01;-5;;;
C1;O6;2023-03-01;;;;
C1;O7;2023-03-01;;PU-100:zero;;
C1;O8;2023-03-01;100;;lost;
C1;O1;2023-03-02;100;;;
C1;O9;2023-03-01;100;;send-to-assembling;
C1;O10;2023-03-01;100;;send-to-assembling;nobody
"C1";"O11";"2023-03-01";"100";"";"";""

C2;O12;2023-03-01;100;;delivering;alice
C3;O13;2023-03-01;100;;cancel;
"""


def test_bad_rows_are_named_by_line_and_column_and_the_others_imported(shop, tmp_path):
    report = import_orders_csv(shop.site, write(tmp_path, BAD))

    assert [(e.line, e.field) for e in report.errors] == [
        (3, "customer_id"),
        (4, "date"),
        (5, "date"),
        (6, "amount"),
        (7, "amount"),
        (8, "items"),
        (9, "status"),
        (10, "order_id"),  # O1 again
        (11, "manager"),  # this status needs a responsible manager
        (12, "manager"),  # unknown user
    ]
    assert "line 2" in report.errors[7].message
    assert report.rows == 14 and report.imported == 4 and report.rejected == 10
    assert set(Order.objects.values_list("external_id", flat=True)) == {"O1", "O11", "O12", "O13"}
    assert Order.objects.get(external_id="O12").manager == shop.alice
    assert Order.objects.get(external_id="O13").status.group.code == "cancel"
    assert Customer.objects.get(external_id="C3").orders_count == 0  # a cancelled order does not count


def test_a_quoted_value_over_two_lines_keeps_the_line_numbers(shop, tmp_path):
    text = 'customer_id,order_id,date,amount,first_name\nC1,O1,2023-03-01,10,"Anna\nMaria"\nC1,O2,bad,10,\n'
    report = import_orders_csv(shop.site, write(tmp_path, text))
    assert [(e.line, e.field) for e in report.errors] == [(4, "date")]
    assert Customer.objects.get(external_id="C1").first_name == "Anna\nMaria"


def test_amount_and_items_that_differ_give_a_discount_or_delivery(shop, tmp_path):
    text = (
        "customer_id,order_id,date,amount,items\n"
        "C1,O1,2023-03-01,800,PU-100:2\n"  # 900 of items: a discount of 100
        "C1,O2,2023-03-02,,PU-100:1:400\n"  # no amount: the lines' total
    )
    import_orders_csv(shop.site, write(tmp_path, text))
    first, second = Order.objects.get(external_id="O1"), Order.objects.get(external_id="O2")
    assert (first.total_summ, first.discount_manual_amount, first.delivery_cost) == (
        Decimal("800.00"),
        Decimal("100.00"),
        Decimal("0.00"),
    )
    assert second.total_summ == Decimal("400.00")


def test_a_file_without_the_required_columns_is_refused_whole(shop, tmp_path):
    with pytest.raises(FileError, match="order_id"):
        import_orders_csv(shop.site, write(tmp_path, "customer_id,date,amount\nC1,2023-01-01,5\n"))
    with pytest.raises(FileError, match="cp1251"):
        import_orders_csv(
            shop.site,
            write(tmp_path, "customer_id,order_id,date,amount\nК,1,2023-01-01,5\n", encoding="cp1251"),
        )
    assert not Order.objects.exists()


def rule_and_webhook(shop) -> None:
    """An enabled rule that gives a task for every new order, and a webhook that wants every event."""
    rule = save_rule(
        None,
        RuleData(
            name="Call every new customer",
            trigger="orders.created",
            actions=[("create_task", {"title": "Call about {{ order.number }}", "performer": "supervisor"})],
        ),
        actor=shop.actor(shop.supervisor),
    )
    set_rule_active(rule, True, actor=SYSTEM)
    create_subscription({"name": "Shop sync", "url": "http://127.0.0.1:9/", "all_events": True}, actor=SYSTEM)


def test_an_import_fires_no_rule_and_no_webhook(shop, tmp_path):
    rule_and_webhook(shop)
    events = OutboxEvent.objects.count()

    report = import_orders_csv(shop.site, write(tmp_path, SAMPLE))
    dispatcher.drain()

    assert report.imported == 4
    assert OutboxEvent.objects.count() == events
    assert not Task.objects.exists() and not RuleRun.objects.exists()
    assert not WebhookDelivery.objects.exists()
    # The same rule and webhook do act on an order made at the desk: the silence above is the import's.
    made = create_order(
        shop.site,
        OrderData(new_customer=CustomerData(first_name="Ivan"), items=[ItemData(offer_id=shop.tea.pk)]),
        actor=shop.actor(shop.alice),
    )
    dispatcher.drain()
    assert Task.objects.filter(order=made).count() == 1
    assert WebhookDelivery.objects.filter(event_type="orders.created").exists()


def test_the_command_imports_and_summarises(shop, tmp_path, capsys):
    path = write(tmp_path, SAMPLE)
    assert cli.main(["import", "orders", str(path)]) == 2  # two sites: which one?
    assert "--site" in capsys.readouterr().err

    assert cli.main(["import", "orders", str(path), "--site", "shop"]) == 0
    out = capsys.readouterr().out
    assert "4 rows: 4 orders imported, 0 already there, 0 rejected" in out
    assert "lavka analytics refresh --site shop" in out
    imported = Order.objects.filter(site__code="shop").values_list("id", flat=True)
    assert OrderFacts.objects.filter(order_id__in=imported).count() == len(imported) == 4

    bad = write(tmp_path, "customer_id,order_id,date,amount\nC9,O9,never,1\n", name="bad.csv")
    assert cli.main(["import", "orders", str(bad), "--site", "shop"]) == 1
    assert "error: line 2: date:" in capsys.readouterr().out
    assert cli.main(["import", "orders", str(tmp_path / "missing.csv"), "--site", "shop"]) == 2


def test_the_analytics_refresh_sees_the_imported_orders(shop, tmp_path):
    metrics = pytest.importorskip("lavka.analytics.metrics")
    from lavka.analytics.models import CustomerMetrics

    import_orders_csv(shop.site, write(tmp_path, SAMPLE))
    metrics.refresh_site(shop.site)

    row = CustomerMetrics.objects.get(customer__external_id="C1")
    assert (row.orders_count, row.revenue) == (2, Decimal("2133.33"))
    assert row.first_order_at == datetime.datetime(2023, 3, 1, 12, tzinfo=MOSCOW)
    assert row.last_order_at < timezone.now()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-01", datetime.datetime(2024, 2, 1, 12, tzinfo=MOSCOW)),
        ("01.02.2024 10:15", datetime.datetime(2024, 2, 1, 10, 15, tzinfo=MOSCOW)),
        ("1.2.24", datetime.datetime(2024, 2, 1, 12, tzinfo=MOSCOW)),
        ("2024-02-01T10:15:30Z", datetime.datetime(2024, 2, 1, 10, 15, 30, tzinfo=datetime.UTC)),
        ("2024-02-01 10:15+05:00", datetime.datetime(2024, 2, 1, 5, 15, tzinfo=datetime.UTC)),
    ],
)
def test_dates_in_the_usual_spellings(shop, tmp_path, text, expected):
    report = import_orders_csv(
        shop.site, write(tmp_path, f'customer_id,order_id,date,amount\nC1,O1,"{text}",5\n')
    )
    assert report.errors == []
    assert Order.objects.get(external_id="O1").created_at == expected
