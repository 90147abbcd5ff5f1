"""The functions conditions may call: changed/old/new, the list functions and a few on values.

Each is compiled like an operator: its arguments are checked, then one closure is returned that
computes the result, with null in giving null (or false, or 0) out rather than an exception.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from lavka.automation.expressions.base import DECIMAL, ZERO, Context, Fn, Scope, orderable, suggest, truth
from lavka.automation.expressions.nodes import Call, Literal
from lavka.automation.expressions.types import BOOL, MONEY, NUMBER, ORDERED, STRING, Type

if TYPE_CHECKING:
    from lavka.automation.expressions.compiler import Compiler

# (least, most) arguments; None: no upper bound.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "changed": (1, 1),
    "old": (1, 1),
    "new": (1, 1),
    "count": (1, 2),
    "sum": (1, 2),
    "min": (1, None),
    "max": (1, None),
    "any": (1, 2),
    "all": (1, 2),
    "lower": (1, 1),
    "len": (1, 1),
    "days_since": (1, 1),
}
LIST_FUNCTIONS = frozenset({"count", "sum", "min", "max", "any", "all"})


def compile_call(compiler: Compiler, node: Call, scope: Scope) -> tuple[Type, Fn]:
    name = node.name
    if name not in FUNCTIONS:
        if name in compiler.schema.variables or name in scope:
            raise compiler.error(f"'{name}' is not a function", node.start)
        raise compiler.error(f"unknown function '{name}'", node.start, suggest(name, FUNCTIONS))
    least, most = FUNCTIONS[name]
    count = len(node.args)
    if count < least or (most is not None and count > most):
        if most is None:
            wanted = f"at least {least} argument" + ("s" if least > 1 else "")
        elif least == most:
            wanted = f"{least} argument" + ("s" if least > 1 else "")
        else:
            wanted = f"{least} or {most} arguments"
        raise compiler.error(f"{name}() takes {wanted}, got {count}", node.start)
    if name in ("changed", "old", "new"):
        return _change(compiler, node)
    if name in LIST_FUNCTIONS:
        return _list_function(compiler, node, scope)
    at, af = compiler.compile(node.args[0], scope)
    arg = node.args[0]
    if name == "lower":
        if at.kind not in ("string", "null"):
            raise compiler.error(f"lower() needs a string, not {at}", arg.start)

        def lower(c: Context, e: dict[str, Any]) -> Any:
            v = af(c, e)
            return None if v is None else v.lower()

        return STRING.null() if at.nullable else STRING, lower
    if name == "len":
        if at.kind not in ("string", "list", "null"):
            raise compiler.error(f"len() needs a string or a list, not {at}", arg.start)

        def length(c: Context, e: dict[str, Any]) -> Any:
            v = af(c, e)
            return None if v is None else len(v)

        return NUMBER.null() if at.nullable else NUMBER, length
    # days_since
    if at.kind not in ("datetime", "date"):
        raise compiler.error(f"days_since() needs a date or a date and time, not {at}", arg.start)
    whole = at.kind == "datetime"

    def days_since(c: Context, e: dict[str, Any]) -> Any:
        v = af(c, e)
        if v is None:
            return None
        now = c.now or timezone.now()
        if whole:
            return int((now - v).total_seconds() // 86400)
        return (now.date() - v).days

    return NUMBER.null(), days_since


def _change(compiler: Compiler, node: Call) -> tuple[Type, Fn]:
    name = node.name
    arg = node.args[0]
    if not (isinstance(arg, Literal) and arg.kind == "string"):
        raise compiler.error(f"{name}() needs a field name in quotes", arg.start, f'e.g. {name}("status")')
    field_name = arg.value
    changes = compiler.schema.changes
    if field_name not in changes:
        if field_name.startswith("custom."):
            hint = suggest(field_name, changes) or "there is no custom field with this code"
        else:
            hint = suggest(field_name, changes) or "known: " + ", ".join(sorted(changes)[:12])
        raise compiler.error(f"unknown field '{field_name}' in {name}()", arg.start, hint)
    compiler.uses_changes = True
    if name == "changed":
        return BOOL, lambda c, e: field_name in c.changed
    vt = changes[field_name]
    if vt is None:
        raise compiler.error(
            f"{name}() has no value for '{field_name}'", arg.start, f'use changed("{field_name}")'
        )
    if name == "old":
        return vt.null(), lambda c, e: c.old.get(field_name)
    return vt.null(), lambda c, e: c.new.get(field_name)


def _list_function(compiler: Compiler, node: Call, scope: Scope) -> tuple[Type, Fn]:
    name = node.name
    first = node.args[0]
    lt, lf = compiler.compile(first, scope)
    if lt.kind != "list" or lt.item is None:
        if name in ("min", "max") and len(node.args) > 1:
            return _min_max_of_values(compiler, node, scope, lt, lf)
        hint = "use len() for a string" if name == "count" and lt.kind == "string" else ""
        raise compiler.error(f"{name}() needs a list first, not {lt}", first.start, hint)
    item_type = lt.item
    # The element's name inside the second argument: `item` for order.items, and `it` always.
    bind = lt.item_name
    ef: Fn | None = None
    et = item_type
    if len(node.args) == 2:
        base = compiler.path(first, scope) or compiler.src(first)
        inner = {**scope, bind: (item_type, base), "it": (item_type, base)}
        et, ef = compiler.compile(node.args[1], inner)
    names = (bind,) if bind == "it" else (bind, "it")
    if name in ("any", "all", "count"):
        if name == "count" and ef is None:
            return NUMBER, lambda c, e: len(lf(c, e) or ())
        tests = _each(lf, truth(et, ef if ef is not None else _element), names)
        return (NUMBER if name == "count" else BOOL), _LIST_TESTS[name](lf, tests)
    each = _each(lf, ef, names)
    if name == "sum":
        if not et.numeric:
            raise compiler.error(f"sum() needs numbers, not {et}", node.args[-1].start)

        def total(c: Context, e: dict[str, Any]) -> Any:
            acc = ZERO
            try:
                for v in each(c, e):
                    if v is not None:
                        acc = DECIMAL.add(acc, v)
            except decimal.DecimalException:
                return None
            return acc

        return et.strict(), total
    if et.kind not in ORDERED:
        raise compiler.error(f"{name}() needs numbers, strings or dates, not {et}", node.args[-1].start)
    pick = min if name == "min" else max

    def extreme(c: Context, e: dict[str, Any]) -> Any:
        values = [v for v in each(c, e) if v is not None]
        return pick(values) if values else None

    return et.null(), extreme


def _min_max_of_values(
    compiler: Compiler, node: Call, scope: Scope, first: Type, first_fn: Fn
) -> tuple[Type, Fn]:
    """min(a, b, …) / max(a, b, …) of values rather than of a list; nulls are left out."""
    types, fns = [first], [first_fn]
    for arg in node.args[1:]:
        t, fn = compiler.compile(arg, scope)
        types.append(t)
        fns.append(fn)
    for arg, t in zip(node.args, types, strict=True):
        if not orderable(types[0], t) or not orderable(t, t):
            raise compiler.error(f"{node.name}() cannot compare {types[0]} with {t}", arg.start)
    result = MONEY if any(t.kind == "money" for t in types) else types[0].strict()
    if any(t.nullable for t in types):
        result = result.null()
    pick = min if node.name == "min" else max

    def extreme(c: Context, e: dict[str, Any]) -> Any:
        values = [v for v in (f(c, e) for f in fns) if v is not None]
        return pick(values) if values else None

    return result, extreme


def _element(c: Context, e: dict[str, Any]) -> Any:
    return e.get("it")


def _each(lf: Fn, ef: Fn | None, names: tuple[str, ...]) -> Callable[[Context, dict[str, Any]], Any]:
    """An iterator over a list's elements, or over the second argument evaluated for each element."""

    def each(c: Context, e: dict[str, Any]) -> Any:
        xs = lf(c, e)
        if not xs:
            return
        if ef is None:
            yield from xs
            return
        env = dict(e)
        for x in xs:
            for n in names:
                env[n] = x
            yield ef(c, env)

    return each


def _any(lf: Fn, tests: Any) -> Fn:
    return lambda c, e: any(tests(c, e))


def _all(lf: Fn, tests: Any) -> Fn:
    # A missing list (no customer) is false; an empty one holds vacuously.
    def f(c: Context, e: dict[str, Any]) -> bool:
        return lf(c, e) is not None and all(tests(c, e))

    return f


def _count(lf: Fn, tests: Any) -> Fn:
    return lambda c, e: sum(1 for passed in tests(c, e) if passed)


_LIST_TESTS = {"any": _any, "all": _all, "count": _count}
