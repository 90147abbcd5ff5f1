"""What a rule can do: a registry of effects, one class each.

An effect checks its parameters when the rule is saved (`clean`), says in words what it would do for
the dry run (`describe`), and does it through the owning app's actions (`perform`). Every `perform`
gets a `Step` whose `key` is unique to (run, action): effects that create something pass it on as an
idempotency key, so a retried run finds what the first attempt made instead of making it twice.
Adding a kind of action (the messaging issue will add "send a message") is one new class here.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.core.actor import Actor


@dataclass
class Step:
    """One action of one run, as the effect sees it."""

    run: Any  # RuleRun
    rule: Any  # Rule
    params: dict[str, Any]
    subject_type: str  # "order", "customer", "task"
    subject_id: int
    key: str
    actor: Actor
    context: dict[str, Any]  # the subject's values, as conditions see them (for templates)

    def order(self) -> Any:
        Order = apps.get_model("orders", "Order")
        if self.subject_type != "order":
            raise ValidationError(_("This action needs an order."))
        return Order.objects.select_related("site", "manager", "customer").get(pk=self.subject_id)

    def customer(self) -> Any:
        Customer = apps.get_model("customers", "Customer")
        if self.subject_type == "customer":
            return Customer.objects.get(pk=self.subject_id)
        if self.subject_type == "order":
            return self.order().customer
        raise ValidationError(_("This action needs an order or a customer."))


class Effect:
    kind: ClassVar[str]
    label: ClassVar[Any]
    subjects: ClassVar[tuple[str, ...]] = ("order",)

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters, checked; a ValidationError names the parameter."""
        return {}

    def describe(self, params: dict[str, Any]) -> str:
        return str(self.label)

    def perform(self, step: Step) -> dict[str, Any]:
        raise NotImplementedError


REGISTRY: dict[str, Effect] = {}


def register(cls: type[Effect]) -> type[Effect]:
    REGISTRY[cls.kind] = cls()
    return cls


def effect(kind: str) -> Effect:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValidationError({"kind": _("Unknown action “%(kind)s”.") % {"kind": kind}}) from None


def _text(params: dict[str, Any], name: str, *, required: bool = True, limit: int = 1000) -> str:
    value = params.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise ValidationError({name: _("This field is required.")})
    if len(value) > limit:
        raise ValidationError({name: _("At most %(n)d characters.") % {"n": limit}})
    return value


def _positive_int(
    params: dict[str, Any], name: str, *, required: bool = True, limit: int = 10**6
) -> int | None:
    value = params.get(name)
    if value in (None, "") and not required:
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationError({name: _("Enter a whole number.")}) from None
    if not 0 <= number <= limit:
        raise ValidationError({name: _("Enter a number from 0 to %(n)d.") % {"n": limit}})
    return number


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}")


def render(template: str, context: dict[str, Any]) -> str:
    """`{{ order.number }}` → the value from the subject's context; nothing else is interpreted."""

    def value(match: re.Match) -> str:
        found: Any = context
        for part in match.group(1).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return "" if found is None else str(found)

    return _PLACEHOLDER.sub(value, template)


@register
class ChangeStatus(Effect):
    kind = "change_status"
    label = gettext_lazy("Change the status")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        code = _text(params, "status", limit=64)
        if not apps.get_model("orders", "Status").objects.filter(code=code, is_active=True).exists():
            raise ValidationError({"status": _("Unknown status “%(code)s”.") % {"code": code}})
        return {"status": code}

    def describe(self, params: dict[str, Any]) -> str:
        return _("Change the status to “%(status)s”") % params

    def perform(self, step: Step) -> dict[str, Any]:
        from lavka.orders.actions import change_status

        order = change_status(step.order(), step.params["status"], actor=step.actor)
        return {"status": order.status.code}


