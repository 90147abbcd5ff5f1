"""Rule pages for supervisors and admins: list, editor (the condition checked as you type), switch,
run log, dry run, export and import. Managers see the runs on their own orders (the order card)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lavka.automation import actions, conditions
from lavka.automation.dry_run import dry_run
from lavka.automation.forms import ACTION_FIELDS, ActionRow, RuleForm, action_rows, kind_choices, rule_data
from lavka.automation.models import Rule, RuleRun
from lavka.automation.triggers import TRIGGERS
from lavka.core.actor import actor_of
from lavka.core.permissions import sees_all_in_sites
from lavka.core.ui import paginate


def rule_managers_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Supervisors and admins; anyone else gets 404 (the pages' existence does not leak)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not sees_all_in_sites(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@rule_managers_only
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(Rule.objects.prefetch_related("actions"))
    day_ago = timezone.now() - timezone.timedelta(days=1)
    loops = RuleRun.objects.filter(outcome=RuleRun.Outcome.LOOP, created_at__gte=day_ago).select_related(
        "rule"
    )
    context = {
        "nav": "rules",
        "rows": [(rule, TRIGGERS.get(rule.trigger)) for rule in rules],
        "loops": loops[:20],
    }
    return render(request, "automation/rules.html", context)


def _errors_by_row(exc: ValidationError, rows: list[ActionRow]) -> dict[str, list[str]]:
    """Split a save's errors: `actions.N.param` go to their row, the rest stay with the form."""
    rest: dict[str, list[str]] = {}
    for name, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [("", exc.messages)]:
        parts = name.split(".")
        if parts[0] == "actions" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(rows):
            rows[int(parts[1])].errors.setdefault(parts[2] if len(parts) > 2 else "kind", []).extend(errors)
        else:
            rest.setdefault(name.replace("trigger_params.", ""), []).extend(errors)
    return rest


@rule_managers_only
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(Rule.objects.prefetch_related("actions"), pk=pk) if pk else None
    if request.method == "POST":
        form = RuleForm(request.POST)
        rows = action_rows(request.POST)
        if form.is_valid():
            try:
                saved = actions.save_rule(rule, rule_data(form, rows), actor=actor_of(request))
            except ValidationError as exc:
                for name, errors in _errors_by_row(exc, rows).items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                messages.success(request, _("Rule saved."))
                return redirect("automation:edit", pk=saved.pk)
    else:
        initial = {"position": 100, "trigger": "orders.created"}
        rows = []
        if rule is not None:
            data = actions.rule_data(rule)
            initial = {
                "name": data.name,
                "description": data.description,
                "trigger": data.trigger,
                "condition": data.condition,
                "position": data.position,
                **data.trigger_params,
            }
            rows = [ActionRow(i, kind, params) for i, (kind, params) in enumerate(data.actions)]
        form = RuleForm(initial=initial)
    if not rows:
        rows = [ActionRow(0, "create_task", {"performer": "manager", "working_time": True})]
    context = {
        "nav": "rules",
        "title": rule.name if rule else _("New rule"),
        "rule": rule,
        "form": form,
        "rows": rows,
        "kinds": kind_choices(),
        "triggers": TRIGGERS,
    }
    return render(request, "automation/rule_form.html", context, status=400 if form.errors else 200)


@rule_managers_only
def action_row(request: HttpRequest) -> HttpResponse:
    """One action row (htmx): a new one, or the same row after its kind changed."""
    try:
        index = max(0, min(int(request.GET.get("index", "0")), 19))
    except ValueError:
        index = 0
    kind = request.GET.get(f"actions-{index}-kind") or request.GET.get("kind") or "create_task"
    if kind not in ACTION_FIELDS:
        kind = "create_task"
    row = ActionRow(index, kind, {"performer": "manager", "working_time": True})
    return render(request, "automation/_action_row.html", {"row": row, "kinds": kind_choices()})


