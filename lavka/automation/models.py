"""Rules (trigger → condition → ordered actions), their runs and effects, and assignment rules.

A rule run is unique per (rule, event) and each action's effect per idempotency key, so that a
re-delivered event or a restarted worker never repeats what a rule did (DESIGN.md §6).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Rule(models.Model):
    """When `trigger` happens and `condition` holds for its subject, run the actions in order.

    `trigger` is a domain event type ("orders.created") or a time trigger ("timer.order_in_status",
    with `trigger_params` such as {"status": "new", "minutes": 30}).
    """

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    trigger = models.CharField(_("trigger"), max_length=100)
    trigger_params = models.JSONField(_("trigger parameters"), default=dict, blank=True)
    condition = models.TextField(_("condition"), blank=True, help_text=_("Empty: always."))
    is_active = models.BooleanField(_("enabled"), default=False)
    position = models.PositiveIntegerField(_("position"), default=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["trigger", "is_active"], name="rule_trigger_idx")]

    def __str__(self) -> str:
        return self.name


class RuleAction(models.Model):
    """One step of a rule: `kind` names an action in the registry, `params` its settings."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveIntegerField(_("position"))
    kind = models.CharField(_("action"), max_length=64)
    params = models.JSONField(_("parameters"), default=dict, blank=True)

    class Meta:
        ordering = ["rule", "position"]
        constraints = [models.UniqueConstraint(fields=["rule", "position"], name="rule_action_position")]

    def __str__(self) -> str:
        return f"{self.rule_id}.{self.position}: {self.kind}"


class RuleRun(models.Model):
    """What one rule made of one event: fired or not, and why; unique per (rule, event)."""

    class Outcome(models.TextChoices):
        SKIPPED = "skipped", _("condition false")
        DONE = "done", _("done")
        WAITING = "waiting", _("waiting")
        FAILED = "failed", _("failed")
        LOOP = "loop", _("stopped: chain too deep")

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    event = models.ForeignKey("core.OutboxEvent", null=True, blank=True, on_delete=models.SET_NULL)
    # The event's identity outlives the outbox row (outbox rows may be pruned): uniqueness is on it.
    event_key = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    subject_type = models.CharField(max_length=32, blank=True)  # "order", "customer", "task"
    subject_id = models.BigIntegerField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "event_key"], name="rule_run_once_per_event")]
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "-id"], name="rule_run_subject_idx"),
            models.Index(fields=["rule", "-id"], name="rule_run_rule_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}@{self.event_key}: {self.outcome}"


class ActionEffect(models.Model):
    """One action of one run, done once: `key` (derived from the run and the step) is unique."""

    class Status(models.TextChoices):
        DONE = "done", _("done")
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="effects")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    result = models.JSONField(default=dict, blank=True)  # what was made: {"task_id": 7}, {"status": "paid"}
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "position"]


class PostponedStep(models.Model):
    """A run waiting to go on from `position` at `due_at` (a "wait" action): durable across restarts."""

    run = models.OneToOneField(RuleRun, on_delete=models.CASCADE, related_name="postponed")
    position = models.PositiveIntegerField()
    recheck = models.TextField(blank=True)  # a condition to hold again before going on
    due_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"], name="postponed_due_idx", condition=models.Q(done_at__isnull=True)
            )
        ]


class TimerMark(models.Model):
    """A time-based event already raised: one per (rule, subject, anchor), e.g. the moment the order
    entered the status the rule watches, so a timer fires once per stay in that status."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="timer_marks")
    subject_id = models.BigIntegerField()
    anchor = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "subject_id", "anchor"], name="timer_mark_once")
        ]


class AssignmentRule(models.Model):
    """How new work finds a manager: which orders it applies to, among whom, and how to choose."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("in turn")
        LEAST_LOADED = "least_loaded", _("least loaded")
        STICKY = "sticky", _("the customer's manager, else in turn")

    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("enabled"), default=True)
    is_default = models.BooleanField(_("default"), default=False)
    position = models.PositiveIntegerField(_("position"), default=100)
    strategy = models.CharField(_("strategy"), max_length=16, choices=Strategy.choices)
    # Which orders: empty lists mean "any".
    sites = models.ManyToManyField("core.Site", blank=True, related_name="+", verbose_name=_("sites"))
    order_types = models.JSONField(_("order types"), default=list, blank=True)  # codes
    order_methods = models.JSONField(_("order methods"), default=list, blank=True)  # codes
    # Among whom: a team, else explicit users, else every active manager of the order's site.
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assignment_rules", verbose_name=_("managers")
    )
    max_open = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("Open orders a manager may hold; empty: no limit.")
    )
    # Round-robin's memory: the last manager who got work under this rule (its row is locked to choose).
    last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
