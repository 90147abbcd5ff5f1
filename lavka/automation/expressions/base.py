"""What the compiler and the functions share: the evaluation context, closures' shape, decimal
arithmetic, and which types compare with which."""

from __future__ import annotations

import datetime
import decimal
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lavka.automation.expressions.types import ORDERED, Type

# Exact decimal arithmetic with room for money; an overflow gives null rather than an exception.
DECIMAL = decimal.Context(
    prec=34,
    Emax=999_999,
    Emin=-999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
ZERO = Decimal(0)
# What a context that does not match its schema can raise while evaluating (reported as ExpressionError).
EVALUATION_ERRORS = (ArithmeticError, TypeError, AttributeError, ValueError, KeyError, RecursionError)
EQUATABLE = frozenset({"string", "bool", "datetime", "date"})


@dataclass
class Context:
    """What a condition is evaluated against.

    `values`: the top-level variables as plain data ({"order": {...}, "now": {...}, "event": {...}}).
    `changed`, `old`, `new`: what the event changed, for changed()/old()/new(). `now`: the moment of
    evaluation, aware, in the site's time zone (days_since() counts from it).
    """

    values: dict[str, Any]
    changed: frozenset[str] = frozenset()
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)
    now: datetime.datetime | None = None


# A compiled node: fn(context, env) → value, where env holds the variables (and names bound by any() …).
Fn = Callable[[Context, dict[str, Any]], Any]
# A scope maps a name bound inside any()/all()/… to its type and the path of the list it runs over.
Scope = dict[str, tuple[Type, str]]


def suggest(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def equatable(a: Type, b: Type) -> bool:
    if a.kind == "null" or b.kind == "null":
        return True
    if a.numeric and b.numeric:
        return True
    return a.kind == b.kind and a.kind in EQUATABLE


def orderable(a: Type, b: Type) -> bool:
    if a.kind not in ORDERED or b.kind not in ORDERED:
        return False
    return (a.numeric and b.numeric) or a.kind == b.kind


def truth(t: Type, fn: Fn) -> Fn:
    """A closure giving the value's truth: null, false, 0, "" and [] are false; an object is true."""
    if t.kind == "bool":
        return fn
    if t.kind == "object":
        return lambda c, e: fn(c, e) is not None
    return lambda c, e: bool(fn(c, e))
