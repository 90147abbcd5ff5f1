"""What the store plugins do when they connect and on their schedule (§4, §2.1, §2.13): the version
and credentials checks, registering the integration module, the ICML address rewrite, the catalog
refresh; and every endpoint outside orders/customers refusing a key without its scope."""

import pytest

from lavka.accounts.scopes import API_SCOPES
from lavka.core.models import Site
from lavka.integrations.api_v5.router import endpoints
from lavka.integrations.models import IntegrationModule

pytestmark = pytest.mark.django_db

# PrestaShop's RetailCRM::REQUIRED_CRM_SCOPES: it refuses a key that lacks any of them.
PRESTASHOP_SCOPES = [
    "order_read", "order_write", "customer_read", "customer_write", "store_read", "store_write",
    "reference_read", "reference_write", "analytics_write", "telephony_read", "telephony_write",
    "delivery_read", "delivery_write", "user_read", "user_write", "segment_read", "custom_fields_write",
    "custom_fields_read", "task_read", "task_write", "integration_read", "integration_write", "cost_read",
    "cost_write", "payments_read", "payments_write", "file_read", "file_write", "loyalty_read",
    "loyalty_write", "verification_write", "verification_read",
]  # fmt: skip
DENIED = {"success": False, "errorMsg": "Access denied."}
GROUPS = (
    "meta",
    "integration",
    "references",
    "store",
    "custom_fields",
    "tasks",
    "users",
    "telephony",
    "costs",
)


def test_prestashop_connection_check(make_api):
    client = make_api(name="prestashop", scopes=PRESTASHOP_SCOPES, sites=["shop"])
    versions = client.get("/api/api-versions")
    assert versions.status == 200 and any(str(v).startswith("5") for v in versions["versions"])
    credentials = client.get("/api/credentials")
    assert credentials.status == 200
    assert credentials["siteAccess"] == "access_selective" and credentials["sitesAvailable"] == ["shop"]
    assert not set(PRESTASHOP_SCOPES) - set(credentials["scopes"])
    # RetailcrmReferences::getSite still looks for these two in the deprecated list.
    assert "/api/reference/sites" in credentials["credentials"]
    assert "/api/reference/sites/{code}/edit" in credentials["credentials"]
    # validateCurrency reads the first (only) site's currency.
    sites = client.get("reference/sites")["sites"]
    assert list(sites) == ["shop"] and sites["shop"]["currency"] == "RUB"


def test_credentials_list_only_what_the_key_may_call(make_api):
    reader = make_api(name="reader", scopes=["reference_read"], sites=["shop"])
    listed = reader.get("/api/credentials")["credentials"]
    assert "/api/reference/sites" in listed and "/api/reference/sites/{code}/edit" not in listed
    assert "/api/orders/create" not in listed and "/api/credentials" in listed


def test_integration_module_is_created_then_updated(api):
    module = {
        "code": "woocommerce-abc",
        "integrationCode": "woocommerce",
        "name": "WooCommerce",
        "active": True,
        "clientId": "abc",
        "baseUrl": "https://shop.example",
        "accountUrl": "https://shop.example",
        "logo": "https://shop.example/logo.svg",
        "integrations": {"mgTransport": {"webhooks": []}},
    }
    first = api.post("integration-modules/woocommerce-abc/edit", {"integrationModule": module})
    assert first.status == 201 and first.body == {"success": True, "info": {}}
    again = api.post(
        "integration-modules/woocommerce-abc/edit", {"integrationModule": {**module, "active": False}}
    )
    assert again.status == 200 and again.body == {"success": True, "info": {}}
    got = api.get("integration-modules/woocommerce-abc")["integrationModule"]
    assert got["active"] is False and got["integrationCode"] == "woocommerce"
    assert got["integrations"] == {"mgTransport": {"webhooks": []}}
    assert IntegrationModule.objects.count() == 1


