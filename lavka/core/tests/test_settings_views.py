"""Settings pages: admin only; reference books, transitions, sites, custom fields, users and teams."""

import pytest
from django.test import Client
from django.urls import reverse

from lavka.accounts.models import Team, User
from lavka.core.models import CustomField, Site
from lavka.orders.models import DeliveryType, OrderType, Status, StatusTransition

PAGES = [
    ("settings:index", []),
    ("settings:sites", []),
    ("settings:site_new", []),
    ("settings:custom_fields", []),
    ("settings:custom_field_new", []),
    ("settings:books", ["statuses"]),
    ("settings:books", ["payment-statuses"]),
    ("settings:book_new", ["delivery-types"]),
    ("settings:transitions", []),
    ("settings:users", []),
    ("settings:user_new", []),
    ("settings:teams", []),
    ("settings:team_new", []),
]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name, args", PAGES)
def test_settings_are_for_admins_only(shop, name, args):
    url = reverse(name, args=args)
    for user in (shop.supervisor, shop.alice, shop.operator, shop.outsider):
        assert client_for(user).get(url).status_code == 404, (user, url)
        assert client_for(user).post(url, {"code": "x", "name": "x"}).status_code in (404, 405)
    response = client_for(shop.admin).get(url, follow=True)
    assert response.status_code == 200


def test_non_admin_cannot_write_settings(shop):
    bob = client_for(shop.bob)
    order_type = OrderType.objects.first()
    assert bob.post(reverse("settings:transitions_of", args=[order_type.pk]), {}).status_code == 404
    assert bob.post(reverse("settings:user_active", args=[shop.alice.pk])).status_code == 404
    assert StatusTransition.objects.filter(order_type=order_type).exists()
    shop.alice.refresh_from_db()
    assert shop.alice.is_active


def test_reference_book_edit(shop):
    admin = client_for(shop.admin)
    url = reverse("settings:book_new", args=["delivery-types"])
    data = {"code": "drone", "name": "Дрон", "default_cost": "990", "is_active": "on", "ordering": "5"}
    assert admin.post(url, data).status_code == 302
    assert DeliveryType.objects.get(code="drone").default_cost == 990
    duplicate = admin.post(url, data)
    assert duplicate.status_code == 400 and duplicate.context["form"].errors["code"]
    bad = admin.post(url, {**data, "code": "x y", "default_cost": "дорого"})
    assert bad.status_code == 400 and {"code", "default_cost"} <= set(bad.context["form"].errors)
    assert admin.get(reverse("settings:books", args=["nope"])).status_code == 404


def test_only_one_default_order_type(shop):
    admin = client_for(shop.admin)
    legal = OrderType.objects.get(code="eshop-legal")
    data = {
        "code": legal.code,
        "name": legal.name,
        "default_for_crm": "on",
        "is_active": "on",
        "ordering": "1",
    }
    assert admin.post(reverse("settings:book_edit", args=["order-types", legal.pk]), data).status_code == 302
    assert list(OrderType.objects.filter(default_for_crm=True).values_list("code", flat=True)) == [
        "eshop-legal"
    ]


def test_transitions_matrix(shop):
    admin = client_for(shop.admin)
    order_type = OrderType.objects.get(code="eshop-individual")
    new, confirmed = Status.objects.get(code="new"), Status.objects.get(code="client-confirmed")
    page = admin.get(reverse("settings:transitions_of", args=[order_type.pk]))
    assert f'value="{new.pk}-{confirmed.pk}" checked' in page.content.decode()
    response = admin.post(
        reverse("settings:transitions_of", args=[order_type.pk]),
        {"t": [f"{new.pk}-{confirmed.pk}", "junk", f"{new.pk}-999999", "1-1"]},
    )
    assert response.status_code == 200  # an unknown status: nothing changed, a message says why
    assert StatusTransition.objects.filter(order_type=order_type).count() > 1
    response = admin.post(
        reverse("settings:transitions_of", args=[order_type.pk]), {"t": [f"{new.pk}-{confirmed.pk}"]}
    )
    assert response.status_code == 302
    pairs = set(
        StatusTransition.objects.filter(order_type=order_type).values_list("from_status", "to_status")
    )
    assert pairs == {(new.pk, confirmed.pk)}


def test_sites_and_custom_fields(shop):
    admin = client_for(shop.admin)
    data = {
        "code": "third",
        "name": "Третий",
        "currency": "RUB",
        "country": "RU",
        "time_zone": "Europe/Moscow",
        "language": "ru",
        "is_active": "on",
        "ordering": "3",
    }
    assert admin.post(reverse("settings:site_new"), data).status_code == 302
    site = Site.objects.get(code="third")
    field = {
        "site": site.pk,
        "entity": "order",
        "code": "gift",
        "name": "Подарок",
        "type": "boolean",
        "ordering": "1",
    }
    assert admin.post(reverse("settings:custom_field_new"), field).status_code == 302
    assert admin.post(reverse("settings:custom_field_new"), field).status_code == 400
    assert CustomField.objects.filter(site=site, code="gift").count() == 1


def test_custom_fields_show_on_the_order_form(shop):
    CustomField.objects.create(
        site=shop.site, entity="order", code="gift", name="Подарочная упаковка", type="boolean"
    )
    page = client_for(shop.alice).get(reverse("orders:create"))
    assert "Подарочная упаковка" in page.content.decode() and 'name="custom_gift"' in page.content.decode()


def test_users_and_teams(shop):
    admin = client_for(shop.admin)
    assert (
        admin.post(
            reverse("settings:team_new"), {"name": "Москва", "supervisor": shop.supervisor.pk}
        ).status_code
        == 302
    )
    team = Team.objects.get(name="Москва")
    data = {
        "username": "masha",
        "first_name": "Маша",
        "role": "manager",
        "sites": [shop.site.pk],
        "team": team.pk,
        "language": "ru",
        "password": "a-long-enough-secret",
    }
    assert admin.post(reverse("settings:user_new"), data).status_code == 302
    masha = User.objects.get(username="masha")
    assert (
        masha.team_id == team.pk
        and masha.site_ids == [shop.site.pk]
        and masha.check_password(data["password"])
    )
    taken = admin.post(reverse("settings:user_new"), data)
    assert taken.status_code == 400 and taken.context["form"].errors["username"]
    weak = admin.post(reverse("settings:user_new"), {**data, "username": "sasha", "password": "123"})
    assert weak.status_code == 400 and weak.context["form"].errors["password"]
    edit = {**data, "role": "supervisor", "password": ""}
    del edit["username"]
    assert admin.post(reverse("settings:user_edit", args=[masha.pk]), edit).status_code == 302
    masha.refresh_from_db()
    assert masha.role == "supervisor" and masha.check_password(data["password"])
    assert admin.post(reverse("settings:user_active", args=[masha.pk])).status_code == 302
    masha.refresh_from_db()
    assert not masha.is_active
    admin.post(reverse("settings:user_active", args=[shop.admin.pk]))
    shop.admin.refresh_from_db()
    assert shop.admin.is_active


def test_settings_link_only_for_admins(shop):
    link = f'href="{reverse("settings:index")}"'
    assert link in client_for(shop.admin).get(reverse("orders:list")).content.decode()
    assert link not in client_for(shop.alice).get(reverse("orders:list")).content.decode()
