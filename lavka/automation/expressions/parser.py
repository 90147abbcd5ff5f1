"""Tokens → syntax tree: a Pratt parser with a nesting limit, so deep input is an error, not a crash.

Precedence, loosest first: or, and, not, comparisons and `in` (not chained), + -, * /, unary minus,
then `.field`, `["field"]` and calls.
"""

from __future__ import annotations

from lavka.automation.expressions.errors import ExpressionError
from lavka.automation.expressions.lexer import Token, tokenize
from lavka.automation.expressions.nodes import (
    Attr,
    Binary,
    BoolOp,
    Call,
    Literal,
    Name,
    Node,
    Unary,
    children,
)

MAX_LENGTH = 2000
MAX_DEPTH = 50

COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _POSTFIX = 10, 20, 30, 40, 50, 60, 70, 80
_INFIX_OPS = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, ".": _POSTFIX, "[": _POSTFIX}
_LITERALS = {"true": (True, "bool"), "false": (False, "bool"), "null": (None, "null")}


def parse(text: str) -> Node:
    """The syntax tree of `text`; ExpressionError if it is not a well-formed expression."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be text", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is too long ({len(text)} characters, at most {MAX_LENGTH})",
            MAX_LENGTH,
            text=text,
        )
    parser = _Parser(text, tokenize(text))
    tree = parser.expression(0)
    tok = parser.peek()
    if tok.kind != "end":
        raise parser.error(
            f"unexpected {tok.describe()}", tok.start, "expected an operator such as 'and', '==' or '+'"
        )
    _check_depth(text, tree)
    return tree


def _check_depth(text: str, tree: Node) -> None:
    """Long chains such as 1 + 1 + … + 1 nest without parentheses; they too must stay evaluable."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", node.start, text=text
            )
        stack.extend((child, depth + 1) for child in children(node))


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def error(self, message: str, position: int, hint: str = "") -> ExpressionError:
        return ExpressionError(message, position, hint=hint, text=self.text)

    def expect(self, op: str) -> Token:
        tok = self.peek()
        if tok.kind != "op" or tok.value != op:
            raise self.error(f"expected '{op}'", tok.start, f"found {tok.describe()}")
        return self.advance()

    def infix(self, tok: Token) -> tuple[str, int] | None:
        if tok.kind == "keyword":
            if tok.value == "or":
                return "or", _OR
            if tok.value == "and":
                return "and", _AND
            if tok.value == "in":
                return "in", _CMP
            nxt = self.peek(1)
            if tok.value == "not" and nxt.kind == "keyword" and nxt.value == "in":
                return "not in", _CMP
            return None
        if tok.kind == "op":
            if tok.value in COMPARISONS:
                return tok.value, _CMP
            if tok.value in _INFIX_OPS:
                return tok.value, _INFIX_OPS[tok.value]
        return None

    def expression(self, min_bp: int) -> Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.error(
                    f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", self.peek().start
                )
            left = self.prefix()
            while True:
                tok = self.peek()
                found = self.infix(tok)
                if found is None or found[1] <= min_bp:
                    return left
                op, bp = found
                if bp == _POSTFIX:
                    left = self.postfix(left)
                    continue
                self.advance()
                if op == "not in":
                    self.advance()
                if op in ("and", "or"):
                    operands = [left, self.expression(bp)]
                    while self.peek().kind == "keyword" and self.peek().value == op:
                        self.advance()
                        operands.append(self.expression(bp))
                    left = BoolOp(op, tuple(operands), start=left.start, end=operands[-1].end)
                    continue
                right = self.expression(bp)
                left = Binary(op, left, right, tok.start, start=left.start, end=right.end)
                if bp == _CMP:
                    after = self.peek()
                    chained = self.infix(after)
                    if chained is not None and chained[1] == _CMP:
                        raise self.error(
                            "comparisons cannot be chained",
                            after.start,
                            "join them with 'and', e.g. a < b and b < c",
                        )
        finally:
            self.depth -= 1

    def prefix(self) -> Node:
        tok = self.advance()
        if tok.kind == "number" or tok.kind == "string":
            return Literal(tok.value, tok.kind, start=tok.start, end=tok.end)
        if tok.kind == "keyword":
            if tok.value in _LITERALS:
                value, kind = _LITERALS[tok.value]
                return Literal(value, kind, start=tok.start, end=tok.end)
            if tok.value == "not":
                operand = self.expression(_NOT)
                return Unary("not", operand, start=tok.start, end=operand.end)
        elif tok.kind == "name":
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value == "(":
                return self.call(tok)
            return Name(tok.value, start=tok.start, end=tok.end)
        elif tok.kind == "op":
            if tok.value == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if tok.value == "-":
                operand = self.expression(_NEG)
                return Unary("-", operand, start=tok.start, end=operand.end)
        if tok.kind == "end":
            raise self.error("expected a value", tok.start, "the expression ends too early")
        raise self.error(f"expected a value, found {tok.describe()}", tok.start)

    def call(self, name: Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        if self.peek().kind == "op" and self.peek().value == ")":
            close = self.advance()
            return Call(name.value, (), start=name.start, end=close.end)
        while True:
            args.append(self.expression(0))
            tok = self.peek()
            if tok.kind == "op" and tok.value == ",":
                self.advance()
                continue
            if tok.kind == "op" and tok.value == ")":
                self.advance()
                return Call(name.value, tuple(args), start=name.start, end=tok.end)
            raise self.error("expected ',' or ')'", tok.start, f"found {tok.describe()}")

    def postfix(self, left: Node) -> Node:
        tok = self.advance()
        if tok.value == ".":
            name = self.advance()
            if name.kind != "name":
                raise self.error("expected a field name after '.'", name.start, f"found {name.describe()}")
            return Attr(left, name.value, name.start, start=left.start, end=name.end)
        key = self.advance()  # after "["
        if key.kind != "string":
            raise self.error(
                "expected a field name in quotes after '['", key.start, 'e.g. order.custom["my-field"]'
            )
        close = self.expect("]")
        return Attr(left, key.value, key.start, start=left.start, end=close.end)
