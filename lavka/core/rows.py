"""Many rows in one INSERT, without the ORM's per-object preparation (hot paths: history, rule runs).

PostgreSQL gets a statement of fixed text whatever the number of rows (one array per column, unnested),
so psycopg and the server reuse its parse; the text of a multi-row VALUES list changes with every count.
SQLite gets the VALUES list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction


def insert_rows(
    table: str, columns: Sequence[str], pg_types: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table`; `pg_types` are the columns' array types.

    Values are given as the database takes them: JSON as text, datetimes aware (the caller adapts them
    for SQLite with `connection.ops.adapt_datetimefield_value`).
    """
    if not rows:
        return
    connection = transaction.get_connection()
    names = ", ".join(columns)
    quoted = connection.ops.quote_name(table)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}" for kind in pg_types)
        sql = f"INSERT INTO {quoted} ({names}) SELECT * FROM unnest({arrays})"
        params: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    else:
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = f"INSERT INTO {quoted} ({names}) VALUES {', '.join([row] * len(rows))}"
        params = [value for values in rows for value in values]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
