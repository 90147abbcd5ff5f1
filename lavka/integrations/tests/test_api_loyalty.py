"""API v5 loyalty (§2.11) and `orders/loyalty/*` (§2.2.8): every endpoint, the shapes the WooCommerce
and Bitrix modules read, errors naming the field, scopes and site access."""

import json
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import retailcrm
from django.test import Client

from lavka.core.dispatcher import drain
from lavka.core.models import OutboxEvent
from lavka.loyalty import actions
from lavka.loyalty.models import BonusOperation, LoyaltyAccount
from lavka.loyalty.tests.factories import (
    SYSTEM,
    complete,
    make_account,
    make_customer,
    make_order,
    make_program,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    """The actions' messages follow the installation's language (Russian by default)."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def program(shop):
    return make_program(shop)


@pytest.fixture
def customer(shop):
    return make_customer(shop)


@pytest.fixture
def account(shop, program, customer):
    account = make_account(shop, customer)
    actions.credit(account, "1000", actor=SYSTEM)
    return account


# --- programmes --------------------------------------------------------------------------------------


def test_loyalties_list_and_get(api, program):
    body = api.get("loyalty/loyalties", {"filter[active]": 1, "filter[blocked]": 0})
    assert body.status == 200 and body["pagination"]["totalCount"] == 1
    [loyalty] = body["loyalties"]
    assert loyalty["id"] == program.pk and loyalty["name"] == "Чайные бонусы"
    assert loyalty["active"] is True and loyalty["blocked"] is False and loyalty["currency"] == "RUB"
    assert loyalty["confirmSmsCharge"] is False and loyalty["confirmSmsRegistration"] is False
    assert [lv["privilegeSize"] for lv in loyalty["levels"]] == [5, 10]
    assert loyalty["sites"] == ["shop"] and "createdAt" in loyalty and "activatedAt" in loyalty
    assert api.get("loyalty/loyalties", {"filter[active]": 0})["loyalties"] == []
    assert api.get("loyalty/loyalties", {"filter[sites][]": "other"})["loyalties"] == []
    got = api.get(f"loyalty/loyalties/{program.pk}")
    assert got.status == 200 and got["loyalty"]["id"] == program.pk and got["requiredFields"] == []
    assert api.get("loyalty/loyalties/999999").body == {"success": False, "errorMsg": "Not found"}
    assert api.get("loyalty/loyalties/abc").status == 404


def test_a_key_of_another_site_does_not_see_the_programme(make_api, program):
    other = make_api("other", sites=["other"])
    assert other.get("loyalty/loyalties")["loyalties"] == []
    denied = other.get(f"loyalty/loyalties/{program.pk}")
    assert denied.status == 403 and denied["errorMsg"] == "Access denied."


# --- accounts ----------------------------------------------------------------------------------------


def test_create_activate_get_the_woocommerce_way(api, shop, program, customer):
    """Woo: `createLoyaltyAccount(['phoneNumber', 'customer' => ['externalId']], $site)`, then the
    account list by customer id, then `activateLoyaltyAccount($id)`."""
    created = api.post(
        "loyalty/account/create",
        {
            "site": "shop",
            "loyaltyAccount": {"phoneNumber": "8 (916) 000-11-22", "customer": {"externalId": "c-1"}},
        },
    )
    assert created.status == 201, created.body
    assert created["site"] == "shop" and created["warnings"] == []
    account = created["loyaltyAccount"]
    assert account["active"] is False and account["status"] == "not_confirmed"
    assert account["phoneNumber"] == "+79160001122" and account["amount"] == 0
    assert account["customer"] == {
        "id": customer.pk,
        "externalId": "c-1",
        "site": "shop",
        "firstName": "Ольга",
    }
    assert account["level"] == {
        "type": "bonus_percent",
        "id": program.levels.first().pk,
        "name": "Базовый",
        "privilegeSize": 5,
        "privilegeSizePromo": 5,
        "sum": 0,
    }
    assert account["ordersSum"] == 0 and account["nextLevelSum"] == 5000
    assert account["loyalty"] == {"id": program.pk, "name": "Чайные бонусы", "currency": "RUB"}
    listed = api.get("loyalty/accounts", {"filter[customerId]": customer.pk})["loyaltyAccounts"]
    assert [a["id"] for a in listed] == [account["id"]]

    activated = api.post(f"loyalty/account/{account['id']}/activate")
    assert activated.status == 200 and "verification" not in activated.body
    assert (
        activated["loyaltyAccount"]["active"] is True and activated["loyaltyAccount"]["status"] == "activated"
    )
    assert activated["loyaltyAccount"]["activatedAt"]
    got = api.get(f"loyalty/account/{account['id']}")["loyaltyAccount"]
    assert got["active"] is True and got["customFields"] == []
    assert OutboxEvent.objects.filter(type="loyalty.account_activated").count() == 1


def test_create_errors_name_the_field(api, program, customer):
    def create(entity, **extra):
        return api.post("loyalty/account/create", {"site": "shop", "loyaltyAccount": entity, **extra})

    assert (
        api.post("loyalty/account/create", {"site": "shop"})["errorMsg"]
        == "Parameter 'loyaltyAccount' is missing"
    )
    no_customer = create({"phoneNumber": "+79160001122"})
    assert no_customer.status == 400 and no_customer["errors"] == {
        "loyaltyAccount.customer": "This value should not be blank."
    }
    unknown = create({"phoneNumber": "+79160001122", "customer": {"externalId": "nope"}})
    assert unknown["errors"] == {
        "loyaltyAccount.customer.externalId": "Customer with externalId=nope not found."
    }
    bad_phone = create({"phoneNumber": "12", "customer": {"id": customer.pk}})
    assert bad_phone.status == 400 and bad_phone["errorMsg"] == "Errors in the entity format"
    assert list(bad_phone["errors"]) == ["loyaltyAccount.phoneNumber"]
    assert create({"phoneNumber": "+79160001122", "customer": {"id": customer.pk}}).status == 201
    again = create({"cardNumber": "7777", "customer": {"id": customer.pk}})
    # The words and key the Bitrix module looks for (`proveUserInLpExists`).
    assert again.status == 400 and again["errors"] == {
        "loyalty": "The customer is in this loyalty program already"
    }
    assert LoyaltyAccount.objects.count() == 1


def test_no_programme_for_the_site(api, shop):
    foreign = make_customer(shop, external_id="c-2")
    answer = api.post(
        "loyalty/account/create",
        {"site": "shop", "loyaltyAccount": {"phoneNumber": "+79160001122", "customer": {"id": foreign.pk}}},
    )
    assert answer.status == 400 and answer["errors"] == {
        "loyaltyAccount.customer": "The site has no loyalty programme."
    }


def test_edit_card_level_and_custom_fields(api, program, account):
    silver = program.levels.get(name="Серебряный")
    edit = {"cardNumber": "4444 5555", "loyaltyLevelId": silver.pk, "customFields": {"pet": "кот"}}
    answer = api.post(f"loyalty/account/{account.pk}/edit", {"loyaltyAccount": edit})
    assert answer.status == 200 and answer["warnings"] == []
    got = answer["loyaltyAccount"]
    assert got["cardNumber"] == "4444 5555" and got["level"]["id"] == silver.pk
    assert got["customFields"] == {"pet": "кот"} and "nextLevelSum" not in got
    unknown = api.post(f"loyalty/account/{account.pk}/edit", {"loyaltyAccount": {"loyaltyLevelId": 999999}})
    assert unknown.status == 400 and unknown["errors"] == {
        "loyaltyAccount.loyaltyLevelId": "Loyalty level with id=999999 not found."
    }
    assert api.post("loyalty/account/999999/edit", {"loyaltyAccount": {}}).status == 404


def test_account_filters(api, shop, program, account):
    other = make_account(
        shop,
        make_customer(shop, external_id="c-2", phones=["+79261112233"]),
        active=False,
        phone_number="+79261112233",
        card_number="CARD-2",
    )

    def ids(**flt):
        body = api.get("loyalty/accounts", {f"filter[{k}]": v for k, v in flt.items()})
        assert body.status == 200, body.body
        return [a["id"] for a in body["loyaltyAccounts"]]

    assert ids() == [other.pk, account.pk]
    assert ids(status="activated") == [account.pk]
    assert ids(status="not_confirmed") == [other.pk]
    assert ids(customerExternalId="c-2") == [other.pk]
    assert ids(phoneNumber="8 926 111-22-33") == [other.pk]
    assert ids(cardNumber="CARD-2") == [other.pk]
    assert ids(minAmount=500) == [account.pk]
    assert ids(maxAmount=0) == [other.pk]
    assert ids(id=account.pk) == [account.pk]
    assert ids(loyalties=[program.pk]) == [other.pk, account.pk]
    assert api.get("loyalty/accounts", {"filter[sites][]": "other"})["loyaltyAccounts"] == []
    bad = api.get("loyalty/accounts", {"filter[minAmount]": "lots"})
    assert bad.status == 400 and bad["errors"] == {"children[minAmount]": "This value should be a number."}
    assert api.get("loyalty/accounts", {"filter[status]": "asleep"}).status == 400


# --- bonuses -----------------------------------------------------------------------------------------


def test_credit_charge_and_operations(api, account):
    credit = api.post(
        f"loyalty/account/{account.pk}/bonus/credit",
        {"amount": "100", "activationDate": "2020-01-01", "expireDate": "2199-01-01", "comment": "за отзыв"},
    )
    assert credit.status == 200, credit.body
    assert credit["loyaltyBonus"] == {
        "amount": 100,
        "activationDate": "2020-01-01",
        "expireDate": "2199-01-01",
    }
    charge = api.post(f"loyalty/account/{account.pk}/bonus/charge", {"amount": "250.5", "comment": "подарок"})
    assert charge.status == 200 and charge.body == {"success": True}
    assert api.get(f"loyalty/account/{account.pk}")["loyaltyAccount"]["amount"] == 849.5
    operations = api.get(f"loyalty/account/{account.pk}/bonus/operations")
    assert operations["pagination"]["totalCount"] == 3
    newest = operations["bonusOperations"][0]
    assert newest["type"] == "charge_manual" and newest["amount"] == -250.5 and newest["comment"] == "подарок"
    assert operations["bonusOperations"][1]["bonus"] == {
        "activationDate": "2020-01-01",
        "expireDate": "2199-01-01",
    }
    since = api.get(f"loyalty/account/{account.pk}/bonus/operations", {"filter[createdAtFrom]": "2199-01-01"})
    assert since["bonusOperations"] == []


def test_charge_beyond_the_balance_is_refused_and_names_amount(api, account):
    too_much = api.post(f"loyalty/account/{account.pk}/bonus/charge", {"amount": "1000.01"})
    assert too_much.status == 400 and too_much["errorMsg"] == "Validation error"
    assert list(too_much["errors"]) == ["amount"] and "1000" in too_much["errors"]["amount"]
    missing = api.post(f"loyalty/account/{account.pk}/bonus/charge", {})
    assert missing.status == 400 and missing["errorMsg"] == "Parameter 'amount' is missing"
    negative = api.post(f"loyalty/account/{account.pk}/bonus/charge", {"amount": "-5"})
    assert negative.status == 400 and list(negative["errors"]) == ["amount"]
    word = api.post(f"loyalty/account/{account.pk}/bonus/credit", {"amount": "many"})
    assert word["errors"] == {"amount": "This value should be a number."}
    bad_expiry = api.post(
        f"loyalty/account/{account.pk}/bonus/credit", {"amount": "5", "expireDate": "2001-01-01"}
    )
    assert bad_expiry.status == 400 and list(bad_expiry["errors"]) == ["expireDate"]
    assert BonusOperation.objects.filter(account=account).count() == 1  # only the fixture's credit
    assert api.post("loyalty/account/999999/bonus/charge", {"amount": "1"}).status == 404


def test_python_client_none_arguments(api, account):
    """`retailcrm==5.3.0` sends unset optional arguments as the text "None"."""
    credit = api.post(
        f"loyalty/account/{account.pk}/bonus/credit",
        {"amount": "7", "activationDate": "None", "expireDate": "None", "comment": "None"},
    )
    assert credit.status == 200, credit.body
    assert "expireDate" not in credit["loyaltyBonus"]


def test_bonus_details(api, shop, account):
    program = account.program
    program.activation_delay_days = 14
    program.save()
    order = make_order(shop, account.customer)
    complete(order)
    drain()
    actions.credit(account, "30", actor=SYSTEM, expire_date=shop_today(days=10))
    waiting = api.get(f"loyalty/account/{account.pk}/bonus/waiting_activation/details")
    assert waiting.status == 200
    assert waiting["statistic"] == {"totalAmount": 45}  # 5 % of 900
    assert waiting["bonuses"] == [{"date": shop_today(days=14).isoformat(), "amount": 45}]
    burning = api.get(f"loyalty/account/{account.pk}/bonus/burn_soon/details")
    assert burning["bonuses"] == [{"date": shop_today(days=10).isoformat(), "amount": 30}]
    later = api.get(f"loyalty/account/{account.pk}/bonus/burn_soon/details", {"filter[date]": "2000-01-01"})
    assert later["bonuses"] == [] and later["statistic"] == {"totalAmount": 0}
    assert api.get(f"loyalty/account/{account.pk}/bonus/whenever/details").status == 400


def shop_today(days=0):
    import datetime

    from django.utils import timezone

    return timezone.localdate() + datetime.timedelta(days=days)


def test_all_operations_by_cursor(api, shop, account):
    other = make_account(shop, make_customer(shop, external_id="c-2"))
    for _ in range(3):
        actions.credit(other, "10", actor=SYSTEM)
    first = api.get("loyalty/bonus/operations", {"limit": 20})
    assert first.status == 200 and len(first["bonusOperations"]) == 4 and first["pagination"] == {}
    op = first["bonusOperations"][0]
    assert op["loyaltyAccount"] == {"id": account.pk} and op["loyalty"] == {"id": account.program_id}
    # Pages of 20 are the smallest the API gives; walk five operations two pages at a time by hand.
    for _ in range(17):
        actions.credit(other, "1", actor=SYSTEM)
    page = api.get("loyalty/bonus/operations", {"limit": 20})
    cursor = page["pagination"]["nextCursor"]
    rest = api.get("loyalty/bonus/operations", {"limit": 20, "cursor": cursor})
    assert len(page["bonusOperations"]) == 20 and len(rest["bonusOperations"]) == 1
    assert rest["pagination"] == {}
    ids = [o["id"] for o in page["bonusOperations"] + rest["bonusOperations"]]
    assert ids == sorted(ids) and len(set(ids)) == 21
    assert api.get("loyalty/bonus/operations", {"filter[loyalties][]": 999999})["bonusOperations"] == []
    assert api.get("loyalty/bonus/operations", {"cursor": "###"}).status == 400


# --- calculate, apply, cancel ------------------------------------------------------------------------


def test_calculate_a_cart_the_woocommerce_way(api, shop, account):
    order = {
        "site": "shop",
        "customer": {"externalId": "c-1"},
        "privilegeType": "loyalty_level",
        "items": [
            {
                "offer": {"externalId": "tea-1"},
                "quantity": 2,
                "initialPrice": 450,
                "discountManualAmount": 50,
            },
            {"offer": {"id": shop.cup.pk}, "quantity": 1},
        ],
    }
    body = api.post("loyalty/calculate", {"site": "shop", "order": order, "bonuses": 0})
    assert body.status == 200, body.body
    level, none = body["calculations"]
    assert level["privilegeType"] == "loyalty_level" and level["maximum"] is True
    # Lines: 400 × 2 + 333.33 = 1133.33; half may be paid with bonuses; 5 % comes back.
    assert level["maxChargeBonuses"] == 566.66 and level["creditBonuses"] == 56.67
    assert level["discount"] == 100 and none["maximum"] is False
    assert body["loyalty"] == {"name": "Чайные бонусы", "chargeRate": 1}
    assert body["order"]["privilegeType"] == "loyalty_level" and body["order"]["bonusesCreditTotal"] == 56.67
    assert body["order"]["loyaltyAccount"] == {"id": account.pk, "amount": 1000}
    assert body["order"]["items"][1]["initialPrice"] == 333.33  # the offer's price

    charged = api.post("loyalty/calculate", {"site": "shop", "order": order, "bonuses": 100})
    items = charged["order"]["items"]
    assert [i["bonusesChargeTotal"] for i in items] == [70.59, 29.41]
    assert items[0]["discounts"] == [{"type": "bonus_charge", "amount": 70.59}]
    assert charged["order"]["bonusesChargeTotal"] == 100 and charged["order"]["totalSumm"] == 1033.33
    assert charged["order"]["bonusesCreditTotal"] == 51.67  # 5 % of what is paid in money

    too_much = api.post("loyalty/calculate", {"site": "shop", "order": order, "bonuses": 567})
    assert too_much.status == 400 and list(too_much["errors"]) == ["bonuses"]
    bad_line = api.post("loyalty/calculate", {"site": "shop", "order": {**order, "items": [{"quantity": 0}]}})
    assert bad_line.status == 400 and bad_line["errors"] == {
        "order.items[0].quantity": "This value should be greater than 0."
    }


def test_calculate_for_a_customer_without_an_account(api, shop, program):
    make_customer(shop, external_id="c-9")
    order = {"customer": {"externalId": "c-9"}, "items": [{"initialPrice": 100, "quantity": 1}]}
    body = api.post("loyalty/calculate", {"site": "shop", "order": order})
    assert body.status == 200
    assert body["calculations"] == [
        {"privilegeType": "none", "discount": 0, "creditBonuses": 0, "maxChargeBonuses": 0, "maximum": True}
    ]
    assert body["order"]["privilegeType"] == "none" and "loyalty" not in body.body


def test_apply_then_cancel_the_bitrix_way(api, shop, account):
    """Bitrix: `orders/loyalty/apply` with `order={externalId}` and `bonuses`; then the order's lines
    carry the charge as `bonus_charge` discounts; `cancel-bonus-operations` undoes it."""
    order = make_order(shop, account.customer, external_id="b-1")
    applied = api.post(
        "orders/loyalty/apply", {"site": "shop", "order": {"externalId": "b-1"}, "bonuses": 200}
    )
    assert applied.status == 200, applied.body
    assert "verification" not in applied.body
    got = applied["order"]
    assert got["externalId"] == "b-1" and got["bonusesChargeTotal"] == 200
    assert got["privilegeType"] == "loyalty_level" and got["loyaltyAccount"] == {"id": account.pk}
    assert got["items"][0]["discounts"] == [{"type": "bonus_charge", "amount": 200}]
    assert got["totalSumm"] == 1000  # 900 − 200 + delivery 300
    assert got["bonusesCreditTotal"] == 35  # 5 % of 700
    assert api.get(f"loyalty/account/{account.pk}")["loyaltyAccount"]["amount"] == 800

    again = api.post("orders/loyalty/apply", {"site": "shop", "order": {"externalId": "b-1"}, "bonuses": 200})
    assert again.status == 200 and again["order"]["totalSumm"] == 1000  # set, not added
    assert api.get(f"loyalty/account/{account.pk}")["loyaltyAccount"]["amount"] == 800

    cancelled = api.post(
        "orders/loyalty/cancel-bonus-operations", {"site": "shop", "order": {"number": order.number}}
    )
    assert cancelled.status == 200, cancelled.body
    assert cancelled["order"]["totalSumm"] == 1200 and cancelled["order"]["bonusesChargeTotal"] == 0
    assert cancelled["order"]["items"][0]["discounts"] == []
    assert api.get(f"loyalty/account/{account.pk}")["loyaltyAccount"]["amount"] == 1000
    types = list(BonusOperation.objects.filter(order=order).values_list("type", flat=True))
    assert types == ["charge_for_order", "cancel_of_charge"]


def test_apply_errors(api, shop, account):
    order = make_order(shop, account.customer, external_id="b-2")
    ref = {"externalId": "b-2"}
    limit = api.post("orders/loyalty/apply", {"site": "shop", "order": ref, "bonuses": 451})
    assert limit.status == 400 and limit["errorMsg"] == "Validation error"
    assert limit["errors"] == {"bonuses": "At most 450.00 bonuses can pay for this order."}
    missing = api.post("orders/loyalty/apply", {"site": "shop", "order": ref})
    assert missing["errorMsg"] == "Parameter 'bonuses' is missing"
    assert (
        api.post("orders/loyalty/apply", {"site": "shop", "bonuses": 1})["errorMsg"]
        == "Parameter 'order' is missing"
    )
    unknown = api.post(
        "orders/loyalty/apply", {"site": "shop", "order": {"externalId": "nope"}, "bonuses": 1}
    )
    assert unknown.status == 400 and unknown["errors"] == {
        "order.externalId": "Order with externalId=nope not found."
    }
    stranger = make_order(shop, make_customer(shop, external_id="c-3"), external_id="b-3")
    no_account = api.post(
        "orders/loyalty/apply", {"site": "shop", "order": {"id": stranger.pk}, "bonuses": 1}
    )
    assert no_account.status == 400 and list(no_account["errors"]) == ["order"]
    complete(order)
    closed = api.post("orders/loyalty/apply", {"site": "shop", "order": ref, "bonuses": 1})
    assert closed.status == 400 and closed["errors"] == {"order": "The order is closed."}
    nothing = api.post(
        "orders/loyalty/cancel-bonus-operations", {"site": "shop", "order": {"id": stranger.pk}}
    )
    assert nothing.status == 200 and nothing["order"]["bonusesChargeTotal"] == 0


def test_completed_order_shows_its_credit(api, shop, account):
    order = make_order(shop, account.customer, external_id="b-4")
    complete(order)
    drain()
    cancelled = api.post(
        "orders/loyalty/cancel-bonus-operations", {"site": "shop", "order": {"externalId": "b-4"}}
    )
    assert cancelled.status == 200
    types = list(BonusOperation.objects.filter(order=order).values_list("type", "amount"))
    assert types == [("credit_for_order", Decimal("45.00")), ("cancel_of_credit", Decimal("-45.00"))]


# --- verification, scopes, the official client -------------------------------------------------------


def test_sms_verification_knows_no_checks(api):
    confirm = api.post("verification/sms/confirm", {"verification": {"code": "1234", "checkId": "abc"}})
    assert confirm.status == 404 and confirm.body == {"success": False, "errorMsg": "Not found"}
    status = api.get("verification/sms/abc/status")
    assert status.status == 404 and status.body == {"success": False, "errorMsg": "Not found"}
    blank = api.post("verification/sms/confirm", {"verification": {"code": "1234"}})
    assert blank.status == 400 and blank["errors"] == {
        "verification.checkId": "This value should not be blank."
    }
    assert api.post("verification/sms/confirm", {})["errorMsg"] == "Parameter 'verification' is missing"


def test_a_key_without_loyalty_write_gets_403(make_api, shop, account):
    reader = make_api("reader", scopes=["loyalty_read"])
    assert reader.get(f"loyalty/account/{account.pk}").status == 200
    order = make_order(shop, account.customer, external_id="b-5")
    writes = [
        (
            "loyalty/account/create",
            {"site": "shop", "loyaltyAccount": {"customer": {"id": account.customer_id}}},
        ),
        (f"loyalty/account/{account.pk}/edit", {"loyaltyAccount": {"cardNumber": "1"}}),
        (f"loyalty/account/{account.pk}/activate", {}),
        (f"loyalty/account/{account.pk}/bonus/charge", {"amount": 1}),
        (f"loyalty/account/{account.pk}/bonus/credit", {"amount": 1}),
        ("orders/loyalty/apply", {"site": "shop", "order": {"id": order.pk}, "bonuses": 1}),
        ("orders/loyalty/cancel-bonus-operations", {"site": "shop", "order": {"id": order.pk}}),
    ]
    for path, data in writes:
        answer = reader.post(path, data)
        assert (answer.status, answer["errorMsg"]) == (403, "Access denied."), path
    nobody = make_api("nobody", scopes=["order_read"])
    for path in (
        "loyalty/loyalties",
        "loyalty/accounts",
        f"loyalty/account/{account.pk}",
        "loyalty/bonus/operations",
    ):
        assert nobody.get(path).status == 403, path
    assert nobody.post("verification/sms/confirm", {"verification": {"checkId": "x"}}).status == 403
    assert BonusOperation.objects.filter(account=account).count() == 1


def test_a_key_of_another_site_cannot_touch_the_account(make_api, account):
    other = make_api("other", sites=["other"])
    assert other.get(f"loyalty/account/{account.pk}").status == 403
    assert other.post(f"loyalty/account/{account.pk}/bonus/charge", {"amount": 1}).status == 403
    assert other.get("loyalty/accounts")["loyaltyAccounts"] == []
    assert other.get("loyalty/bonus/operations")["bonusOperations"] == []


def test_official_python_client(api, shop, account, monkeypatch):
    """`retailcrm==5.3.0` loyalty methods, their requests routed into the test client."""
    django_client = Client()

    def respond(response):
        return SimpleNamespace(status_code=response.status_code, json=lambda: json.loads(response.content))

    def get(url, headers):
        parts = urlsplit(url)
        path = f"{parts.path}?{parts.query}" if parts.query else parts.path
        return respond(django_client.get(path, HTTP_X_API_KEY=headers["X-API-KEY"]))

    def post(url, data, headers):
        form = {k: v for k, v in data.items() if v is not None}  # as `requests` sends a form
        return respond(django_client.post(urlsplit(url).path, form, HTTP_X_API_KEY=headers["X-API-KEY"]))

    monkeypatch.setattr("retailcrm.versions.base.requests", SimpleNamespace(get=get, post=post))
    client = retailcrm.v5("https://lavka.test", api.raw_key)
    assert client.loyalty_loyalties().get_response()["loyalties"][0]["id"] == account.program_id
    assert client.loyalty_accounts({"customerId": account.customer_id}).get_response()["loyaltyAccounts"]
    assert client.loyalty_account(account.pk).get_response()["loyaltyAccount"]["amount"] == 1000
    assert client.loyalty_account_bonus_credit(account.pk, 5, None, None, "за отзыв").is_successful()
    assert client.loyalty_account_bonus_charge(account.pk, 15, "подарок").is_successful()
    operations = client.loyalty_account_bonus_operations(account.pk).get_response()
    assert operations["pagination"]["totalCount"] == 3
    assert client.loyalty_bonus_operations().get_response()["bonusOperations"]
    assert client.loyalty_account_bonus_details(account.pk, "burn_soon").is_successful()
    order = make_order(shop, account.customer, external_id="py-1")
    applied = client.orders_loyalty_apply({"externalId": "py-1"}, site="shop", bonuses=100)
    assert applied.is_successful() and applied.get_response()["order"]["bonusesChargeTotal"] == 100
    cart = {"customer": {"id": account.customer_id}, "items": [{"initialPrice": 100, "quantity": 1}]}
    assert (
        client.loyalty_calculate(cart, site="shop").get_response()["calculations"][0]["maxChargeBonuses"]
        == 50
    )
    assert client.orders_loyalty_cancel_bonus_operations({"id": order.pk}, site="shop").is_successful()
    assert client.verification_sms_status("abc").get_error_msg() == "Not found"
