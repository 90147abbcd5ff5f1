"""The few SQL pieces that differ between SQLite and PostgreSQL in the analytics' set-based queries,
and the bulk transfer of numeric columns between the database and NumPy.

Everything else (window functions, UPDATE … FROM, INSERT … ON CONFLICT) is written once for both.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import connection

UNIX_EPOCH_JULIAN = 2440587.5
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def postgres() -> bool:
    return connection.vendor == "postgresql"


def epoch_days(column: str) -> str:
    """A timestamp column as (fractional) days since 1970-01-01 UTC."""
    if postgres():
        return f"(date_part('epoch', {column}) / 86400.0)"
    return f"(julianday({column}) - {UNIX_EPOCH_JULIAN})"


def floor_int(expression: str) -> str:
    """The floor of a non-negative number as an integer."""
    if postgres():
        return f"CAST(floor({expression}) AS bigint)"
    return f"CAST({expression} AS INTEGER)"  # truncation: the floor for numbers ≥ 0


def day_number(column: str) -> str:
    """The UTC day of a timestamp column as a whole number of days since 1970-01-01 (dates after 1970)."""
    return floor_int(epoch_days(column))


def greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if postgres() else f"MAX({a}, {b})"


def now_days(moment: datetime.datetime) -> float:
    return moment.timestamp() / 86400.0


def timestamp(moment: datetime.datetime) -> str:
    """A moment as an SQL literal comparable with a DateTimeField column (made here, never from input)."""
    utc = moment.astimezone(datetime.UTC)
    if postgres():
        return f"CAST('{utc.isoformat()}' AS timestamptz)"
    return f"'{utc.replace(tzinfo=None).isoformat(sep=' ')}'"  # how Django stores it on SQLite


def in_ids(column: str, ids: Iterable[int]) -> str:
    """`column IN (…)` with the ids inlined (integers only); false for none."""
    values = ", ".join(str(int(pk)) for pk in ids)
    return f"{column} IN ({values})" if values else "1 = 0"


def fence() -> str:
    """Ends a subquery whose columns the outer query uses more than once: PostgreSQL would otherwise
    pull it up and compute each column expression once per use."""
    return " OFFSET 0" if postgres() else ""


def distinct(a: str, b: str) -> str:
    """`a` and `b` differ, a null differing from any value but another null."""
    return f"{a} IS DISTINCT FROM {b}" if postgres() else f"{a} IS NOT {b}"


def as_json(text: str) -> str:
    """A text expression holding JSON, as the value of a JSONField column."""
    return f"CAST({text} AS jsonb)" if postgres() else text


def nan_to_null(expression: str) -> str:
    """Float columns loaded by binary COPY carry NaN for "no value" (SQLite stores NaN as NULL)."""
    return f"NULLIF({expression}, CAST('NaN' AS double precision))" if postgres() else expression


def datetime_param(moment: datetime.datetime) -> object:
    return connection.ops.adapt_datetimefield_value(moment)


def drop_temp(cursor, *names: str) -> None:
    for name in names:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


# --- NumPy ⇄ database ------------------------------------------------------------------------------------


def fetch_floats(cursor, sql: str, columns: int) -> np.ndarray:
    """The rows of a query whose `columns` columns are all non-null numbers, as an (n, columns) float64
    array. PostgreSQL sends them by binary COPY, read straight into NumPy (a million rows in well under
    a second); SQLite through the cursor."""
    if not postgres():
        cursor.execute(sql)
        rows = cursor.fetchall()
        return np.array(rows, dtype=np.float64).reshape(len(rows), columns)
    select = ", ".join(f"CAST(c{n} AS double precision)" for n in range(columns))
    names = ", ".join(f"c{n}" for n in range(columns))
    data = bytearray()
    with cursor.cursor.copy(
        f"COPY (SELECT {select} FROM ({sql}) AS q ({names})) TO STDOUT (FORMAT BINARY)"
    ) as copy:
        for block in copy:
            data += block
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension : len(data) - 2]  # header; the trailer is int16 −1
    layout = [("count", ">i2")]
    for n in range(columns):
        layout += [(f"l{n}", ">i4"), (f"v{n}", ">f8")]
    rows = np.frombuffer(body, dtype=np.dtype(layout))
    if rows.size and (
        np.any(rows["count"] != columns) or any(np.any(rows[f"l{n}"] != 8) for n in range(columns))
    ):
        raise ValueError("unexpected NULL or width in a numeric COPY")
    return (
        np.column_stack([rows[f"v{n}"].astype(np.float64) for n in range(columns)])
        if rows.size
        else np.zeros((0, columns))
    )


def load_floats(
    cursor, table: str, ids: np.ndarray, columns: Sequence[str], values: Sequence[np.ndarray]
) -> None:
    """Fill `table` (customer_id BIGINT, then one DOUBLE PRECISION per column) from NumPy arrays: binary
    COPY on PostgreSQL (NaN stands for "no value"), executemany on SQLite (NaN becomes NULL)."""
    arrays = [np.where(np.isfinite(v), v, np.nan).astype(np.float64) for v in values]
    if not postgres():
        marks = ", ".join(["%s"] * (len(columns) + 1))
        rows = zip(ids.tolist(), *(a.tolist() for a in arrays), strict=True)
        cursor.executemany(f"INSERT INTO {table} (customer_id, {', '.join(columns)}) VALUES ({marks})", rows)
        return
    layout = [("count", ">i2"), ("l_id", ">i4"), ("id", ">i8")]
    for n in range(len(columns)):
        layout += [(f"l{n}", ">i4"), (f"v{n}", ">f8")]
    block = np.empty(ids.size, dtype=np.dtype(layout))
    block["count"], block["l_id"], block["id"] = len(columns) + 1, 8, ids
    for n, array in enumerate(arrays):
        block[f"l{n}"], block[f"v{n}"] = 8, array
    names = ", ".join(["customer_id", *columns])
    with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(COPY_SIGNATURE + bytes(8))
        copy.write(block.tobytes())
        copy.write((-1).to_bytes(2, "big", signed=True))
