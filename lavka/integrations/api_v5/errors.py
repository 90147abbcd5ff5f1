"""The retailCRM error envelope and the exact `errorMsg` strings clients match on (§1.9)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

ENTITY_ERROR = "Errors in the entity format"


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400, errors: dict[str, str] | list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": False, "errorMsg": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(ApiError):
    def __init__(self, message: str = "Not found") -> None:
        super().__init__(message, 404)


class AccessDenied(ApiError):
    def __init__(self) -> None:
        super().__init__("Access denied.", 403)


class MissingParameter(ApiError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Parameter '{name}' is missing", 400)


class InvalidParameters(ApiError):
    """A filter or query value that cannot be read (Symfony-style `children[name]` keys)."""

    def __init__(self, name: str, message: str = "This value is not valid.") -> None:
        super().__init__("Errors in the input parameters", 400, {f"children[{name}]": message})


def field_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """A Django ValidationError as retailCRM's `{field: message}` map.

    `prefix` names the entity ("order.") unless the field already carries a dotted path.
    """
    if hasattr(exc, "error_dict"):
        out = {}
        for name, errors in exc.message_dict.items():
            key = name if name == "__all__" else (name if "." in name or not prefix else prefix + name)
            out[key] = " ".join(errors)
        return out
    return {"0": " ".join(exc.messages)} if exc.messages else {}


def entity_error(exc: ValidationError, message: str = ENTITY_ERROR, prefix: str = "") -> ApiError:
    return ApiError(message, 400, field_errors(exc, prefix))


class Errors:
    """Field errors of one entity, collected under its prefix (`order.`) and answered all at once."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.map: dict[str, str] = {}

    def add(self, name: str, message: str = "This value is not valid.") -> None:
        self.map.setdefault(self.prefix + name, message)

    def raise_if_any(self, message: str = ENTITY_ERROR) -> None:
        if self.map:
            raise ApiError(message, 400, self.map)
