"""API keys on the settings pages: admin only, the raw key shown once, only its hash stored, revoke."""

import hashlib
import re

import pytest
from django.test import Client
from django.urls import reverse

from lavka.accounts.actions import create_api_key, find_api_key
from lavka.accounts.models import ApiKey
from lavka.accounts.scopes import API_SCOPES
from lavka.core.actor import Actor

LIST = reverse("integrations:api_keys")
NEW = reverse("integrations:api_key_new")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def raw_key_on(page: str) -> str:
    match = re.search(r'readonly value="([A-Za-z0-9]{32})"', page)
    assert match, page
    return match.group(1)


@pytest.fixture
def key(shop):
    key, _raw = create_api_key("Shop plugin", actor=Actor.system("tests"), site_codes=["shop"])
    return key


def test_pages_are_for_admins_only(shop, key):
    pages = [LIST, NEW]
    for user in (shop.supervisor, shop.alice, shop.operator, shop.outsider):
        client = client_for(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
        assert (
            client.post(NEW, {"name": "sneaky", "all_scopes": "on", "site_access": "access_full"}).status_code
            == 404
        )
        assert client.post(reverse("integrations:api_key_revoke", args=[key.pk])).status_code == 404
    assert not ApiKey.objects.filter(name="sneaky").exists()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert Client().get(LIST).status_code == 302  # anonymous: to the login page


def test_list_shows_keys_without_the_secret(shop, key):
    other, raw = create_api_key("Telephony", actor=Actor.system("tests"), scopes=["telephony_write"])
    page = client_for(shop.admin).get(LIST).content.decode()
    assert "Shop plugin" in page and "Telephony" in page
    assert f"{key.prefix}…" in page
    assert "telephony_write" in page
    assert raw not in page and other.key_hash not in page


def test_create_shows_the_key_once_and_stores_only_its_hash(shop):
    admin = client_for(shop.admin)
    form = admin.get(NEW)
    assert form.status_code == 200 and "csrfmiddlewaretoken" in form.content.decode()
    data = {
        "name": "WooCommerce",
        "scopes": ["order_read", "order_write", "customer_read"],
        "site_access": "access_selective",
        "sites": ["shop"],
        "rate_limit": "25",
    }
    response = admin.post(NEW, data)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = raw_key_on(response.content.decode())

    key = ApiKey.objects.get(name="WooCommerce")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {key.prefix, key.key_hash, key.name} and key.prefix == raw[:6]
    assert key.scopes == ["order_read", "order_write", "customer_read"]
    assert key.site_access == ApiKey.SiteAccess.SELECTIVE and key.site_codes == {"shop"}
    assert key.rate_limit == 25 and key.created_by == shop.admin
    assert find_api_key(raw) == key
    # Never again: not on the list, not on the form.
    assert raw not in admin.get(LIST).content.decode()
    assert raw not in admin.get(NEW).content.decode()


def test_create_with_all_scopes_and_all_sites(shop):
    admin = client_for(shop.admin)
    data = {
        "name": "Script",
        "all_scopes": "on",
        "scopes": ["order_read"],
        "site_access": "access_full",
        "sites": ["shop"],
    }
    raw_key_on(admin.post(NEW, data).content.decode())
    key = ApiKey.objects.get(name="Script")
    assert key.scopes == list(API_SCOPES)  # "all" wins over single boxes
    assert key.site_access == ApiKey.SiteAccess.FULL and key.site_codes is None
    assert key.rate_limit is None


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "", "all_scopes": "on", "site_access": "access_full"}, "name"),
        ({"name": "x", "site_access": "access_full"}, "scopes"),
        ({"name": "x", "scopes": ["order_read", "root"], "site_access": "access_full"}, "scopes"),
        ({"name": "x", "all_scopes": "on", "site_access": "access_selective"}, "sites"),
        ({"name": "x", "all_scopes": "on", "site_access": "access_selective", "sites": ["nope"]}, "sites"),
        ({"name": "x", "all_scopes": "on", "site_access": "everything"}, "site_access"),
        ({"name": "x", "all_scopes": "on", "site_access": "access_full", "rate_limit": "0"}, "rate_limit"),
        (
            {"name": "x", "all_scopes": "on", "site_access": "access_full", "rate_limit": "9" * 30},
            "rate_limit",
        ),
    ],
)
def test_invalid_input_is_shown_on_the_field(shop, data, field):
    response = client_for(shop.admin).post(NEW, data)
    assert response.status_code == 400
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_revoke(shop, key, api):
    raw = api.raw_key
    admin = client_for(shop.admin)
    assert admin.get(reverse("integrations:api_key_revoke", args=[api.key.pk])).status_code == 405
    response = admin.post(reverse("integrations:api_key_revoke", args=[api.key.pk]))
    assert response.status_code == 302 and response["Location"] == LIST
    api.key.refresh_from_db()
    assert api.key.revoked_at is not None
    assert find_api_key(raw) is None
    assert api.get("/api/credentials").body == {"success": False, "errorMsg": 'Wrong "apiKey" value.'}
    key.refresh_from_db()
    assert key.revoked_at is None  # only the one asked for
    page = admin.get(LIST).content.decode()
    assert reverse("integrations:api_key_revoke", args=[api.key.pk]) not in page
    assert reverse("integrations:api_key_revoke", args=[key.pk]) in page
    assert admin.post(reverse("integrations:api_key_revoke", args=[999999])).status_code == 404
    assert admin.post(f"{LIST}{2**64}/revoke/").status_code == 404


@pytest.mark.parametrize(
    "language, on_list, on_form",
    [
        (
            "ru",
            ["API-ключи", "Отозвать", "все магазины"],
            ["Новый API-ключ", "Все права", "выбранные магазины"],
        ),
        ("en", ["API keys", "Revoke", "all sites"], ["New API key", "All scopes", "selected sites"]),
    ],
)
def test_pages_speak_the_users_language(shop, key, language, on_list, on_form):
    create_api_key("Everywhere", actor=Actor.system("tests"))
    shop.admin.language = language
    shop.admin.save(update_fields=["language"])
    admin = client_for(shop.admin)
    page, form = admin.get(LIST).content.decode(), admin.get(NEW).content.decode()
    assert all(text in page for text in on_list), page
    assert all(text in form for text in on_form), form
