"""The condition language of automation rules (docs/automation.md, "Conditions").

    order.total_summ >= 10000 and order.site == "shop"
    changed("status") and new("status") == "paid"
    any(order.items, item.quantity > 2)

Text is tokenized and parsed by hand into a tree of frozen dataclasses (no eval, no Python
compile), checked against a Schema of the subject's fields, and compiled into closures once;
evaluate() and explain() then run without parsing. Every problem with the text is an
ExpressionError (a ValidationError) with the 0-based position of the fault.
"""

from lavka.automation.expressions.base import Context
from lavka.automation.expressions.compiler import (
    Compiled,
    check,
    compile_condition,
    compile_expression,
    evaluate,
)
from lavka.automation.expressions.errors import ExpressionError
from lavka.automation.expressions.explain import explain, show
from lavka.automation.expressions.functions import FUNCTIONS
from lavka.automation.expressions.parser import MAX_DEPTH, MAX_LENGTH, parse
from lavka.automation.expressions.types import (
    BOOL,
    DATE,
    DATETIME,
    MONEY,
    NULL,
    NUMBER,
    STRING,
    Schema,
    Type,
    list_of,
    obj,
)

__all__ = [
    "BOOL",
    "DATE",
    "DATETIME",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MONEY",
    "NULL",
    "NUMBER",
    "STRING",
    "Compiled",
    "Context",
    "ExpressionError",
    "Schema",
    "Type",
    "check",
    "compile_condition",
    "compile_expression",
    "evaluate",
    "explain",
    "list_of",
    "obj",
    "parse",
    "show",
]
