"""The endpoint registry: `@api("GET", "orders/{id}", scope="order_read")` on a function.

A handler takes an ApiRequest and the path's `{names}` and returns a payload dict (200) or a
`(status, payload)` pair; `success: true` is added by the dispatcher. Literal paths win over
parameterised ones (`orders/history` before `orders/{id}`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENDPOINT_MODULES = (
    "meta",
    "orders",
    "customers",
    "corporate",
    "references",
    "store",
    "custom_fields",
    "tasks",
    "users",
    "telephony",
    "costs",
    "integration",
    "carts",
    "loyalty",
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    pattern: str  # "orders/{id}/edit"; "/api/credentials" for the unversioned ones
    scope: str | None
    handler: Callable[..., Any]
    regex: re.Pattern = field(compare=False)
    summary: str = ""
    entity: str | None = None  # the JSON form field the endpoint reads, for the OpenAPI document
    query: tuple[str, ...] = ()  # documented scalar parameters (OpenAPI)
    telephony: bool = False

    @property
    def params_count(self) -> int:
        return self.pattern.count("{")


_registry: list[Endpoint] = []
_loaded = False


def _compile(pattern: str) -> re.Pattern:
    parts = re.split(r"(\{\w+\})", pattern)
    regex = "".join(f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}$")


def api(
    method: str,
    pattern: str,
    *,
    scope: str | None,
    entity: str | None = None,
    query: tuple[str, ...] = (),
    summary: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        _registry.append(
            Endpoint(
                method=method,
                pattern=pattern,
                scope=scope,
                handler=handler,
                regex=_compile(pattern),
                summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
                entity=entity,
                query=query,
                telephony=pattern.startswith("telephony/"),
            )
        )
        return handler

    return register


def endpoints() -> list[Endpoint]:
    global _loaded
    if not _loaded:
        for name in ENDPOINT_MODULES:
            importlib.import_module(f"lavka.integrations.api_v5.endpoints.{name}")
        _registry.sort(key=lambda e: e.params_count)  # stable: registration order within a tier
        _loaded = True
    return _registry


def resolve(method: str, path: str) -> tuple[Endpoint | None, dict[str, str], bool]:
    """The endpoint for `path`, its path arguments, and whether the path exists for another method."""
    other_method = False
    for endpoint in endpoints():
        match = endpoint.regex.match(path)
        if match is None:
            continue
        if endpoint.method != method:
            other_method = True
            continue
        return endpoint, match.groupdict(), other_method
    return None, {}, other_method
