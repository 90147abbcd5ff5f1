"""The only writers of integration modules and stored idempotent answers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lavka.core.actor import Actor
from lavka.integrations.models import IntegrationModule


@transaction.atomic
def save_integration_module(
    code: str, values: dict[str, Any], extra: dict[str, Any], *, api_key: Any, actor: Actor
) -> tuple[IntegrationModule, bool]:
    """Create or update the module `code`; `extra` keeps whatever else the plugin sent."""
    module, created = IntegrationModule.objects.select_for_update().get_or_create(
        code=code[:255], defaults={"api_key": api_key}
    )
    for field, value in values.items():
        setattr(module, field, value)
    module.data = {**module.data, **extra}
    module.api_key = api_key
    module.save()
    return module, created
