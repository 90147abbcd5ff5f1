"""Syntax tree → type-checked closures, in one pass.

Checking and compiling walk the tree together: each node yields its static type and a closure
`fn(context, env)` that computes its value. Evaluating a compiled condition is then a chain of plain
Python calls, with no parsing and no type dispatch left. Values are Decimal (numbers and money), str,
bool, datetime/date, lists and dicts (objects); None is null and flows through instead of raising.
"""

from __future__ import annotations

import decimal
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lavka.automation.expressions.base import (
    DECIMAL,
    EVALUATION_ERRORS,
    Context,
    Fn,
    Scope,
    equatable,
    orderable,
    suggest,
    truth,
)
from lavka.automation.expressions.errors import ExpressionError
from lavka.automation.expressions.functions import FUNCTIONS, compile_call
from lavka.automation.expressions.nodes import Attr, Binary, BoolOp, Call, Literal, Name, Node, Unary
from lavka.automation.expressions.parser import parse
from lavka.automation.expressions.types import (
    BOOL,
    MONEY,
    NULL,
    NUMBER,
    STRING,
    Schema,
    Type,
)

LITERAL_TYPES = {"number": NUMBER, "string": STRING, "bool": BOOL, "null": NULL}


@dataclass(frozen=True)
class Part:
    """A sub-expression's static type and closure (explain() evaluates parts on their own)."""

    type: Type
    fn: Fn


@dataclass(frozen=True, eq=False)
class Compiled:
    """A parsed and checked expression, ready to evaluate any number of times.

    `fields`: every dotted path it reads ("order.total_summ", "order.items.quantity"), so that a
    context builder may skip what no condition needs. `uses_changes`: it calls changed/old/new.
    """

    text: str
    tree: Node | None
    type: Type
    condition: bool
    fields: frozenset[str]
    uses_changes: bool
    fn: Fn = field(repr=False)
    parts: Mapping[int, Part] = field(repr=False, default_factory=dict)

    def source(self, node: Node) -> str:
        return self.text[node.start : node.end]


def compile_expression(text: str, schema: Schema, *, condition: bool = False) -> Compiled:
    """Parse and type-check `text` against `schema`; with `condition`, it must be true/false."""
    tree = parse(text)
    compiler = Compiler(text, schema)
    t, fn = compiler.compile(tree, {})
    if condition:
        if t.kind != "bool":
            raise ExpressionError(
                f"a condition must be true or false, not {t}",
                tree.start,
                hint=_condition_hint(text[tree.start : tree.end], t),
                text=text,
            )
        if not _strictly_bool(tree):
            inner = fn

            def fn(c: Context, e: dict[str, Any]) -> Any:
                return inner(c, e) is True

    return Compiled(
        text,
        tree,
        t,
        condition,
        frozenset(compiler.fields),
        compiler.uses_changes,
        fn,
        compiler.parts,
    )


def compile_condition(text: str, schema: Schema) -> Compiled:
    """A rule's condition; an empty one always holds."""
    if isinstance(text, str) and not text.strip():
        return Compiled(text, None, BOOL, True, frozenset(), False, _always)
    return compile_expression(text, schema, condition=True)


def check(text: str, schema: Schema, *, condition: bool = True) -> Type:
    """The static type of `text` (true/false for a condition); ExpressionError if it is wrong."""
    if condition:
        return compile_condition(text, schema).type
    return compile_expression(text, schema).type


def evaluate(compiled: Compiled, context: Context | dict[str, Any]) -> Any:
    """The value of a compiled expression; for a condition, True or False."""
    if not isinstance(context, Context):
        context = Context(context)
    try:
        return compiled.fn(context, context.values)
    except EVALUATION_ERRORS as exc:
        # A context that does not match the schema; the rule run reports it like a bad expression.
        raise ExpressionError(f"could not evaluate: {exc}", 0, text=compiled.text) from exc


