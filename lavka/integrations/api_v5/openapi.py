"""The OpenAPI 3.0 document of the API v5, built from the endpoint registry.

Generated rather than written by hand, so that every registered endpoint is described and nothing
described is missing: the registry's `scope`, `entity` and `query` metadata is all it reads.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse

from lavka import __version__
from lavka.integrations.api_v5.request import HISTORY_LIMITS, LIMITS
from lavka.integrations.api_v5.router import Endpoint, endpoints

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# Parameters the retailCRM clients send under these names (§1.5, §1.7, §1.8); any other name in an
# endpoint's `query` is documented as a plain string.
PARAMETERS: dict[str, dict[str, Any]] = {
    "by": {
        "description": "How the identifier in the path is read.",
        "schema": {"type": "string", "enum": ["externalId", "id"], "default": "externalId"},
    },
    "entityBy": {
        "description": "How the sub-entity identifier in the path is read.",
        "schema": {"type": "string", "enum": ["externalId", "id"], "default": "externalId"},
    },
    "siteBy": {
        "description": "How the site in the path is read.",
        "schema": {"type": "string", "enum": ["code", "id"], "default": "code"},
    },
    "site": {
        "description": "Site code. Required when the key can see more than one site.",
        "schema": {"type": "string"},
    },
    "limit": {
        "description": "Page size; other values are clamped to the next allowed one.",
        "schema": {"type": "integer", "enum": list(LIMITS), "default": LIMITS[0]},
    },
    "page": {"description": "Page number.", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    "technique": {
        "description": "How the two orders are combined.",
        "schema": {"type": "string", "enum": ["ours", "summ", "theirs", "merge"]},
    },
}
BOOLEAN = {
    "description": "Boolean: 1/0, true/false, True/False or Y/N.",
    "schema": {"type": "string", "enum": ["1", "0", "true", "false", "True", "False", "Y", "N"]},
}
BOOLEAN_PARAMETERS = ("force", "details", "ignoreStatus")
HISTORY_FILTER = {
    "sinceId": {"type": "integer", "minimum": 0, "description": "Records with a greater id."},
    "startDate": {"type": "string", "description": "Y-m-d H:i:s, account time zone."},
    "endDate": {"type": "string", "description": "Y-m-d H:i:s, account time zone."},
}

# The registry names one entity per endpoint; these methods take a second JSON field (§1.4).
SECOND_ENTITIES = {"orders/combine": "resultOrder", "customers/combine": "resultCustomer"}

ERROR_STATUSES = {
    "400": "Invalid input: `Errors in the entity format`, `Errors in the input parameters`, "
    "`Parameter '<name>' is missing`, `Validation error`, `Order already exists.` …",
    "403": '`"apiKey" is missing.`, `Wrong "apiKey" value.` or `Access denied.` (scope or site).',
    "404": "`Not found`, or `API method not found` for an unknown path.",
    "503": "`Rate limit exceeded`: too many requests per second for this key.",
}

INTRO = """\
retailCRM-compatible API v5 served by Lavka. Existing retailCRM clients and store plugins work
unchanged: give them this server's address and a Lavka API key.

* Key: the `X-API-KEY` header, or the `apiKey` query or form parameter.
* GET parameters: PHP bracket syntax (`filter[ids][]=1`, `filter[ids][0]=1`).
* POST bodies: `application/x-www-form-urlencoded` or `multipart/form-data`; a nested entity
  (`order`, `customer` …) is one form field holding a JSON string. A JSON object body is also accepted.
