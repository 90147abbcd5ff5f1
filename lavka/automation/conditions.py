"""Rules' conditions, as the engine, the editor and the dry run use them: checked against the schema of
the trigger's subject, compiled once per rule version, and explained when they do not hold.

Schemas include the shop's custom fields, so they are cached for a short while per process; compiled
conditions are cached by (rule, its last change), so editing a rule takes effect at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.exceptions import ValidationError

from lavka.automation.expressions import Compiled, Context, ExpressionError, compile_condition, explain
from lavka.automation.subjects import build_context, forget_references, schema_for

SCHEMA_SECONDS = 10.0
_lock = threading.Lock()
_schemas: dict[str, tuple[float, Any]] = {}
_compiled: dict[tuple[int, Any], Compiled] = {}


def schema(subject: str) -> Any:
    now = time.monotonic()
    with _lock:
        cached = _schemas.get(subject)
        if cached is not None and now - cached[0] < SCHEMA_SECONDS:
            return cached[1]
    fresh = schema_for(subject)
    with _lock:
        _schemas[subject] = (now, fresh)
    return fresh


def forget() -> None:
    """Drop the caches (tests; custom fields changed)."""
    with _lock:
        _schemas.clear()
        _compiled.clear()
    forget_references()


def check(text: str, subject: str, *, field_name: str = "condition") -> None:
    """A ValidationError naming `field_name` (message with the position) if `text` is not a valid
    condition on `subject`."""
    try:
        compile_condition(text, schema(subject))
    except ExpressionError as exc:
        raise ValidationError({field_name: [exc]}) from None


def compiled_for(rule: Any, subject: str) -> Compiled:
    key = (rule.pk, rule.updated_at)
    found = _compiled.get(key)
    if found is None:
        found = compile_condition(rule.condition or "", schema(subject))
        with _lock:
            if len(_compiled) > 10_000:  # old versions of edited rules
                _compiled.clear()
            _compiled[key] = found
    return found


def context(subject: str, subject_id: int, event: Any, *, needs: Any = None) -> Context | None:
    return build_context(subject, subject_id, event, schema=schema(subject), needs=needs)


def explain_rule(rule: Any, subject: str, ctx: Context) -> tuple[bool, str]:
    """Whether the rule's condition holds, and why (or why not), in words."""
    compiled = compiled_for(rule, subject)
    if compiled.tree is None:
        return True, "no condition"
    return explain(compiled, ctx)


def explain_text(text: str, subject: str, ctx: Context) -> tuple[bool, str]:
    """The same for a condition that is not a saved rule's (a wait's re-check, a dry run)."""
    if not text.strip():
        return True, "no condition"
    try:
        compiled = compile_condition(text, schema(subject))
    except ExpressionError as exc:  # the schema changed since it was saved (a custom field went away)
        return False, f"the condition is no longer valid: {exc.message}"
    return explain(compiled, ctx)


def describe_error(exc: ValidationError, text: str) -> dict[str, Any]:
    """What the editor shows for a bad condition: the message, line and column, and a caret."""
    found = _expression_error(exc)
    if found is None:
        return {"message": "; ".join(exc.messages)}
    line_start = text.rfind("\n", 0, found.position) + 1
    line_end = text.find("\n", found.position)
    source_line = text[line_start : line_end if line_end >= 0 else len(text)]
    return {
        "message": found.message,
        "line": found.line,
        "column": found.column,
        "source_line": source_line,
        "pointer": " " * (found.position - line_start) + "^",
    }


def _expression_error(exc: ValidationError) -> ExpressionError | None:
    if isinstance(exc, ExpressionError):
        return exc
    for errors in getattr(exc, "error_dict", {}).values():
        for error in errors:
            if isinstance(error, ExpressionError):
                return error
    return None
