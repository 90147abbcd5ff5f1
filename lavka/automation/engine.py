"""Runs rules on events (DESIGN.md §6): trigger → condition → ordered actions, each once.

The engine is an outbox receiver, so it runs in the dispatcher's transaction together with the
receiver's unique ReceiverDelivery row: a re-delivered event or a restarted worker finds the engine's
work committed or not at all. RuleRun is unique per (rule, event) and ActionEffect per key on top of
that. What an action does raises events one level deeper than the event that caused it; past
`LAVKA_AUTOMATION_MAX_DEPTH` the engine stops the chain and records why.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from lavka.automation import conditions
from lavka.automation.effects import Step, effect
from lavka.automation.models import ActionEffect, PostponedStep, Rule, RuleAction, RuleRun
from lavka.automation.triggers import TRIGGERS
from lavka.core import events
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent
from lavka.core.rows import insert_rows

log = logging.getLogger(__name__)

TIMER_EVENT = "automation.timer"


RULES_SECONDS = 2.0
_rules_lock = threading.Lock()
_rules_cache: tuple[float, dict[str, list[Rule]]] | None = None


def enabled_rules() -> dict[str, list[Rule]]:
    """The enabled rules with their actions, by trigger, as of at most RULES_SECONDS ago (a save in
    this process drops the cache at once; other workers see it within that time)."""
    global _rules_cache
    cached = _rules_cache
    if cached is not None and time.monotonic() - cached[0] < RULES_SECONDS:
        return cached[1]
    by_trigger: dict[str, list[Rule]] = {}
    for rule in Rule.objects.filter(is_active=True).prefetch_related("actions").order_by("position", "id"):
        by_trigger.setdefault(rule.trigger, []).append(rule)
    with _rules_lock:
        _rules_cache = (time.monotonic(), by_trigger)
    return by_trigger


def forget_rules() -> None:
    """Drop the cache of enabled rules (a rule saved here; tests, whose rows vanish on rollback)."""
    global _rules_cache
    with _rules_lock:
        _rules_cache = None


@receiver([post_save, post_delete], sender=Rule)
@receiver([post_save, post_delete], sender=RuleAction)
def _forget_rules(**kwargs: Any) -> None:
    forget_rules()


def triggered_types() -> set[str]:
    """The event types some enabled rule waits for (the dispatcher skips the engine for the rest)."""
    return {TIMER_EVENT if t.startswith("timer.") else t for t in enabled_rules()}


@events.receiver(events.ANY, name="automation.engine", wanted=triggered_types)
def on_event(event: OutboxEvent) -> None:
    rules = rules_for(event)
    if rules:
        run_rules(rules, event)


def rules_for(event: OutboxEvent) -> list[Rule]:
    if event.type == TIMER_EVENT:
        wanted = event.payload.get("rule_id")
        return [rule for rules in enabled_rules().values() for rule in rules if rule.pk == wanted]
    return enabled_rules().get(event.type, [])


def subject_of(event: Any) -> tuple[str, int | None]:
    """What the rule works on: the trigger's subject, named in the event's payload."""
    payload = event.payload or {}
    if event.type == TIMER_EVENT:
        return payload.get("subject_type", ""), payload.get("subject_id")
    trigger = TRIGGERS.get(event.type)
    if trigger is None:
        return "", None
    return trigger.subject, payload.get(f"{trigger.subject}_id")


@dataclass
class Verdict:
    """What a rule makes of an event, before doing anything (the dry run stops here)."""

    fires: bool
    reason: str


def load_context(rules: list[Rule], subject_type: str, subject_id: int | None, event: Any) -> Any:
    """The subject as every rule's condition reads it, loaded once for all of them (None: it is gone)."""
    if subject_id is None:
        return None
    needs: set[str] = set()
    for rule in rules:
        try:
            needs |= conditions.compiled_for(rule, subject_type).fields
        except ValidationError:
            continue  # judged (and reported) rule by rule
    return conditions.context(subject_type, subject_id, event, needs=needs)


def judge(rule: Rule, subject_type: str, subject_id: int | None, context: Any) -> Verdict:
    if subject_id is None:
        return Verdict(False, "the event names no order, customer or task")
    if context is None:
        return Verdict(False, f"{subject_type} {subject_id} no longer exists")
    try:
        return Verdict(*conditions.explain_rule(rule, subject_type, context))
    except ValidationError as exc:  # saved valid, but what it reads has gone since (a custom field)
        return Verdict(False, f"the condition is no longer valid: {'; '.join(exc.messages)}")


def run_rules(rules: list[Rule], event: OutboxEvent) -> list[RuleRun]:
    """Judge every rule on the event; record the runs that do nothing in one insert, then act."""
    subject_type, subject_id = subject_of(event)
    limit = settings.LAVKA_AUTOMATION_MAX_DEPTH
    context = None
    if event.depth < limit:
        context = load_context(rules, subject_type, subject_id, event)
    now = timezone.now()
    idle: list[RuleRun] = []
    firing: list[tuple[Rule, RuleRun]] = []
    for rule in rules:
        run = RuleRun(
            rule=rule,
            event=event,
            event_key=f"event:{event.pk}",
            event_type=event.type,
            subject_type=subject_type,
            subject_id=subject_id,
            depth=event.depth,
        )
        if event.depth >= limit:
            run.outcome, run.finished_at = RuleRun.Outcome.LOOP, now
            run.reason = (
                f"not run: the event is link {event.depth} of a chain of rules triggering rules (the limit"
                f" is {limit}); look for rules that set off each other"
            )
            log.warning(
                "rule %s: chain of rules stopped at depth %s (event %s)", rule.pk, event.depth, event.pk
            )
            idle.append(run)
            continue
        verdict = judge(rule, subject_type, subject_id, context)
        run.reason = verdict.reason
        if verdict.fires:
            run.outcome = RuleRun.Outcome.DONE
            firing.append((rule, run))
        else:
            run.outcome, run.finished_at = RuleRun.Outcome.SKIPPED, now
            idle.append(run)
    _insert_idle(idle, now)
    for rule, run in firing:
        run.save()
        go_on(run, rule, 0, context)
    return [*idle, *(run for _rule, run in firing)]


