"""Why a condition held or not, in words: the first false part, its source text and the values it saw.

    order.total_summ >= 10000 was false: order.total_summ = 4200.00

Rule runs keep this as their "why not"; it is built only from the compiled parts, so nothing is
parsed again.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

from lavka.automation.expressions.base import EVALUATION_ERRORS, Context, truth
from lavka.automation.expressions.compiler import Compiled, evaluate
from lavka.automation.expressions.errors import ExpressionError
from lavka.automation.expressions.functions import LIST_FUNCTIONS
from lavka.automation.expressions.nodes import Attr, Binary, BoolOp, Call, Literal, Name, Node, Unary

MAX_TEXT = 60  # characters of one shown value
MAX_ITEMS = 5  # elements of a list shown, and elements a list predicate is shown for
MAX_REASON = 1000


def explain(compiled: Compiled, context: Context | dict[str, Any]) -> tuple[bool, str]:
    """(held, why): for a false condition, its first false part and the values that part saw;
    for a true one, the values the whole condition read."""
    if not isinstance(context, Context):
        context = Context(context)
    held = bool(evaluate(compiled, context))
    if compiled.tree is None:
        return held, "no condition"
    why = _Explainer(compiled, context)
    try:
        if held:
            seen = why.values(compiled.tree, context.values)
            text = "held: " + seen if seen else "held"
        else:
            text = why.false(compiled.tree, context.values)
    except EVALUATION_ERRORS as exc:  # a part the evaluation had skipped, on a context unlike its schema
        raise ExpressionError(f"could not evaluate: {exc}", 0, text=compiled.text) from exc
    return held, text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class _Explainer:
    def __init__(self, compiled: Compiled, context: Context) -> None:
        self.compiled = compiled
        self.context = context

    def src(self, node: Node) -> str:
        return self.compiled.source(node)

    def value(self, node: Node, env: dict[str, Any]) -> Any:
        return self.compiled.parts[id(node)].fn(self.context, env)

    def holds(self, node: Node, env: dict[str, Any]) -> bool:
        part = self.compiled.parts[id(node)]
        return bool(truth(part.type, part.fn)(self.context, env))

    def false(self, node: Node, env: dict[str, Any]) -> str:
        """Why `node`, which is false, is false."""
        if isinstance(node, BoolOp):
            if node.op == "and":
                for operand in node.operands:
                    if not self.holds(operand, env):
                        return self.false(operand, env)
            return "; ".join(self.false(operand, env) for operand in node.operands)
        seen = self.values(node.operand if isinstance(node, Unary) and node.op == "not" else node, env)
        return f"{self.src(node)} was false" + (f": {seen}" if seen else "")

    def values(self, node: Node, env: dict[str, Any]) -> str:
        found: dict[str, str] = {}
        self.collect(node, env, found)
        if isinstance(node, Call):  # its own value is what the sentence already says
            found.pop(self.src(node), None)
        return ", ".join(f"{source} = {shown}" for source, shown in found.items())

    def collect(self, node: Node, env: dict[str, Any], found: dict[str, str]) -> None:
        """The values worth showing under `node`: fields read and function results, not literals."""
        if isinstance(node, Literal):
            return
        source = self.src(node)
        if source in found:
            return
        if isinstance(node, (Name, Attr)):
            found[source] = show(self.value(node, env))
        elif isinstance(node, Call):
            if node.name in LIST_FUNCTIONS and len(node.args) == 2 and _is_list(self.compiled, node.args[0]):
                self.per_element(node, env, found)
            found[source] = show(self.value(node, env))
        elif isinstance(node, Unary):
            self.collect(node.operand, env, found)
        elif isinstance(node, Binary):
            self.collect(node.left, env, found)
            self.collect(node.right, env, found)
        elif isinstance(node, BoolOp):
            for operand in node.operands:
                self.collect(operand, env, found)

    def per_element(self, node: Call, env: dict[str, Any], found: dict[str, str]) -> None:
        """For any(order.items, item.quantity > 2): the list, then item.quantity for each element."""
        first, inner = node.args
        elements = self.value(first, env) or []
        found[self.src(first)] = show(elements)
        list_type = self.compiled.parts[id(first)].type
        names = {list_type.item_name, "it"}
        per_source: dict[str, list[str]] = {}
        bound = dict(env)
        for element in elements[:MAX_ITEMS]:
            for name in names:
                bound[name] = element
            seen: dict[str, str] = {}
            self.collect(inner, bound, seen)
            for source, shown in seen.items():
                per_source.setdefault(source, []).append(shown)
        more = ", …" if len(elements) > MAX_ITEMS else ""
        for source, shown_values in per_source.items():
            found.setdefault(source, ", ".join(shown_values) + more)


def _is_list(compiled: Compiled, node: Node) -> bool:
    part = compiled.parts.get(id(node))
    return part is not None and part.type.kind == "list"


def show(value: Any, nested: bool = False) -> str:
    """A value as the expression would write it, shortened."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        text = format(value, "f") if abs(value.adjusted()) < 40 else str(value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, datetime.datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, datetime.date):
        text = value.isoformat()
    elif isinstance(value, list):
        if value and isinstance(value[0], dict):
            return f"[{len(value)} item{'s' if len(value) != 1 else ''}]"
        if nested:
            return f"[{len(value)}]"
        shown = [show(v, True) for v in value[:MAX_ITEMS]]
        text = "[" + ", ".join(shown) + (", …" if len(value) > MAX_ITEMS else "") + "]"
    elif isinstance(value, dict):
        if nested:
            return "{…}"
        scalars = [(k, v) for k, v in value.items() if not isinstance(v, (dict, list))][:3]
        text = "{" + ", ".join(f"{k}: {show(v, True)}" for k, v in scalars) + ", …}"
    else:
        text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