def test_integration_module_values_longer_than_kept_are_field_errors(api):
    long_name = api.post("integration-modules/m/edit", {"integrationModule": {"name": "n" * 256}})
    assert long_name.status == 400 and list(long_name["errors"]) == ["integrationModule.name"]
    long_url = {"baseUrl": "https://s.example/" + "a" * 1000}
    assert list(api.post("integration-modules/m/edit", {"integrationModule": long_url})["errors"]) == [
        "integrationModule.baseUrl"
    ]
    long_code = api.post(f"integration-modules/{'c' * 256}/edit", {"integrationModule": {"name": "x"}})
    assert long_code.status == 400 and list(long_code["errors"]) == ["integrationModule.code"]
    empty_flag = api.post("integration-modules/m/edit", {"integrationModule": {"active": None}})
    assert empty_flag.status == 400 and list(empty_flag["errors"]) == ["integrationModule.active"]
    assert not IntegrationModule.objects.exists()


def test_woocommerce_rewrites_the_icml_address_with_the_site_it_read(make_api, shop):
    Site.objects.filter(code="shop").update(yml_url="https://shop.example/retailcrm.xml")
    woo = make_api(name="woo", sites=["shop"])
    code = woo.get("/api/credentials")["sitesAvailable"][0]
    site = woo.get("reference/sites")["sites"][code]
    site["ymlUrl"] = site["ymlUrl"].replace("/retailcrm.xml", "/simla.xml")
    edited = woo.post(f"reference/sites/{code}/edit", {"site": site})
    assert edited.status == 200, edited.body
    assert woo.get("reference/sites")["sites"][code]["ymlUrl"] == "https://shop.example/simla.xml"
    assert woo.get("statistic/update").body == {"success": True}


def test_catalog_refresh_needs_analytics_write(make_api):
    without = make_api(name="no analytics", scopes=["reference_read", "store_read"], sites=["shop"])
    assert without.get("statistic/update").body == DENIED
    assert make_api(name="analytics", scopes=["analytics_write"]).get("statistic/update").status == 200


def _ours() -> list:
    return [
        e for e in endpoints() if e.scope is not None and e.handler.__module__.rsplit(".", 1)[-1] in GROUPS
    ]


@pytest.mark.parametrize("endpoint", _ours(), ids=lambda e: f"{e.method} {e.pattern}")
def test_every_endpoint_refuses_a_key_without_its_scope(make_api, endpoint):
    client = make_api(name="almost all", scopes=[s for s in API_SCOPES if s != endpoint.scope])
    path = endpoint.pattern
    for name in ("{entity}", "{code}", "{id}", "{subcode}"):
        path = path.replace(name, "order" if name == "{entity}" else "1")
    result = client.get(path) if endpoint.method == "GET" else client.post(path, {})
    assert (result.status, result.body) == (403, DENIED)


def test_scheduled_reads_with_the_limits_modules_send(api, shop):
    api.post(
        "custom-fields/order/create", {"customField": {"code": "gift", "name": "Подарок", "type": "boolean"}}
    )
    bitrix = api.get("custom-fields", {"limit": 250, "page": 1})
    assert bitrix["pagination"]["limit"] == 250 and [f["code"] for f in bitrix["customFields"]] == ["gift"]
    woo = api.get("custom-fields", {"filter[entity]": "customer", "limit": 100})
    assert woo["pagination"]["limit"] == 100 and woo["customFields"] == []
    shop.tea.external_id = "42"
    shop.tea.save()
    # PHP's http_build_query indexes list filters: filter[offerExternalId][0]=42.
    stock = api.get("store/inventories", {"filter[offerExternalId][0]": "42", "limit": 250, "page": 1})
    assert stock["pagination"] == {"limit": 250, "totalCount": 1, "currentPage": 1, "totalPageCount": 1}
    assert stock["offers"][0]["externalId"] == "42" and stock["offers"][0]["quantity"] == 0