@register
class AssignManager(Effect):
    kind = "assign_manager"
    label = gettext_lazy("Assign a manager")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        rule_id = _positive_int(params, "assignment_rule", required=False)
        if (
            rule_id is not None
            and not apps.get_model("automation", "AssignmentRule").objects.filter(pk=rule_id).exists()
        ):
            raise ValidationError({"assignment_rule": _("Unknown assignment rule.")})
        return {"assignment_rule": rule_id}

    def describe(self, params: dict[str, Any]) -> str:
        if params.get("assignment_rule"):
            return _("Assign a manager by assignment rule #%(assignment_rule)s") % params
        return _("Assign a manager by the default assignment rule")

    def perform(self, step: Step) -> dict[str, Any]:
        from lavka.automation import assignment

        order = step.order()
        if order.manager_id:  # somebody has it already (by hand, or an earlier step): leave it
            return {"manager_id": order.manager_id, "kept": True}
        rule = None
        if step.params.get("assignment_rule"):
            rule = apps.get_model("automation", "AssignmentRule").objects.get(
                pk=step.params["assignment_rule"]
            )
        manager = assignment.assign_order(order, actor=step.actor, rule=rule)
        return {"manager_id": manager.pk if manager else None}


@register
class CreateTask(Effect):
    kind = "create_task"
    label = gettext_lazy("Create a task")
    subjects = ("order", "customer")
    PERFORMERS = ("manager", "supervisor")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        performer = params.get("performer") or "manager"
        if performer not in self.PERFORMERS:
            user_id = _positive_int(params, "performer")
            if not apps.get_model("accounts", "User").objects.filter(pk=user_id, is_active=True).exists():
                raise ValidationError({"performer": _("Unknown user.")})
            performer = user_id
        return {
            "title": _text(params, "title", limit=255),
            "description": _text(params, "description", required=False, limit=5000),
            "performer": performer,
            "due_minutes": _positive_int(params, "due_minutes", required=False, limit=60 * 24 * 365),
            "working_time": bool(params.get("working_time", True)),
        }

    def describe(self, params: dict[str, Any]) -> str:
        return _("Create the task “%(title)s” for %(performer)s") % params

    def _performer(self, step: Step, order: Any, customer: Any) -> Any:
        User = apps.get_model("accounts", "User")
        who = step.params["performer"]
        manager = (order.manager if order is not None else None) or (customer.manager if customer else None)
        if who == "manager":
            if manager is None:
                raise ValidationError({"performer": _("The order has no responsible manager.")})
            return manager
        if who == "supervisor":
            supervisor = manager.team.supervisor if manager is not None and manager.team_id else None
            supervisor = (
                supervisor or User.objects.filter(role="supervisor", is_active=True).order_by("id").first()
            )
            if supervisor is None:
                raise ValidationError({"performer": _("There is no supervisor to give the task to.")})
            return supervisor
        return User.objects.get(pk=who)

    def perform(self, step: Step) -> dict[str, Any]:
        from django.utils import timezone

        from lavka.tasks import actions as tasks
        from lavka.tasks.working_time import due_in_working_minutes

        order = step.order() if step.subject_type == "order" else None
        customer = order.customer if order is not None else step.customer()
        performer = self._performer(step, order, customer)
        due = None
        if step.params.get("due_minutes") is not None:
            minutes = step.params["due_minutes"]
            if step.params.get("working_time", True):
                due = due_in_working_minutes(performer, minutes, timezone.now())
            else:
                due = timezone.now() + datetime.timedelta(minutes=minutes)
        data = tasks.TaskData(
            text=render(step.params["title"], step.context)[:255],
            commentary=render(step.params.get("description") or "", step.context),
            performer=performer,
            due_at=due,
            due_at_set=due is not None,
            customer=customer,
            customer_set=customer is not None,
            order=order,
            order_set=order is not None,
        )
        task = tasks.create_task(data, actor=step.actor, key=step.key)
        return {"task_id": task.pk}


