"""RFM: quintile scores per site and the named segment of every (r, f, m) combination.

Scores. Each of the three values is scored 1 (worst) … 5 (best) among the site's customers who have
at least one counted order:

- R: the day (UTC, as a day number) of the last order; later is better, so the most recent buyers get 5;
- F: the number of counted orders;
- M: revenue of the counted orders.

A customer's score is ``1 + floor(5 · b / n)``, where ``n`` is the number of scored customers and ``b``
the number of them with a strictly worse value (``RANK() - 1`` in SQL). Customers with equal values
therefore get the same score, and a value shared by many customers takes the score of its lowest
position: when 60 % of the customers have one order, all of them score F = 1 and two orders score
F = 4. The quintile *edges* are the smallest value reaching each score 2 … 5 (``None`` when no value
does); they are stored per site (``SiteAnalytics.rfm_edges``) so that an incremental update scores one
customer as ``1 + (number of edges ≤ value)``, which gives the same score the full refresh gave to any
value the site already had.

Segments. Eleven named segments, each a rule over the scores; together the rules take every one of the
125 combinations exactly once (tests/test_rfm.py checks it). R and F place a customer in the usual
5 × 5 grid; M only separates big spenders among the lapsed frequent buyers ("can't lose them").
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

SCORES = (1, 2, 3, 4, 5)
EPOCH = datetime.date(1970, 1, 1)


@dataclass(frozen=True)
class Rule:
    """One alternative of a segment: the allowed scores of R, F and M (all of them when empty)."""

    r: frozenset[int]
    f: frozenset[int] = frozenset(SCORES)
    m: frozenset[int] = frozenset(SCORES)

    def matches(self, r: int, f: int, m: int) -> bool:
        return r in self.r and f in self.f and m in self.m


def _rule(r: Sequence[int], f: Sequence[int] = SCORES, m: Sequence[int] = SCORES) -> Rule:
    return Rule(frozenset(r), frozenset(f), frozenset(m))


@dataclass(frozen=True)
class SegmentDef:
    code: str
    name: Any  # a lazy translation
    description: Any
    rules: tuple[Rule, ...]

    def matches(self, r: int, f: int, m: int) -> bool:
        return any(rule.matches(r, f, m) for rule in self.rules)


SEGMENTS: tuple[SegmentDef, ...] = (
    SegmentDef("champions", _("Champions"), _("bought recently and often"), (_rule([5], [4, 5]),)),
    SegmentDef("loyal", _("Loyal"), _("buy often, fairly recently"), (_rule([3, 4], [4, 5]),)),
    SegmentDef(
        "potential_loyalist",
        _("Potential loyalists"),
        _("recent customers with a few orders"),
        (_rule([4, 5], [2, 3]),),
    ),
    SegmentDef("new", _("New customers"), _("first order, very recent"), (_rule([5], [1]),)),
    SegmentDef("promising", _("Promising"), _("one order, recent"), (_rule([4], [1]),)),
    SegmentDef("need_attention", _("Need attention"), _("average recency and frequency"), (_rule([3], [3]),)),
    SegmentDef("about_to_sleep", _("About to sleep"), _("few orders, fading"), (_rule([3], [1, 2]),)),
    SegmentDef(
        "at_risk", _("At risk"), _("used to buy often, not lately"), (_rule([1, 2], [3, 4], [1, 2, 3, 4]),)
    ),
    SegmentDef(
        "cant_lose",
        _("Can't lose them"),
        _("best customers in the past, gone quiet"),
        (_rule([1, 2], [5]), _rule([1, 2], [3, 4], [5])),
    ),
    SegmentDef("hibernating", _("Hibernating"), _("few orders, long ago"), (_rule([2], [1, 2]),)),
    SegmentDef("lost", _("Lost"), _("few orders, longest ago"), (_rule([1], [1, 2]),)),
)
BY_CODE = {segment.code: segment for segment in SEGMENTS}


def segment_of(r: int | None, f: int | None, m: int | None) -> str:
    """The segment code of a score combination ("" without scores)."""
    if r is None or f is None or m is None:
        return ""
    for segment in SEGMENTS:
        if segment.matches(r, f, m):
            return segment.code
    raise ValueError(f"no RFM segment for ({r}, {f}, {m})")


def segment_sql(r: str, f: str, m: str) -> str:
    """A CASE expression giving the segment code from three score expressions (made of constants only,
    so it is safe to inline); '' when the scores are null."""

    def alternative(rule: Rule) -> str:
        parts = [
            f"{column} IN ({', '.join(str(score) for score in sorted(allowed))})"
            for column, allowed in ((r, rule.r), (f, rule.f), (m, rule.m))
            if allowed != frozenset(SCORES)
        ]
        return "(" + " AND ".join(parts or ["1 = 1"]) + ")"

    whens = [
        f"WHEN {' OR '.join(alternative(rule) for rule in segment.rules)} THEN '{segment.code}'"
        for segment in SEGMENTS
    ]
    return f"CASE WHEN {r} IS NULL THEN '' {' '.join(whens)} ELSE '' END"


# --- Scores -------------------------------------------------------------------------------------------


def score_sql(value: str, count: str) -> str:
    """The quintile score of `value` among the rows of the window (see the module docstring)."""
    return f"(1 + 5 * (RANK() OVER (ORDER BY {value}) - 1) / {count})"


def day_number(moment: datetime.datetime | None) -> int | None:
    """The UTC day of a moment as days since 1970-01-01 (the R value)."""
    if moment is None:
        return None
    return (moment.astimezone(datetime.UTC).date() - EPOCH).days


def score(value: Any, edges: Sequence[Any] | None) -> int | None:
    """Score one value against stored edges (scores 2 … 5; a None edge is never reached)."""
    if value is None or not edges:
        return None
    return 1 + sum(1 for edge in edges if edge is not None and value >= edge)


def edges_from(minimum_by_score: dict[int, Any]) -> list[Any]:
    """The four edges from "the smallest value scored s" for the scores that occur."""
    edges = []
    for target in (2, 3, 4, 5):
        reached = [value for s, value in minimum_by_score.items() if s >= target and value is not None]
        edges.append(min(reached) if reached else None)
    return edges


def stored_edges(r: list[Any], f: list[Any], m: list[Any], customers: int) -> dict[str, Any]:
    """The JSON form kept in SiteAnalytics.rfm_edges: R as ISO dates, M as decimal strings."""
    return {
        "r": [None if e is None else (EPOCH + datetime.timedelta(days=int(e))).isoformat() for e in r],
        "f": [None if e is None else int(e) for e in f],
        "m": [None if e is None else str(Decimal(str(e)).quantize(Decimal("0.01"))) for e in m],
        "customers": customers,
    }


def scores_from_stored(
    edges: dict[str, Any], last_order_at: datetime.datetime | None, orders: int, revenue: Decimal
) -> tuple[int | None, int | None, int | None]:
    """(r, f, m) of one customer against the site's stored edges; Nones without orders or edges."""
    if not orders or not edges or last_order_at is None:
        return None, None, None
    r_edges = [None if e is None else day_number_of(e) for e in edges.get("r") or []]
    m_edges = [None if e is None else Decimal(e) for e in edges.get("m") or []]
    return (
        score(day_number(last_order_at), r_edges),
        score(orders, edges.get("f")),
        score(Decimal(revenue), m_edges),
    )


def day_number_of(iso_date: str) -> int:
    return (datetime.date.fromisoformat(iso_date) - EPOCH).days