def _always(c: Context, e: dict[str, Any]) -> bool:
    return True


def _strictly_bool(node: Node) -> bool:
    """Whether the node's closure returns only True or False (never None)."""
    if isinstance(node, BoolOp):
        return True
    if isinstance(node, Unary):
        return node.op == "not"
    if isinstance(node, Binary):
        return node.op not in ("+", "-", "*", "/")
    if isinstance(node, Call):
        return node.name in ("changed", "any", "all")
    return False


def _condition_hint(source: str, t: Type) -> str:
    if len(source) > 40:
        source = "…"
    if t.kind == "list":
        return f"e.g. count({source}) > 0"
    if t.kind == "string":
        return f'e.g. {source} != ""'
    if t.numeric:
        return f"e.g. {source} > 0"
    if t.kind in ("object", "datetime", "date"):
        return f"e.g. {source} != null"
    return ""


# --- value operations (None in, None out) ---------------------------------------------------------


def _arith(op: Callable[[Any, Any], Any], left: Fn, right: Fn) -> Fn:
    def f(c: Context, e: dict[str, Any]) -> Any:
        x = left(c, e)
        if x is None:
            return None
        y = right(c, e)
        if y is None:
            return None
        try:
            return op(x, y)
        except decimal.DecimalException:
            return None

    return f


def _divide(x: Any, y: Any) -> Any:
    return None if y == 0 else DECIMAL.divide(x, y)


def _concat(x: str, y: str) -> str:
    return x + y


_ARITH_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": DECIMAL.add,
    "-": DECIMAL.subtract,
    "*": DECIMAL.multiply,
    "/": _divide,
}
_ORDER_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _ordering(op: Callable[[Any, Any], bool], left: Fn, right: Fn) -> Fn:
    def f(c: Context, e: dict[str, Any]) -> bool:
        x = left(c, e)
        if x is None:
            return False
        y = right(c, e)
        if y is None:
            return False
        return op(x, y)

    return f


def _path_fn(root: str, keys: tuple[str, ...]) -> Fn:
    """Read env[root][k1][k2]…, null as soon as a step is missing."""
    if len(keys) == 1:
        (k1,) = keys

        def one(c: Context, e: dict[str, Any]) -> Any:
            o = e.get(root)
            return None if o is None else o.get(k1)

        return one
    if len(keys) == 2:
        k1, k2 = keys

        def two(c: Context, e: dict[str, Any]) -> Any:
            o = e.get(root)
            if o is None:
                return None
            o = o.get(k1)
            return None if o is None else o.get(k2)

        return two

    def many(c: Context, e: dict[str, Any]) -> Any:
        o = e.get(root)
        for k in keys:
            if o is None:
                return None
            o = o.get(k)
        return o

    return many


def _chain(node: Node) -> tuple[str, tuple[str, ...]] | None:
    keys: list[str] = []
    while isinstance(node, Attr):
        keys.append(node.name)
        node = node.obj
    if isinstance(node, Name):
        return node.name, tuple(reversed(keys))
    return None


