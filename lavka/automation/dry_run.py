"""What a rule would have done over the recorded events of the last days, without doing any of it.

Conditions are judged on the subjects as they are now, with each event's own changes (`changed()`,
`old()`, `new()`) as recorded. For a time-based trigger: the subjects it would fire for now. The whole
run happens in a transaction that is rolled back, so nothing it touches can stay.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from lavka.automation import conditions
from lavka.automation.actions import RuleData, check_rule
from lavka.automation.effects import REGISTRY
from lavka.automation.engine import subject_of
from lavka.automation.jobs import TIMERS
from lavka.automation.triggers import TRIGGERS
from lavka.core.models import OutboxEvent

LIMIT = 2000


@dataclass
class Would:
    at: datetime.datetime | None
    event_type: str
    subject_type: str
    subject_id: int | None
    fires: bool
    reason: str
    label: str = ""
    actions: list[str] = field(default_factory=list)


@dataclass
class _Now:
    """A time-based trigger's event, as the engine would get it."""

    type: str
    payload: dict[str, Any]
    depth: int = 0


def dry_run(data: RuleData, days: int) -> list[Would]:
    check_rule(data)
    since = timezone.now() - datetime.timedelta(days=days)
    trigger = TRIGGERS[data.trigger]
    planned = [REGISTRY[kind].describe(params) for kind, params in data.actions]
    with transaction.atomic():
        if trigger.is_timer:
            subject, due = TIMERS[data.trigger]
            rows = due(data.trigger_params, timezone.now()).order_by("id")[:LIMIT]
            judged = [
                (None, _Now(data.trigger, {"subject_type": subject, "subject_id": pk}), subject, pk)
                for pk, _ in rows
            ]
        else:
            recorded = OutboxEvent.objects.filter(type=data.trigger, created_at__gte=since).order_by("-id")[
                :LIMIT
            ]
            judged = [(event.created_at, event, *subject_of(event)) for event in recorded]
        results = []
        for at, event, subject_type, subject_id in judged:
            context = conditions.context(subject_type, subject_id, event) if subject_id else None
            if context is None:
                fires, reason = False, f"{subject_type} {subject_id} no longer exists"
            elif data.condition:
                fires, reason = conditions.explain_text(data.condition, subject_type, context)
            else:
                fires, reason = True, "no condition"
            results.append(
                Would(
                    at, event.type, subject_type, subject_id, fires, reason, actions=planned if fires else []
                )
            )
        _label(results)
        transaction.set_rollback(True)
    return results


def _label(results: list[Would]) -> None:
    """Order numbers and customer names, one query per kind."""
    models = {"order": ("orders", "Order", "number"), "customer": ("customers", "Customer", "first_name")}
    for subject_type, (app, model, name) in models.items():
        ids = {r.subject_id for r in results if r.subject_type == subject_type and r.subject_id}
        labels = dict(apps.get_model(app, model).objects.filter(pk__in=ids).values_list("pk", name))
        for r in results:
            if r.subject_type == subject_type:
                r.label = str(labels.get(r.subject_id) or r.subject_id)