@register
class AddTag(Effect):
    kind = "add_tag"
    label = gettext_lazy("Tag the customer")
    subjects = ("order", "customer")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tag": _text(params, "tag", limit=100)}

    def describe(self, params: dict[str, Any]) -> str:
        return _("Tag the customer “%(tag)s”") % params

    def perform(self, step: Step) -> dict[str, Any]:
        from lavka.customers.actions import CustomerData, update_customer

        update_customer(step.customer(), CustomerData(add_tags=[step.params["tag"]]), actor=step.actor)
        return {"tag": step.params["tag"]}


@register
class AddComment(Effect):
    kind = "add_comment"
    label = gettext_lazy("Add a comment")
    subjects = ("order", "customer")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"text": _text(params, "text", limit=2000)}

    def describe(self, params: dict[str, Any]) -> str:
        return _("Add the comment “%(text)s”") % params

    def perform(self, step: Step) -> dict[str, Any]:
        text = render(step.params["text"], step.context)
        if step.subject_type == "order":
            from lavka.orders.actions import OrderData, update_order

            order = step.order()
            comment = f"{order.manager_comment}\n{text}".strip() if order.manager_comment else text
            update_order(order, OrderData(manager_comment=comment[:5000]), actor=step.actor)
            return {"order_comment": True}
        from lavka.customers.actions import add_note

        note = add_note(step.customer(), text, actor=step.actor)
        return {"note_id": note.pk}


@register
class SetCustomField(Effect):
    kind = "set_custom_field"
    label = gettext_lazy("Set a custom field")
    subjects = ("order", "customer")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        code = _text(params, "code", limit=64)
        if not apps.get_model("core", "CustomField").objects.filter(code=code).exists():
            raise ValidationError({"code": _("Unknown custom field “%(code)s”.") % {"code": code}})
        return {"code": code, "value": params.get("value")}

    def describe(self, params: dict[str, Any]) -> str:
        return _("Set “%(code)s” to “%(value)s”") % params

    def perform(self, step: Step) -> dict[str, Any]:
        code, value = step.params["code"], step.params.get("value")
        if step.subject_type == "order":
            from lavka.orders.actions import OrderData, update_order

            order = step.order()
            update_order(
                order, OrderData(custom_fields={**(order.custom_fields or {}), code: value}), actor=step.actor
            )
        else:
            from lavka.customers.actions import CustomerData, update_customer

            customer = step.customer()
            fields = {**(customer.custom_fields or {}), code: value}
            update_customer(customer, CustomerData(custom_fields=fields), actor=step.actor)
        return {code: value}


@register
class CallWebhook(Effect):
    """POST the event and its subject to a URL, from a job, once (the job's key is the step's key)."""

    kind = "call_webhook"
    label = gettext_lazy("Call a webhook")
    subjects = ("order", "customer", "task")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        from lavka.integrations.webhooks.models import http_url

        url = _text(params, "url", limit=2000)
        try:
            http_url(url)
        except ValidationError as exc:
            raise ValidationError({"url": exc.messages}) from None
        return {"url": url, "secret": _text(params, "secret", required=False, limit=128)}

    def describe(self, params: dict[str, Any]) -> str:
        return _("POST to %(url)s") % params

    def perform(self, step: Step) -> dict[str, Any]:
        from lavka.automation.jobs import CALL_WEBHOOK
        from lavka.core.jobs import enqueue

        job = enqueue(CALL_WEBHOOK, step.run.pk, step.key, key=step.key)
        return {"job_id": job.pk}


@register
class Wait(Effect):
    """Handled by the engine: the run stops here and goes on later, after re-checking `recheck`."""

    kind = "wait"
    label = gettext_lazy("Wait, then re-check")
    subjects = ("order", "customer", "task")

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "minutes": _positive_int(params, "minutes", limit=60 * 24 * 90),
            "recheck": _text(params, "recheck", required=False, limit=2000),
        }

    def describe(self, params: dict[str, Any]) -> str:
        text = _("Wait %(minutes)s min") % params
        if params.get("recheck"):
            text += _(", then go on only if %(recheck)s") % params
        return text
