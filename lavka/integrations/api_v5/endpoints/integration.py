"""API v5: integration modules, which every store plugin registers on install (§2.13)."""

from __future__ import annotations

from typing import Any

from lavka.integrations.actions import save_integration_module
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import ApiError, NotFound
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.integrations.models import IntegrationModule

KNOWN = {
    "integrationCode": "integration_code",
    "name": "name",
    "clientId": "client_id",
    "baseUrl": "base_url",
    "accountUrl": "account_url",
}


def module_json(module: IntegrationModule) -> dict[str, Any]:
    out = dict(module.data)
    out.update(
        {
            "code": module.code,
            "integrationCode": module.integration_code,
            "name": module.name,
            "active": module.active,
            "clientId": module.client_id,
            "baseUrl": module.base_url,
            "accountUrl": module.account_url,
        }
    )
    return {k: v for k, v in out.items() if v not in (None, "")}


@api("GET", "integration-modules/{code}", scope="integration_read")
def module_get(req: ApiRequest, code: str) -> dict[str, Any]:
    """An integration module by code."""
    module = IntegrationModule.objects.filter(code=code).first()
    if module is None:
        raise NotFound()
    return {"integrationModule": module_json(module)}


@api("POST", "integration-modules/{code}/edit", scope="integration_write", entity="integrationModule")
def module_edit(req: ApiRequest, code: str) -> tuple[int, dict[str, Any]]:
    """Create or update an integration module (store plugins call this on install)."""
    data = req.entity("integrationModule")
    errors = {}
    values: dict[str, Any] = {}
    for name, field in KNOWN.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, dict | list) or len(str(value)) > 1000:
            errors[f"integrationModule.{name}"] = "This value is not valid."
        else:
            values[field] = str(value)
    if "active" in data:
        try:
            values["active"] = p.boolean(data["active"], "active")
        except p.ParameterError:
            errors["integrationModule.active"] = "This value is not valid."
    if errors:
        raise ApiError("Errors in the entity format", 400, errors)
    extra = {k: v for k, v in data.items() if k not in KNOWN and k not in ("code", "active")}
    _module, created = save_integration_module(code, values, extra, api_key=req.key, actor=req.actor)
    return (201 if created else 200), {"info": {}}
