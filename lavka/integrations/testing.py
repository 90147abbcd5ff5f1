"""Test kit for the API: a key and a small client that speaks the envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.test import Client

from lavka.accounts.actions import create_api_key
from lavka.accounts.models import ApiKey
from lavka.core.actor import Actor


@dataclass
class ApiResult:
    status: int
    body: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.body[name]


class ApiClient:
    """Calls `/api/v5/...` the way the retailCRM clients do: form fields, JSON inside."""

    def __init__(self, raw_key: str, key: ApiKey) -> None:
        self.raw_key = raw_key
        self.key = key
        self.client = Client()

    def _url(self, path: str) -> str:
        return path if path.startswith("/api/") else f"/api/v5/{path}"

    def get(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> ApiResult:
        response = self.client.get(self._url(path), params or {}, HTTP_X_API_KEY=self.raw_key)
        return ApiResult(response.status_code, json.loads(response.content))

    def post(self, path: str, data: dict[str, Any] | None = None, **headers: str) -> ApiResult:
        """Dicts and lists in `data` are sent as JSON strings in form fields (§1.4)."""
        form = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in (data or {}).items()}
        response = self.client.post(self._url(path), form, HTTP_X_API_KEY=self.raw_key, **headers)
        return ApiResult(response.status_code, json.loads(response.content))


def api_client(
    name: str = "tests", scopes: list[str] | None = None, sites: list[str] | None = None
) -> ApiClient:
    key, raw = create_api_key(name, actor=Actor.system("tests"), scopes=scopes, site_codes=sites)
    return ApiClient(raw, key)
