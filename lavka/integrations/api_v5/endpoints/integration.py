"""API v5: integration modules, which every store plugin registers on install (§2.13)."""

from __future__ import annotations

from typing import Any

from lavka.integrations.actions import save_integration_module
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import ENTITY_ERROR, ApiError, NotFound
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.integrations.models import IntegrationModule

# API field → (model field, the longest value the column takes).
KNOWN = {
    "integrationCode": ("integration_code", 255),
    "name": ("name", 255),
    "clientId": ("client_id", 255),
    "baseUrl": ("base_url", 1000),
    "accountUrl": ("account_url", 1000),
}
MAX_CODE = 255


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
    if len(code) > MAX_CODE:
        # The column holds 255 characters: a longer code would be cut and then never found again.
        message = f"This value is too long. It should have {MAX_CODE} characters or less."
        raise ApiError(ENTITY_ERROR, 400, {"integrationModule.code": message})
    data = req.entity("integrationModule")
    errors = {}
    values: dict[str, Any] = {}
    for name, (field, limit) in KNOWN.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, dict | list | bool):
            errors[f"integrationModule.{name}"] = "This value is not valid."
        elif len(str(value)) > limit:
            errors[f"integrationModule.{name}"] = (
                f"This value is too long. It should have {limit} characters or less."
            )
        else:
            values[field] = str(value)
    if "active" in data:
        try:
            active = p.boolean(data["active"], "active")
        except p.ParameterError:
            active = None
        if active is None:  # null cannot say whether the module is on (the column cannot hold it)
            errors["integrationModule.active"] = "This value is not valid."
        else:
            values["active"] = active
    if errors:
        raise ApiError(ENTITY_ERROR, 400, errors)
    extra = {k: v for k, v in data.items() if k not in KNOWN and k not in ("code", "active")}
    _module, created = save_integration_module(code, values, extra, api_key=req.key, actor=req.actor)
    return (201 if created else 200), {"info": {}}