_RUN_COLUMNS = (
    "rule_id",
    "event_id",
    "event_key",
    "event_type",
    "subject_type",
    "subject_id",
    "depth",
    "outcome",
    "reason",
    "created_at",
    "finished_at",
)
_RUN_TYPES = (
    "bigint[]",
    "bigint[]",
    "text[]",
    "text[]",
    "text[]",
    "bigint[]",
    "int[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "timestamptz[]",
)


def _insert_idle(runs: list[RuleRun], now: Any) -> None:
    """The runs that did nothing, in one INSERT: every triggered rule leaves a run, so an event that a
    shop's 60 rules look at writes 60 rows, and the ORM's per-object preparation of them cost more than
    judging the rules."""
    connection = transaction.get_connection()
    moment = now if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now)
    rows = [
        (r.rule_id, r.event_id, r.event_key, r.event_type, r.subject_type, r.subject_id, r.depth, r.outcome)
        + (r.reason, moment, moment)
        for r in runs
    ]
    insert_rows(RuleRun._meta.db_table, _RUN_COLUMNS, _RUN_TYPES, rows)


def go_on(run: RuleRun, rule: Rule, position: int, context: Any) -> None:
    """Do the rule's actions from `position` on; stop at a wait (postponed) or at a failure."""
    actor = Actor.for_rule(rule)
    for action in _actions(rule):
        if action.position < position:
            continue
        if action.kind == "wait":
            _postpone(run, action)
            return
        if not _perform(run, rule, action, actor, context):
            return
    run.outcome, run.finished_at = RuleRun.Outcome.DONE, timezone.now()
    run.save(update_fields=["outcome", "finished_at", "reason"])


def _actions(rule: Rule) -> list[RuleAction]:
    return sorted(rule.actions.all(), key=lambda action: action.position)


def _perform(run: RuleRun, rule: Rule, action: RuleAction, actor: Actor, context: Any) -> bool:
    key = f"run:{run.pk}:action:{action.position}"
    if ActionEffect.objects.filter(key=key).exists():  # done before a wait that has now ended
        return True
    values = context.values if context is not None else {}
    step = Step(run, rule, action.params, run.subject_type, run.subject_id, key, actor, values)
    record = ActionEffect(run=run, position=action.position, kind=action.kind, key=key)
    try:
        # A savepoint: a refused action undoes only itself; the run records why and stops.
        with transaction.atomic(), events.caused_by(run.depth + 1):
            record.result = effect(action.kind).perform(step)
        record.status = ActionEffect.Status.DONE
    except ValidationError as exc:
        record.status, record.error = ActionEffect.Status.FAILED, "; ".join(_messages(exc))
    record.save()
    if record.status == ActionEffect.Status.FAILED:
        run.outcome, run.finished_at = RuleRun.Outcome.FAILED, timezone.now()
        run.reason = f"{run.reason}\naction {action.position} ({action.kind}) refused: {record.error}".strip()
        run.save(update_fields=["outcome", "finished_at", "reason"])
        return False
    return True


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{name}: {message}" for name, errors in exc.message_dict.items() for message in errors]
    return list(exc.messages)


def _postpone(run: RuleRun, action: RuleAction) -> None:
    minutes = int(action.params.get("minutes") or 0)
    PostponedStep.objects.create(
        run=run,
        position=action.position + 1,
        recheck=action.params.get("recheck") or "",
        due_at=timezone.now() + datetime.timedelta(minutes=minutes),
    )
    run.outcome = RuleRun.Outcome.WAITING
    run.save(update_fields=["outcome"])


def resume(step: PostponedStep) -> None:
    """Go on with a run whose wait is over (in the caller's transaction, with the step locked)."""
    run = RuleRun.objects.select_related("rule").get(pk=step.run_id)
    rule = run.rule
    step.done_at = timezone.now()
    step.save(update_fields=["done_at"])
    context = conditions.context(run.subject_type, run.subject_id, _Replayed(run))
    if context is None:
        _finish(run, RuleRun.Outcome.SKIPPED, f"after the wait: {run.subject_type} {run.subject_id} is gone")
        return
    if step.recheck:
        holds, why = conditions.explain_text(step.recheck, run.subject_type, context)
        if not holds:
            _finish(run, RuleRun.Outcome.SKIPPED, f"after the wait: {why}")
            return
    run.outcome = RuleRun.Outcome.DONE
    go_on(run, rule, step.position, context)


def _finish(run: RuleRun, outcome: str, why: str) -> None:
    run.outcome, run.finished_at = outcome, timezone.now()
    run.reason = f"{run.reason}\n{why}".strip()
    run.save(update_fields=["outcome", "finished_at", "reason"])


@dataclass
class _Replayed:
    """The event a waiting run started from, as far as conditions need it after the wait."""

    run: RuleRun

    @property
    def type(self) -> str:
        return self.run.event_type

    @property
    def payload(self) -> dict[str, Any]:
        return self.run.event.payload if self.run.event_id else {}

    @property
    def depth(self) -> int:
        return self.run.depth
