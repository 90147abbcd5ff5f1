"""The syntax tree: frozen dataclasses, each with its span (`start`, `end`) in the source text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    start: int = field(kw_only=True)
    end: int = field(kw_only=True)


@dataclass(frozen=True)
class Literal(Node):
    value: Any  # Decimal, str, bool or None
    kind: str  # number, string, bool, null


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Attr(Node):
    """`obj.name` or `obj["name"]`; `name_start` is where the field's name is written."""

    obj: Node
    name: str
    name_start: int


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """Arithmetic (+ - * /), comparison (== != < <= > >=) or membership (in, not in)."""

    op: str
    left: Node
    right: Node
    op_start: int


@dataclass(frozen=True)
class BoolOp(Node):
    """`a and b and c` (or `or`) as one node, so that long chains stay shallow."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Attr):
        return (node.obj,)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, BoolOp):
        return node.operands
    if isinstance(node, Call):
        return node.args
    return ()
