"""Settings → Loyalty and the bonus panel of the customer card: permissions, CSRF, forms."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from lavka.loyalty import actions
from lavka.loyalty.models import BonusOperation, LoyaltyAccount, LoyaltyProgram
from lavka.loyalty.tests.factories import SYSTEM, make_account, make_customer, make_program

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def program_form(shop, levels, **fields):
    data = {
        "name": "Бонусы",
        "sites": [str(shop.site.pk)],
        "active": "on",
        "currency": "RUB",
        "max_charge_percent": "30",
        "activation_delay_days": "0",
        "expiry_days": "365",
        "levels-TOTAL_FORMS": str(len(levels)),
        "levels-INITIAL_FORMS": "0",
        "levels-MIN_NUM_FORMS": "0",
        "levels-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, level in enumerate(levels):
        for key, value in level.items():
            data[f"levels-{index}-{key}"] = value
    return data


def test_settings_pages_are_for_admins_only(shop):
    for user in (shop.supervisor, shop.alice):
        client = client_for(user)
        assert client.get(reverse("loyalty:programs")).status_code == 404
        assert client.post(reverse("loyalty:program_new"), {}).status_code == 404
    assert not LoyaltyProgram.objects.exists()


def test_admin_creates_and_edits_a_programme_with_levels(shop):
    client = client_for(shop.admin)
    assert client.get(reverse("loyalty:program_new")).status_code == 200
    levels = [
        {"name": "Базовый", "threshold": "0", "percent": "3"},
        {"name": "Золотой", "threshold": "20000", "percent": "7"},
        {"name": "", "threshold": "", "percent": ""},  # a blank row is ignored
    ]
    response = client.post(reverse("loyalty:program_new"), program_form(shop, levels))
    assert response.status_code == 302, response.content.decode()[:2000]
    program = LoyaltyProgram.objects.get()
    assert (program.name, program.max_charge_percent, program.expiry_days) == ("Бонусы", 30, 365)
    assert [(lv.name, lv.percent) for lv in program.levels.all()] == [("Базовый", 3), ("Золотой", 7)]
    listing = client.get(reverse("loyalty:programs")).content.decode()
    assert "Бонусы" in listing and "Золотой 7%" in listing

    page = client.get(reverse("loyalty:program_edit", args=[program.pk])).content.decode()
    assert "Золотой" in page
    gold = program.levels.get(name="Золотой")
    base = program.levels.get(name="Базовый")
    edit = program_form(
        shop,
        [
            {"id": str(base.pk), "name": "Базовый", "threshold": "0", "percent": "4"},
            {"id": str(gold.pk), "name": "Золотой", "threshold": "20000", "percent": "7", "DELETE": "on"},
        ],
        name="Бонусы 2",
    )
    assert client.post(reverse("loyalty:program_edit", args=[program.pk]), edit).status_code == 302
    assert [(lv.name, lv.percent) for lv in program.levels.all()] == [("Базовый", 4)]


def test_programme_errors_show_on_the_page(shop):
    client = client_for(shop.admin)
    levels = [
        {"name": "A", "threshold": "0", "percent": "3"},
        {"name": "B", "threshold": "0", "percent": "5"},
    ]
    response = client.post(reverse("loyalty:program_new"), program_form(shop, levels))
    assert response.status_code == 400
    assert "Two levels start at the same orders sum." in response.content.decode()
    no_site = client.post(reverse("loyalty:program_new"), program_form(shop, levels[:1], sites=[]))
    assert no_site.status_code == 400 and not LoyaltyProgram.objects.exists()
    starts_late = [{"name": "A", "threshold": "10", "percent": "3"}]
    late = client.post(reverse("loyalty:program_new"), program_form(shop, starts_late))
    assert "The first level must start at an orders sum of 0." in late.content.decode()


def test_the_card_shows_the_panel_and_credits_and_charges_by_hand(shop):
    make_program(shop)
    account = make_account(shop)
    actions.credit(account, "100", actor=SYSTEM, comment="приветственные")
    client = client_for(shop.alice)
    card = client.get(reverse("customers:detail", args=[account.customer_id])).content.decode()
    assert 'id="loyalty"' in card and "приветственные" in card and "Базовый" in card
    url = reverse("loyalty:operation", args=[account.customer_id])
    response = client.post(url, {"kind": "charge", "amount": "40", "comment": "подарок"})
    assert response.status_code == 302 and response["Location"].endswith("#loyalty")
    client.post(url, {"kind": "credit", "amount": "5.50", "comment": ""})
    assert LoyaltyAccount.objects.get().amount == Decimal("65.50")
    operation = BonusOperation.objects.get(type="charge_manual")
    assert operation.user == shop.alice and operation.source == "user"


def test_a_charge_beyond_the_balance_is_refused_on_the_card(shop):
    make_program(shop)
    account = make_account(shop)
    client = client_for(shop.alice)
    url = reverse("loyalty:operation", args=[account.customer_id])
    response = client.post(url, {"kind": "charge", "amount": "1"}, follow=True)
    assert "Amount: Not enough bonuses: 0.00 available." in response.content.decode()
    assert not BonusOperation.objects.exists()


def test_enrol_and_activate_from_the_card(shop):
    make_program(shop)
    customer = make_customer(shop)
    client = client_for(shop.alice)
    card = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Not in the loyalty programme yet." in card
    client.post(reverse("loyalty:enrol", args=[customer.pk]), {"phone_number": "+79160001122"})
    account = LoyaltyAccount.objects.get()
    assert account.active is False
    client.post(reverse("loyalty:activate", args=[customer.pk]))
    assert LoyaltyAccount.objects.get().active is True


def test_nobody_outside_the_customers_scope_can_post(shop):
    make_program(shop)
    account = make_account(shop)
    outsider = client_for(shop.outsider)
    url = reverse("loyalty:operation", args=[account.customer_id])
    assert outsider.post(url, {"kind": "credit", "amount": "10"}).status_code == 404
    assert outsider.post(reverse("loyalty:activate", args=[account.customer_id])).status_code == 404
    assert client_for(shop.alice).get(url).status_code == 405  # POST only
    assert not BonusOperation.objects.exists()


def test_forms_need_the_csrf_token(shop):
    make_program(shop)
    account = make_account(shop)
    client = client_for(shop.alice, enforce_csrf_checks=True)
    url = reverse("loyalty:operation", args=[account.customer_id])
    assert client.post(url, {"kind": "credit", "amount": "10"}).status_code == 403
    assert not BonusOperation.objects.exists()


def test_no_panel_without_a_programme(shop):
    customer = make_customer(shop)
    card = client_for(shop.alice).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'id="loyalty"' not in card
