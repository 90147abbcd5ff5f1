"""The transport rules of §1: parameters, keys, scopes, envelope, rate limit, idempotency."""

import json

import pytest
from django.test import Client

from lavka.integrations.api_v5.params import boolean, parse_pairs
from lavka.integrations.testing import api_client


def test_three_query_dialects_parse_alike():
    php = parse_pairs([("filter[ids][0]", "1"), ("filter[ids][1]", "2"), ("limit", "20")])
    empty = parse_pairs([("filter[ids][]", "1"), ("filter[ids][]", "2"), ("limit", "20")])
    assert php == empty == {"filter": {"ids": ["1", "2"]}, "limit": "20"}


def test_nested_custom_field_ranges_and_sparse_indexes():
    parsed = parse_pairs([("filter[customFields][nps][min]", "5"), ("a[3]", "x"), ("a[5]", "y")])
    assert parsed == {"filter": {"customFields": {"nps": {"min": "5"}}}, "a": {"3": "x", "5": "y"}}


def test_python_client_quirks_are_tolerated():
    assert parse_pairs([("filter", "None")]) == {"filter": "None"}
    assert boolean("True", "x") is True and boolean("False", "x") is False
    assert boolean("Y", "x") is True and boolean("0", "x") is False


@pytest.mark.django_db
def test_missing_and_wrong_key(shop):
    client = Client()
    missing = client.get("/api/credentials")
    assert missing.status_code == 403
    assert missing.json() == {"success": False, "errorMsg": '"apiKey" is missing.'}
    wrong = client.get("/api/credentials", {"apiKey": "nope"})
    assert wrong.status_code == 403 and wrong.json()["errorMsg"] == 'Wrong "apiKey" value.'


@pytest.mark.django_db
def test_key_in_header_query_or_form_body(api):
    client = Client()
    assert client.get("/api/credentials", HTTP_X_API_KEY=api.raw_key).status_code == 200
    assert client.get("/api/credentials", {"apiKey": api.raw_key}).status_code == 200
    # A POST with the key in a multipart body (the PHP modules' cURL).
    response = client.post("/api/v5/integration-modules/x/edit", {"apiKey": api.raw_key})
    assert response.json().get("errorMsg") != 'Wrong "apiKey" value.'


@pytest.mark.django_db
def test_unknown_method_is_json_404(api):
    result = api.get("no/such/method")
    assert result.status == 404 and result.body == {"success": False, "errorMsg": "API method not found"}


@pytest.mark.django_db
def test_credentials_report_scopes_and_sites(shop, make_api):
    client = make_api(scopes=["order_read"], sites=["shop"])
    result = client.get("/api/credentials")
    assert result.status == 200
    assert result["siteAccess"] == "access_selective"
    assert result["sitesAvailable"] == ["shop"]
    assert result["scopes"] == ["order_read"]
    assert "/api/api-versions" in result["credentials"]


@pytest.mark.django_db
def test_scope_missing_is_access_denied(make_api):
    client = make_api(scopes=["order_read"])
    result = client.get("statistic/update")
    assert result.status == 403 and result.body == {"success": False, "errorMsg": "Access denied."}


@pytest.mark.django_db
def test_rate_limit_answers_503(shop, settings):
    client = api_client(name="limited")
    settings.LAVKA_API_RATE_LIMIT = 3
    statuses = [client.get("/api/api-versions").status for _ in range(6)]
    assert statuses[:3] == [200, 200, 200]
    assert 503 in statuses[3:]
    limited = client.get("/api/api-versions")
    assert limited.body == {"success": False, "errorMsg": "Rate limit exceeded"} or limited.status == 200


@pytest.mark.django_db
def test_revoked_key_is_refused(api):
    from lavka.accounts.actions import revoke_api_key
    from lavka.core.actor import Actor

    revoke_api_key(api.key, actor=Actor.system("tests"))
    assert api.get("/api/credentials").status == 403


@pytest.mark.django_db
def test_json_body_is_accepted(api):
    response = Client().post(
        "/api/v5/statistic/update",
        data=json.dumps({}),
        content_type="application/json",
        HTTP_X_API_KEY=api.raw_key,
    )
    assert response.status_code == 405  # statistic/update is a GET; the body was still read as JSON
    bad = Client().post(
        "/api/v5/integration-modules/x/edit",
        data="{",
        content_type="application/json",
        HTTP_X_API_KEY=api.raw_key,
    )
    assert bad.status_code == 400 and bad.json()["success"] is False


@pytest.mark.django_db
def test_nul_bytes_are_refused_with_the_field_named(api):
    raw = api.get("/api/credentials", {"site": "sh\x00op"})
    assert raw.status == 400 and raw["errors"] == {"children[site]": "This value contains a NUL character."}
    escaped = api.post("integration-modules/x/edit", {"integrationModule": {"name": "a\u0000b"}})
    assert escaped.status == 400 and "integrationModule[name]" in escaped["errors"]


@pytest.mark.django_db
def test_integration_module_save_records_history_and_an_event(api):
    from lavka.core.models import HistoryRecord, OutboxEvent

    first = api.post("integration-modules/woo-1/edit", {"integrationModule": {"name": "Woo", "active": True}})
    again = api.post("integration-modules/woo-1/edit", {"integrationModule": {"name": "Woo 2"}})
    assert (first.status, again.status) == (201, 200)
    fields = list(HistoryRecord.objects.filter(entity="integration_module").values_list("field", "new_value"))
    assert ("name", "Woo") in fields and ("name", "Woo 2") in fields
    assert all(r.source == "api" for r in HistoryRecord.objects.filter(entity="integration_module"))
    assert OutboxEvent.objects.filter(type="integrations.module_saved").count() == 2
