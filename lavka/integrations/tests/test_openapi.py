"""The OpenAPI document: valid OpenAPI 3.0, generated from the registry, served at /api/v5/openapi.json."""

from __future__ import annotations

import json

import jsonschema
import pytest
import schemathesis
from django.test import Client
from schemathesis.specs.openapi.definitions import OPENAPI_30

from lavka.integrations.api_v5 import router
from lavka.integrations.api_v5.openapi import document
from lavka.integrations.api_v5.router import api, endpoints


def full_path(endpoint: router.Endpoint) -> str:
    return endpoint.pattern if endpoint.pattern.startswith("/api/") else f"/api/v5/{endpoint.pattern}"


@pytest.fixture
def extra_endpoints():
    """Endpoints registered for one test only, as an endpoint module would register them."""
    endpoints()
    before = list(router._registry)
    yield
    router._registry[:] = before


def test_document_is_valid_openapi_3_0():
    doc = document()
    jsonschema.validate(doc, OPENAPI_30)
    schema = schemathesis.from_dict(doc, validate_schema=True)
    assert all(result.ok() for result in schema.get_all_operations())


def test_every_registered_endpoint_is_described():
    paths = document()["paths"]
    for endpoint in endpoints():
        operation = paths[full_path(endpoint)][endpoint.method.lower()]
        assert operation.get("x-scope") == endpoint.scope
        if endpoint.scope:
            assert endpoint.scope in operation["description"]
    described = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert described == {(e.method, full_path(e)) for e in endpoints()}
    assert "/api/credentials" in paths and "/api/api-versions" in paths and "/api/system-info" in paths


def test_keys_envelopes_and_errors():
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-KEY"}
    assert schemes["ApiKeyQuery"] == {"type": "apiKey", "in": "query", "name": "apiKey"}
    assert doc["security"] == [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["success", "errorMsg"]
    for path in doc["paths"].values():
        for operation in path.values():
            for status in ("400", "403", "404", "503"):
                assert operation["responses"][status] == {"$ref": f"#/components/responses/Error{status}"}


def test_generated_from_the_registry(extra_endpoints):
    """A new endpoint appears with its path parameters, query, JSON entity field and responses."""

    @api("GET", "widgets/history", scope="order_read", query=("filter", "limit", "page"))
    def widgets_history(req, **kwargs):
        """Widget changes."""

    @api("POST", "widgets/{id}/edit", scope="order_write", entity="widget", query=("by", "site"))
    def widgets_edit(req, id):
        """Edit a widget."""

    @api("POST", "widgets/upload", scope="order_write", entity="widgets", query=("site",))
    def widgets_upload(req):
        """Upload widgets."""

    router._registry.sort(key=lambda e: e.params_count)
    paths = document()["paths"]

    history = paths["/api/v5/widgets/history"]["get"]
    assert history["summary"] == "Widget changes." and history["x-scope"] == "order_read"
    params = {p["name"]: p for p in history["parameters"]}
    assert params["filter"]["style"] == "deepObject" and params["filter"]["in"] == "query"
    assert params["filter"]["schema"]["properties"]["sinceId"]["type"] == "integer"
    assert params["limit"]["schema"]["enum"] == [20, 50, 100]  # history pages are at most 100
    assert params["page"]["schema"]["minimum"] == 1
    assert "requestBody" not in history

    edit = paths["/api/v5/widgets/{id}/edit"]["post"]
    assert edit["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": edit["parameters"][0]["schema"]}
    ]
    form = edit["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["widget"]
    assert (
        form["properties"]["widget"]["type"] == "string"
        and "JSON" in form["properties"]["widget"]["description"]
    )
    assert form["properties"]["by"]["enum"] == ["externalId", "id"]
    assert set(edit["responses"]) == {"200", "201", "400", "403", "404", "503"}

    upload = paths["/api/v5/widgets/upload"]["post"]
    assert upload["responses"]["460"] == {"$ref": "#/components/responses/PartialUpload"}
    jsonschema.validate(document(), OPENAPI_30)


@pytest.mark.django_db
def test_served_without_a_key():
    client = Client()
    response = client.get("/api/v5/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    served = json.loads(response.content)
    assert served["openapi"] == "3.0.3"
    assert set(served["paths"]) == set(document()["paths"])
    refused = client.post("/api/v5/openapi.json")
    assert refused.status_code == 405
    assert json.loads(refused.content) == {"success": False, "errorMsg": "Method not allowed"}


def test_error_answers_match_the_error_schema(api):
    doc = document()
    error = doc["components"]["schemas"]["Error"]
    success = doc["components"]["schemas"]["Success"]
    no_key = Client().get("/api/v5/settings")
    assert no_key.status_code == 403
    jsonschema.validate(json.loads(no_key.content), error)
    unknown = api.get("no/such/method")
    assert unknown.status == 404
    jsonschema.validate(unknown.body, error)
    missing = api.post("integration-modules/shop-plugin/edit", {})
    assert missing.status == 400
    jsonschema.validate(missing.body, error)
    jsonschema.validate(api.get("/api/credentials").body, success)