@rule_managers_only
@require_POST
def check_condition(request: HttpRequest) -> HttpResponse:
    """Validate a condition as it is typed (htmx): OK, or the error with its position."""
    trigger = TRIGGERS.get(request.POST.get("trigger", ""))
    text = request.POST.get(request.POST.get("field", "condition"), "")
    error = None
    if trigger is not None and text.strip():
        try:
            conditions.check(text, trigger.subject)
        except ValidationError as exc:
            error = conditions.describe_error(exc, text)
    return render(request, "automation/_check.html", {"error": error, "empty": not text.strip()})


@rule_managers_only
@require_POST
def rule_state(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    try:
        actions.set_rule_active(rule, request.POST.get("state") == "on", actor=actor_of(request))
    except ValidationError as exc:
        messages.error(request, _("The rule cannot be enabled: %(e)s") % {"e": "; ".join(exc.messages)})
    else:
        messages.success(
            request, _("Rule enabled.") if request.POST.get("state") == "on" else _("Rule switched off.")
        )
    if request.POST.get("back") == "edit":
        return redirect("automation:edit", pk=pk)
    return redirect("automation:list")


@rule_managers_only
def rule_runs(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    runs = rule.runs.prefetch_related("effects")
    outcome = request.GET.get("outcome", "")
    if outcome in RuleRun.Outcome.values:
        runs = runs.filter(outcome=outcome)
    page = paginate(request, runs)
    context = {
        "nav": "rules",
        "rule": rule,
        "page": page,
        "outcome": outcome,
        "outcomes": RuleRun.Outcome.choices,
    }
    return render(request, "automation/runs.html", context)


@rule_managers_only
def rule_dry_run(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule.objects.prefetch_related("actions"), pk=pk)
    try:
        days = max(1, min(int(request.GET.get("days", "7")), 90))
    except ValueError:
        days = 7
    results, error = [], None
    if "run" in request.GET:
        try:
            results = dry_run(actions.rule_data(rule), days)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
    context = {
        "nav": "rules",
        "rule": rule,
        "days": days,
        "ran": "run" in request.GET,
        "results": results,
        "firing": [r for r in results if r.fires],
        "error": error,
    }
    return render(request, "automation/dry_run.html", context)


@rule_managers_only
def rules_export(request: HttpRequest) -> HttpResponse:
    document = actions.export_rules(list(Rule.objects.prefetch_related("actions")))
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="lavka-rules.json"'
    return response


@rule_managers_only
@require_POST
def rules_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    try:
        if upload is None or upload.size > 2 * 1024 * 1024:
            raise ValidationError(_("Choose a JSON file of at most 2 MB."))
        document = json.loads(upload.read().decode("utf-8"))
        rules = actions.import_rules(document, actor=actor_of(request))
    except (UnicodeDecodeError, json.JSONDecodeError):
        messages.error(request, _("The file is not valid JSON."))
    except ValidationError as exc:
        messages.error(request, "; ".join(f"{k}: {', '.join(v)}" for k, v in _message_dict(exc).items()))
    else:
        messages.success(request, _("%(n)d rules imported.") % {"n": len(rules)})
    return redirect("automation:list")


def _message_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {_("file"): exc.messages}


@rule_managers_only
@require_POST
def rules_defaults(request: HttpRequest) -> HttpResponse:
    from lavka.automation.defaults import install_default_rules

    rules = install_default_rules(actor=actor_of(request))
    messages.success(
        request, _("%(n)d default rules are in place; switch on the ones you want.") % {"n": len(rules)}
    )
    return redirect("automation:list")


def order_runs(request: HttpRequest, order_pk: int) -> HttpResponse:
    """The order card's panel: which rules ran on this order, and why they did or did not act."""
    from lavka.orders.models import Order

    order = get_object_or_404(Order.objects.visible_to(request.user), pk=order_pk)
    runs = RuleRun.objects.filter(subject_type="order", subject_id=order.pk).select_related("rule")[:50]
    return render(request, "automation/_order_runs.html", {"order": order, "runs": runs})