* Every answer is JSON: `{"success": true, …}` or `{"success": false, "errorMsg": "…", "errors": …}`.
* An optional `Idempotency-Key` header makes a POST safe to retry.
"""


def _path(endpoint: Endpoint) -> str:
    return endpoint.pattern if endpoint.pattern.startswith("/api/") else "/api/v5/" + endpoint.pattern


def _tag(endpoint: Endpoint) -> str:
    return endpoint.handler.__module__.rsplit(".", 1)[-1]


def _parameter(name: str, endpoint: Endpoint) -> dict[str, Any]:
    if name == "filter":
        properties = HISTORY_FILTER if endpoint.pattern.endswith("history") else {}
        return {
            "name": "filter",
            "in": "query",
            "description": "Filters, `filter[name]=value` (lists: `filter[name][]=value`).",
            "style": "deepObject",
            "explode": True,
            "schema": {
                "type": "object",
                "properties": properties,
                "additionalProperties": {"type": "string"},
            },
        }
    spec = BOOLEAN if name in BOOLEAN_PARAMETERS else PARAMETERS.get(name, {"schema": {"type": "string"}})
    if name == "limit" and endpoint.pattern.endswith("history"):
        spec = {**spec, "schema": {"type": "integer", "enum": list(HISTORY_LIMITS), "default": 20}}
    return {"name": name, "in": "query", **spec}


def _path_parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"\{(\w+)\}", endpoint.pattern)
    ]


def _request_body(endpoint: Endpoint) -> dict[str, Any] | None:
    """POST: the JSON entity field plus the scalar fields, all in the form body (§1.4)."""
    properties: dict[str, Any] = {}
    for name in (endpoint.entity, SECOND_ENTITIES.get(endpoint.pattern)):
        if name:
            properties[name] = {
                "type": "string",
                "format": "json",
                "description": f"`{name}` as a JSON string.",
            }
    for name in endpoint.query:
        parameter = _parameter(name, endpoint)
        properties[name] = {**parameter["schema"], "description": parameter.get("description", "")}
    if not properties:
        return None
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if endpoint.entity:
        schema["required"] = [endpoint.entity]
    return {"required": bool(endpoint.entity), "content": {FORM: {"schema": schema}}}


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    success = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Success"}}}}
    responses: dict[str, Any] = {"200": {"description": "Done.", **success}}
    if endpoint.method == "POST":
        responses["201"] = {"description": "Created.", **success}
    if endpoint.pattern.endswith("upload"):
        responses["460"] = {"$ref": "#/components/responses/PartialUpload"}
    for status in ERROR_STATUSES:
        responses[status] = {"$ref": f"#/components/responses/Error{status}"}
    return responses


def _operation(endpoint: Endpoint, operation_id: str) -> dict[str, Any]:
    scope = f"Scope: `{endpoint.scope}`." if endpoint.scope else "Any valid key."
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [_tag(endpoint)],
        "summary": endpoint.summary or endpoint.pattern,
        "description": scope,
        "parameters": _path_parameters(endpoint),
        "responses": _responses(endpoint),
    }
    if endpoint.scope:
        operation["x-scope"] = endpoint.scope
    if endpoint.method == "GET":
        operation["parameters"] += [_parameter(name, endpoint) for name in endpoint.query]
    else:
        body = _request_body(endpoint)
        if body is not None:
            operation["requestBody"] = body
    return operation


def _components() -> dict[str, Any]:
    error = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses = {f"Error{status}": {"description": text, **error} for status, text in ERROR_STATUSES.items()}
    responses["PartialUpload"] = {
        "description": "Some items failed (`Orders are loaded with errors` …): the `uploaded*` and "
        "`failed*` lists and `errors` say which.",
        **error,
    }
    return {
        "securitySchemes": {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
            "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apiKey"},
        },
        "schemas": {
            "Success": {
                "type": "object",
                "required": ["success"],
                "properties": {"success": {"type": "boolean", "enum": [True]}},
                "additionalProperties": True,
            },
            "Error": {
                "type": "object",
                "required": ["success", "errorMsg"],
                "properties": {
                    "success": {"type": "boolean", "enum": [False]},
                    "errorMsg": {"type": "string"},
                    "errors": {
                        "description": "Field → message, or a list of messages.",
                        "oneOf": [
                            {"type": "object", "additionalProperties": {"type": "string"}},
                            {"type": "array", "items": {"type": "string"}},
                        ],
                    },
                },
                "additionalProperties": True,
            },
        },
        "responses": responses,
    }


def document() -> dict[str, Any]:
    """The whole document; paths relative to the server root, so it fits any host it is served from."""
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for endpoint in sorted(endpoints(), key=lambda e: (_path(e), e.method)):
        operation_id = endpoint.handler.__name__
        if operation_id in used_ids:  # the same handler name in two endpoint modules
            operation_id = f"{_tag(endpoint)}_{operation_id}"
        used_ids.add(operation_id)
        paths.setdefault(_path(endpoint), {})[endpoint.method.lower()] = _operation(endpoint, operation_id)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Lavka API v5 (retailCRM-compatible)",
            "version": __version__,
            "description": INTRO,
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}],
        "tags": [{"name": tag} for tag in sorted({_tag(e) for e in endpoints()})],
        "paths": paths,
        "components": _components(),
    }


@cache
def _cached_document() -> dict[str, Any]:
    return document()  # the registry is fixed once loaded, so one build per process is enough


def view(request: HttpRequest) -> JsonResponse:
    """`GET /api/v5/openapi.json`, public: the document describes the API, it grants nothing."""
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"success": False, "errorMsg": "Method not allowed"}, status=405)
    return JsonResponse(_cached_document(), json_dumps_params={"ensure_ascii": False})
