"""The only writers of sites and custom field definitions (the settings pages call these)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lavka.core.actor import Actor
from lavka.core.models import CustomField, Site


def apply_and_save(row: Any, values: dict[str, Any]) -> Any:
    """Set `values` on a settings row, validate it (errors keyed by field name) and save it."""
    for name, value in values.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


@transaction.atomic
def save_site(site: Site | None, values: dict[str, Any], *, actor: Actor) -> Site:
    """Create or change a site; errors are ValidationError keyed by field name."""
    return apply_and_save(site or Site(), values)


@transaction.atomic
def save_custom_field(field: CustomField | None, values: dict[str, Any], *, actor: Actor) -> CustomField:
    """Create or change a custom field definition (its values live in the entities' `custom_fields`)."""
    return apply_and_save(field or CustomField(), values)
