"""Segments: saved conditions over customers (docs/segments.md).

    from lavka.analytics import segments
    q = segments.compile(definition)          # a Q over Customer
    segments.count(segment)                   # or count(definition)
    segments.customers(segment)               # dynamic: evaluated now; frozen: the snapshot
    segments.contains(segment, customer_id)   # for automation conditions

Writes (create, update, freeze, refresh, delete) go through `segments.actions`.
"""

from lavka.analytics.segments.compiler import (  # noqa: A004
    compile,
    contains,
    count,
    customers,
    describe,
    matching,
    memberships,
    normalize,
    parse,
)

__all__ = [
    "compile",
    "contains",
    "count",
    "customers",
    "describe",
    "matching",
    "memberships",
    "normalize",
    "parse",
]
