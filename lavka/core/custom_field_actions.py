"""Writers of custom field definitions as the API sees them, and of custom dictionaries.

retailCRM's custom fields belong to the account; Lavka's belong to a site (the order and customer forms
and the value checks read `CustomField.objects.filter(site=…)`). So an account-wide field created through
the API becomes one row per site the caller may see, and an edit changes all of those rows together.
A site added later does not get the field by itself: add it there in the settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from lavka.core.actions import apply_and_save
from lavka.core.actor import Actor
from lavka.core.models import CustomDictionary, CustomField, Site


@transaction.atomic
def save_dictionary(
    instance: CustomDictionary | None, values: dict[str, Any], *, actor: Actor
) -> CustomDictionary:
    """Create or change a dictionary. An element still used as a value may be dropped: the value stays."""
    return apply_and_save(instance or CustomDictionary(), values)


@transaction.atomic
def create_field_on_sites(
    sites: Iterable[Site], entity: str, code: str, values: dict[str, Any], *, actor: Actor
) -> list[CustomField]:
    """The same field (entity + code) on each site; 'already exists' if any of them has it."""
    sites = list(sites)
    if not sites:
        raise ValidationError({"site": _("No site to add the field to.")})
    if CustomField.objects.filter(site__in=sites, entity=entity, code=code).exists():
        raise ValidationError({"code": _("A custom field with this code already exists.")})
    return [apply_and_save(CustomField(site=site, entity=entity, code=code), values) for site in sites]


@transaction.atomic
def edit_field_on_sites(fields: list[CustomField], values: dict[str, Any], *, actor: Actor) -> None:
    """Change every per-site row of one field alike. The type is fixed: stored values follow it."""
    for field in fields:
        if "type" in values and values["type"] != field.type:
            raise ValidationError({"type": _("The type of a custom field cannot be changed.")})
        apply_and_save(field, values)
