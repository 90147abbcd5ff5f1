"""The rules a shop starts with (the demo has them on; a new shop adds them from the rules page or
with `lavka rules defaults`). Each is an ordinary rule the shop may change or switch off."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from lavka.automation.actions import RuleData, save_rule, set_rule_active
from lavka.automation.assignment_actions import AssignmentRuleData, save_assignment_rule
from lavka.automation.models import AssignmentRule, Rule
from lavka.core.actor import Actor


def default_rules() -> list[RuleData]:
    return [
        RuleData(
            name=_("Paid in full → prepayment received"),
            description=_("When the payments reach the order's total, the order moves on."),
            trigger="orders.fully_paid",
            condition=(
                '(order.status_group == "new" or order.status_group == "approval")'
                ' and order.status != "prepayed"'
            ),
            actions=[("change_status", {"status": "prepayed"})],
            position=10,
        ),
        RuleData(
            name=_("Delivered → complete"),
            description=_("The delivery service reports the parcel handed over: the order is complete."),
            trigger="orders.updated",
            condition=(
                'changed("delivery_status") and new("delivery_status") == "delivered"'
                ' and order.status_group == "delivery"'
            ),
            actions=[("change_status", {"status": "complete"})],
            position=20,
        ),
        RuleData(
            name=_("New order → a manager and a call"),
            description=_("Assign the order by the default assignment rule and ask the manager to call."),
            trigger="orders.created",
            condition='order.status_group == "new"',
            actions=[
                ("assign_manager", {}),
                (
                    "create_task",
                    {
                        "title": _("Call the customer about order {{ order.number }}"),
                        "performer": "manager",
                        "due_minutes": 15,
                        "working_time": True,
                    },
                ),
            ],
            position=30,
        ),
        RuleData(
            name=_("New for 30 minutes → the supervisor"),
            description=_("Nobody has taken up the order: the supervisor gets a task to see to it."),
            trigger="timer.order_in_status",
            trigger_params={"status": "new", "minutes": 30},
            actions=[
                (
                    "create_task",
                    {
                        "title": _("Order {{ order.number }} has waited 30 minutes in “New”"),
                        "performer": "supervisor",
                        "due_minutes": 15,
                        "working_time": False,
                    },
                )
            ],
            position=40,
        ),
    ]


@transaction.atomic
def install_default_rules(*, actor: Actor, enable: bool = False) -> list[Rule]:
    """Add the default rules that are not there yet (by name); switch them on if asked. The "new
    order" rule assigns by the default assignment rule: where there is none, one is added that gives
    orders in turn to the working managers of the order's site."""
    if not AssignmentRule.objects.filter(is_default=True).exists():
        save_assignment_rule(
            None,
            AssignmentRuleData(
                name=_("Everyone in turn"), strategy=AssignmentRule.Strategy.ROUND_ROBIN, is_default=True
            ),
            actor=actor,
        )
    rules = []
    for data in default_rules():
        rule = Rule.objects.filter(name=data.name).first() or save_rule(None, data, actor=actor)
        if enable and not rule.is_active:
            rule = set_rule_active(rule, True, actor=actor)
        rules.append(rule)
    return rules
