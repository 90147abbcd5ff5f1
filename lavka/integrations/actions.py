"""The only writers of integration modules and stored idempotent answers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lavka.core import events, history
from lavka.core.actor import Actor
from lavka.core.history import Change
from lavka.integrations.events import IntegrationModuleSaved
from lavka.integrations.models import IntegrationModule

ENTITY = "integration_module"
TRACKED = ("integration_code", "name", "active", "client_id", "base_url", "account_url")


@transaction.atomic
def save_integration_module(
    code: str, values: dict[str, Any], extra: dict[str, Any], *, api_key: Any, actor: Actor
) -> tuple[IntegrationModule, bool]:
    """Create or update the module `code`; `extra` keeps whatever else the plugin sent."""
    module, created = IntegrationModule.objects.select_for_update().get_or_create(
        code=code[:255], defaults={"api_key": api_key}
    )
    before = {name: getattr(module, name) for name in TRACKED} | {"data": dict(module.data)}
    for name, value in values.items():
        setattr(module, name, value)
    module.data = {**module.data, **extra}
    module.api_key = api_key
    module.save()
    after = {name: getattr(module, name) for name in TRACKED} | {"data": dict(module.data)}
    changes = [Change(ENTITY, module.pk, "code", None, module.code, created=True)] if created else []
    changes += [
        Change(ENTITY, module.pk, name, before[name] if not created else None, after[name], created=created)
        for name in after
        if before[name] != after[name] or (created and after[name] not in (None, "", {}))
    ]
    history.write(changes, actor)
    events.emit(
        IntegrationModuleSaved(module.pk, module.code, created, [c.field for c in changes]), actor=actor
    )
    return module, created
