"""Per-customer summaries the lifetime models run on, and the collapse into unique rows.

BG/NBD sees a customer as three numbers, measured from that customer's first purchase:

- ``x``: repeat purchases (purchases after the first; purchases in the same period count once),
- ``t_x``: time of the last purchase (0 when ``x == 0``),
- ``T``: age, the time from the first purchase to the end of observation.

Gamma-Gamma adds ``mean_value``, the mean amount of the repeat purchases (the first purchase is left
out, as in Fader, Hardie & Lee's "RFM and CLV" paper; 0 when ``x == 0``).

Time is in days unless ``unit`` says otherwise (``unit=7`` gives weeks). Many customers share the same
triple (everyone who bought once on the same day), so :func:`collapse` folds identical rows into one
with a weight: the likelihoods run over the unique rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Summary", "collapse", "from_transactions"]


@dataclass(frozen=True)
class Summary:
    """Arrays aligned on ``customers`` (the sorted distinct customer ids of the input)."""

    customers: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    mean_value: np.ndarray
    first: np.ndarray  # time of the first purchase, in the input's time scale (not divided by unit)


def from_transactions(
    customer: np.ndarray,
    time: np.ndarray,
    amount: np.ndarray | None = None,
    observation_end: float | None = None,
    unit: float = 1.0,
    merge_same_period: bool = True,
) -> Summary:
    """Build ``(x, t_x, T, mean_value)`` per customer from transaction arrays.

    ``customer``: integer ids; ``time``: purchase times in days (any origin, floats allowed);
    ``amount``: purchase amounts (optional). Transactions after ``observation_end`` are ignored; it
    defaults to the last transaction time. Times are floored to whole periods of ``unit`` days, and a
    customer's purchases in the same period count as one purchase whose amount is their sum (the
    model's purchases are events in continuous time; two orders on one day are usually one purchase
    split or corrected). ``merge_same_period=False`` counts every transaction instead.
    """
    customer = np.asarray(customer, dtype=np.int64)
    time = np.asarray(time, dtype=np.float64)
    amount = np.zeros_like(time) if amount is None else np.asarray(amount, dtype=np.float64)
    if not (customer.shape == time.shape == amount.shape):
        raise ValueError("customer, time and amount must have the same length")
    if observation_end is None:
        observation_end = float(time.max()) if time.size else 0.0
    keep = time <= observation_end
    customer, time, amount = customer[keep], time[keep], amount[keep]
    period = np.floor(time / unit)
    end_period = np.floor(observation_end / unit)

    # One row per (customer, period), amounts summed: sort, then cut where either key changes.
    order = np.lexsort((period, customer))
    customer, period, amount = customer[order], period[order], amount[order]
    new_row = np.ones(customer.size, dtype=bool)
    new_row[1:] = (customer[1:] != customer[:-1]) | (period[1:] != period[:-1])
    if not merge_same_period:
        new_row[:] = True
    starts = np.flatnonzero(new_row)
    customer, period = customer[starts], period[starts]
    amount = np.add.reduceat(amount, starts) if starts.size else amount[:0]

    first_row = np.ones(customer.size, dtype=bool)
    first_row[1:] = customer[1:] != customer[:-1]
    firsts = np.flatnonzero(first_row)
    lasts = np.append(firsts[1:] - 1, customer.size - 1) if firsts.size else firsts
    purchases = lasts - firsts + 1
    first = period[firsts]
    x = (purchases - 1).astype(np.float64)
    t_x = period[lasts] - first
    T = end_period - first
    # Repeat amount = all amounts minus the first purchase's.
    total = np.add.reduceat(amount, firsts) if firsts.size else amount[:0]
    repeat = total - amount[firsts]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.where(x > 0, repeat / np.maximum(x, 1), 0.0)
    return Summary(
        customers=customer[firsts],
        x=x,
        t_x=t_x.astype(np.float64),
        T=T.astype(np.float64),
        mean_value=mean_value,
        first=first * unit,
    )


def collapse(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique ``(x, t_x, T)`` rows, their counts as float weights, and the inverse index.

    Returns ``(ux, ut_x, uT, weights, inverse)`` with ``ux[inverse] == x`` (and likewise for the
    others), so per-row results computed on the unique rows expand back with ``values[inverse]``.
    """
    x, t_x, T = _columns(x, t_x, T)
    return unique_rows(x, t_x, T, inverse=True)


def _columns(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise ValueError("x, t_x and T must be 1-d arrays of the same length")
    return x, t_x, T


def unique_rows(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, inverse: bool = True):
    """:func:`collapse` on validated float64 columns; with ``inverse=False`` the last item is None and
    whole-number data is collapsed with a plain sort (the fit needs only the counts)."""
    if x.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty, np.zeros(0, dtype=np.intp) if inverse else None
    key, m = _integer_key(x, t_x, T)
    if key is not None:
        # Whole-number data (days): one int64 key per row, a single sort, decoded back to columns.
        if inverse:
            keys, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
            inv = inv.ravel()
        else:
            keys, counts = np.unique(key, return_counts=True)
            inv = None
        ux, rest = np.divmod(keys, m * m)
        ut, uT = np.divmod(rest, m)
        f = np.float64
        return ux.astype(f), ut.astype(f), uT.astype(f), counts.astype(f), inv
    # General case, lexsort + boundaries: a few times faster than np.unique(axis=0).
    order = np.lexsort((T, t_x, x))
    xs, ts, Ts = x[order], t_x[order], T[order]
    new_row = np.ones(x.size, dtype=bool)
    new_row[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1]) | (Ts[1:] != Ts[:-1])
    starts = np.flatnonzero(new_row)
    counts = np.diff(np.append(starts, x.size)).astype(np.float64)
    inv = None
    if inverse:
        inv = np.empty(x.size, dtype=np.intp)
        inv[order] = np.cumsum(new_row) - 1
    return xs[starts], ts[starts], Ts[starts], counts, inv


def _integer_key(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray | None, int]:
    """x * (m+1)^2 + t_x * (m+1) + T as int64 when all three are small non-negative whole numbers."""
    if min(x.min(), t_x.min(), T.min()) < 0:
        return None, 0
    m = float(max(t_x.max(), T.max())) + 1.0
    if (float(x.max()) + 1.0) * m * m >= 2.0**62:
        return None, 0
    if not (_whole(x) and _whole(t_x) and _whole(T)):
        return None, 0
    mi = np.int64(m)
    return (x.astype(np.int64) * mi + t_x.astype(np.int64)) * mi + T.astype(np.int64), int(mi)


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(values == np.floor(values)))


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct values, index)`` with ``uniq[index] == values``; whole numbers up to a few
    million (days) are done by a presence table instead of a sort."""
    if values.size and values.min() >= 0 and values.max() < 4e6 and _whole(values):
        ints = values.astype(np.intp)
        present = np.zeros(int(ints.max()) + 1, dtype=bool)
        present[ints] = True
        uniq = np.flatnonzero(present)
        position = np.cumsum(present) - 1
        return uniq.astype(np.float64), position[ints]
    uniq, index = np.unique(values, return_inverse=True)
    return uniq, index.ravel()