class Compiler:
    def __init__(self, text: str, schema: Schema) -> None:
        self.text = text
        self.schema = schema
        self.parts: dict[int, Part] = {}
        self.fields: set[str] = set()
        self.uses_changes = False

    def error(self, message: str, position: int, hint: str = "") -> ExpressionError:
        return ExpressionError(message, position, hint=hint, text=self.text)

    def src(self, node: Node) -> str:
        return self.text[node.start : node.end]

    def compile(self, node: Node, scope: Scope) -> tuple[Type, Fn]:
        if isinstance(node, Literal):
            t, fn = self.literal(node)
        elif isinstance(node, Name):
            t, fn = self.name(node, scope)
        elif isinstance(node, Attr):
            t, fn = self.attr(node, scope)
        elif isinstance(node, Unary):
            t, fn = self.unary(node, scope)
        elif isinstance(node, BoolOp):
            t, fn = self.boolop(node, scope)
        elif isinstance(node, Binary):
            t, fn = self.binary(node, scope)
        else:
            assert isinstance(node, Call)
            t, fn = self.call(node, scope)
        self.parts[id(node)] = Part(t, fn)
        return t, fn

    # --- values --------------------------------------------------------------------------------

    def literal(self, node: Literal) -> tuple[Type, Fn]:
        value = node.value
        return LITERAL_TYPES[node.kind], lambda c, e: value

    def path(self, node: Node, scope: Scope) -> str | None:
        found = _chain(node)
        if found is None:
            return None
        root, keys = found
        base = scope[root][1] if root in scope else root
        return ".".join((base, *keys))

    def name(self, node: Name, scope: Scope) -> tuple[Type, Fn]:
        name = node.name
        if name in scope:
            t = scope[name][0]
        elif name in self.schema.variables:
            t = self.schema.variables[name]
            self.fields.add(name)
        else:
            raise self.error(f"unknown name '{name}'", node.start, self.unknown_name_hint(name, scope))
        return t, lambda c, e: e.get(name)

    def unknown_name_hint(self, name: str, scope: Scope) -> str:
        if name.lower() in ("true", "false", "null", "and", "or", "not", "in"):
            return f"write it in lower case: '{name.lower()}'"
        if name in FUNCTIONS:
            return f"'{name}' is a function: write {name}(…)"
        if name in ("item", "payment", "tag", "phone", "it"):
            return f"'{name}' exists only inside any(), all(), count(), sum(), min() or max() over a list"
        return suggest(name, [*self.schema.variables, *scope])

    def attr(self, node: Attr, scope: Scope) -> tuple[Type, Fn]:
        ot, of = self.compile(node.obj, scope)
        owner = self.src(node.obj)
        if ot.kind == "list":
            raise self.error(
                f"{owner} is a list, it has no field '{node.name}'",
                node.name_start,
                f"use any({owner}, {ot.item_name}.{node.name} …), count() or sum()",
            )
        if ot.kind != "object":
            raise self.error(f"{owner} is {ot}, it has no field '{node.name}'", node.name_start)
        ft = ot.fields.get(node.name)
        if ft is None:
            raise self.error(
                f"unknown field '{self.src(node)}'", node.name_start, suggest(node.name, ot.fields)
            )
        path = self.path(node, scope)
        if path is not None:
            self.fields.add(path)
        found = _chain(node)
        if found is not None:
            fn = _path_fn(*found)
        else:
            name = node.name

            def fn(c: Context, e: dict[str, Any]) -> Any:
                o = of(c, e)
                return None if o is None else o.get(name)

        return (ft.null() if ot.nullable else ft), fn

    # --- operators -----------------------------------------------------------------------------

    def unary(self, node: Unary, scope: Scope) -> tuple[Type, Fn]:
        t, fn = self.compile(node.operand, scope)
        if node.op == "not":
            inner = truth(t, fn)
            return BOOL, lambda c, e: not inner(c, e)
        if not t.numeric:
            raise self.error(f"cannot negate {t}", node.start)

        def negate(c: Context, e: dict[str, Any]) -> Any:
            v = fn(c, e)
            return None if v is None else DECIMAL.minus(v)

        return t, negate

    def boolop(self, node: BoolOp, scope: Scope) -> tuple[Type, Fn]:
        fns = tuple(truth(*self.compile(operand, scope)) for operand in node.operands)
        if node.op == "and":
            if len(fns) == 2:
                a, b = fns
                return BOOL, lambda c, e: bool(a(c, e) and b(c, e))

            def all_of(c: Context, e: dict[str, Any]) -> bool:
                return all(f(c, e) for f in fns)

            return BOOL, all_of
        if len(fns) == 2:
            a, b = fns
            return BOOL, lambda c, e: bool(a(c, e) or b(c, e))

        def any_of(c: Context, e: dict[str, Any]) -> bool:
            return any(f(c, e) for f in fns)

        return BOOL, any_of

    def binary(self, node: Binary, scope: Scope) -> tuple[Type, Fn]:
        lt, lf = self.compile(node.left, scope)
        rt, rf = self.compile(node.right, scope)
        op = node.op
        if op in _ARITH_OPS:
            return self.arithmetic(node, lt, lf, rt, rf)
        if op in ("==", "!="):
            if not equatable(lt, rt):
                raise self.error(f"cannot compare {lt} with {rt}", node.op_start, self.compare_hint(lt, rt))
            if op == "==":
                return BOOL, lambda c, e: lf(c, e) == rf(c, e)
            return BOOL, lambda c, e: lf(c, e) != rf(c, e)
        if op in _ORDER_OPS:
            if not orderable(lt, rt):
                raise self.error(f"cannot compare {lt} with {rt}", node.op_start, self.compare_hint(lt, rt))
            return BOOL, _ordering(_ORDER_OPS[op], lf, rf)
        fn = self.membership(node, lt, lf, rt, rf)
        if op == "not in":
            return BOOL, lambda c, e: not fn(c, e)
        return BOOL, fn

    def compare_hint(self, a: Type, b: Type) -> str:
        if a.kind == "object" or b.kind == "object":
            return "compare a field, e.g. order.manager.id or order.manager.username"
        if a.kind == "list" or b.kind == "list":
            return "use 'in', count(), any() or all() with a list"
        if {a.kind, b.kind} == {"datetime", "date"}:
            return "compare a date with a date, e.g. now.date"
        return ""

    def arithmetic(self, node: Binary, lt: Type, lf: Fn, rt: Type, rf: Fn) -> tuple[Type, Fn]:
        op = node.op
        a, b = lt.kind, rt.kind
        result: Type | None = None
        if op == "+" and a == b == "string":
            result = STRING
        elif lt.numeric and rt.numeric:
            if op in ("+", "-"):
                result = MONEY if "money" in (a, b) else NUMBER
            elif op == "*":
                result = None if a == b == "money" else (MONEY if "money" in (a, b) else NUMBER)
            elif b == "money":  # money / money is a ratio; a number / money means nothing
                result = NUMBER if a == "money" else None
            else:
                result = lt.strict()
        if result is None:
            verb = {
                "+": f"add {lt} and {rt}",
                "-": f"subtract {rt} from {lt}",
                "*": f"multiply {lt} by {rt}",
                "/": f"divide {lt} by {rt}",
            }[op]
            raise self.error(f"cannot {verb}", node.op_start)
        if lt.nullable or rt.nullable or op == "/":
            result = result.null()
        return result, _arith(_concat if result.kind == "string" else _ARITH_OPS[op], lf, rf)

    def membership(self, node: Binary, lt: Type, lf: Fn, rt: Type, rf: Fn) -> Fn:
        if rt.kind == "list" and rt.item is not None:
            if not equatable(lt, rt.item):
                raise self.error(f"cannot look for {lt} in {rt}", node.op_start)

            def in_list(c: Context, e: dict[str, Any]) -> bool:
                xs = rf(c, e)
                return bool(xs) and lf(c, e) in xs

            return in_list
        if rt.kind == "string":
            if lt.kind not in ("string", "null"):
                raise self.error(f"cannot look for {lt} in a string", node.op_start)

            def in_text(c: Context, e: dict[str, Any]) -> bool:
                s = rf(c, e)
                if s is None:
                    return False
                x = lf(c, e)
                return x is not None and x in s

            return in_text
        raise self.error(
            f"'{node.op}' needs a list or a string on the right, not {rt}",
            node.op_start,
            'e.g. "vip" in order.customer.tags',
        )

    def call(self, node: Call, scope: Scope) -> tuple[Type, Fn]:
        return compile_call(self, node, scope)
