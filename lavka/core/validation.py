"""Shared input checks used by actions. Errors are ValidationError keyed by the field's name."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from lavka.core.models import CustomField, Site
from lavka.core.phones import InvalidPhone, normalize_phone


def clean_phone(value: str, site: Site, field: str = "phone") -> str:
    try:
        return normalize_phone(value, site.country)
    except InvalidPhone as exc:
        raise ValidationError({field: _("Enter a valid phone number.")}) from exc


def clean_email(value: str, field: str = "email") -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError as exc:
        raise ValidationError({field: _("Enter a valid e-mail address.")}) from exc
    local, _at, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_decimal(
    value: Any,
    field: str,
    *,
    minimum: Decimal | None = Decimal(0),
    maximum: Decimal = Decimal("999999999999"),
    places: int = 2,
) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: _("Enter a number.")}) from exc
    if not number.is_finite():
        raise ValidationError({field: _("Enter a number.")})
    if minimum is not None and number < minimum:
        raise ValidationError({field: _("Must be at least %(min)s.") % {"min": minimum}})
    if number > maximum:
        raise ValidationError({field: _("Must be at most %(max)s.") % {"max": maximum}})
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValidationError({field: _("At most %(n)s decimal places.") % {"n": places}})
    return number.quantize(Decimal(1).scaleb(-places))


def clean_custom_fields(site: Site, entity: str, values: dict[str, Any] | None) -> dict[str, Any]:
    values = values or {}
    if not isinstance(values, dict):
        raise ValidationError({"custom_fields": _("Expected a set of field values.")})
    defined = {
        f.code: f for f in CustomField.objects.filter(site=site, entity=entity).select_related("dictionary")
    }
    cleaned: dict[str, Any] = {}
    for code, raw in values.items():
        definition = defined.get(code)
        key = f"custom_{code}"
        if definition is None:
            raise ValidationError({key: _("Unknown custom field.")})
        if raw in (None, ""):
            continue
        try:
            cleaned[code] = _convert(definition, raw)
        except (ValueError, TypeError, InvalidOperation) as exc:
            raise ValidationError(
                {key: _("Invalid value for %(name)s.") % {"name": definition.name}}
            ) from exc
    for code, definition in defined.items():
        if definition.required and code not in cleaned:
            raise ValidationError({f"custom_{code}": _("This field is required.")})
    return cleaned


def _convert(definition: CustomField, raw: Any) -> Any:
    kind = definition.type
    if isinstance(raw, dict | list):
        raise ValueError("a single value is expected")
    if kind == CustomField.Type.EMAIL:
        try:
            return clean_email(raw, "email")
        except ValidationError as exc:
            raise ValueError(raw) from exc
    if kind == CustomField.Type.DICTIONARY:
        elements = definition.dictionary.elements if definition.dictionary else []
        codes = {str(e.get("code")) for e in elements if isinstance(e, dict)}
        if str(raw) not in codes:
            raise ValueError(raw)
        return str(raw)
    if kind == CustomField.Type.INTEGER:
        if isinstance(raw, bool):
            raise ValueError(raw)
        return int(str(raw))
    if kind == CustomField.Type.NUMERIC:
        number = Decimal(str(raw))
        if not number.is_finite():
            raise ValueError(raw)
        return str(number)
    if kind == CustomField.Type.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)
    if kind == CustomField.Type.DATE:
        return datetime.date.fromisoformat(str(raw)).isoformat()
    text = str(raw)
    if len(text) > 2000:
        raise ValueError("too long")
    return text


def clean_text(value: Any, field: str, max_length: int) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > max_length:
        raise ValidationError({field: _("At most %(n)s characters.") % {"n": max_length}})
    if "\x00" in text:
        raise ValidationError({field: _("Contains a forbidden character.")})
    return text
