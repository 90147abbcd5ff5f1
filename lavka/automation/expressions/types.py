"""Static types of the expression language and the schema a condition is checked against."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NUMERIC = frozenset({"number", "money"})
ORDERED = frozenset({"number", "money", "string", "datetime", "date"})


@dataclass(frozen=True)
class Type:
    """`kind` is one of bool, number, money, string, datetime, date, list, object, null.

    A list has an `item` type and the name its element goes by inside any()/all()/count()/sum()/
    min()/max() (`item` for order.items); an object has `fields` and a `name` for messages.
    """

    kind: str
    nullable: bool = False
    item: Type | None = None
    item_name: str = "it"
    name: str = ""
    fields: Mapping[str, Type] = field(default_factory=dict, compare=False, repr=False)

    def null(self) -> Type:
        """The same type, which may also be null (a missing related object, an empty field)."""
        return self if self.nullable else dataclasses.replace(self, nullable=True)

    def strict(self) -> Type:
        return dataclasses.replace(self, nullable=False) if self.nullable else self

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC

    def __str__(self) -> str:
        if self.kind == "list" and self.item is not None:
            return f"list of {self.item}"
        if self.kind == "object":
            return self.name or "object"
        return self.kind


BOOL = Type("bool")
NUMBER = Type("number")
MONEY = Type("money")
STRING = Type("string")
DATETIME = Type("datetime")
DATE = Type("date")
NULL = Type("null", nullable=True)


def list_of(item: Type, item_name: str = "it") -> Type:
    return Type("list", item=item, item_name=item_name)


def obj(name: str, fields: Mapping[str, Type], *, nullable: bool = False) -> Type:
    return Type("object", nullable=nullable, name=name, fields=dict(fields))


@dataclass(frozen=True, eq=False)
class Schema:
    """What a condition may read: top-level `variables` (order, now, event …) and `changes`, the names
    changed()/old()/new() accept with the type of their values (None: changed() only, no values)."""

    variables: Mapping[str, Type]
    changes: Mapping[str, Type | None] = field(default_factory=dict)
    description: str = ""

    def describe(self) -> dict[str, Any]:
        """The fields as plain data, e.g. for the rule editor's field list."""
        return {name: _describe(t) for name, t in self.variables.items()}


def _describe(t: Type) -> Any:
    if t.kind == "object":
        return {name: _describe(f) for name, f in t.fields.items()}
    if t.kind == "list" and t.item is not None:
        return [_describe(t.item)]
    return t.kind
