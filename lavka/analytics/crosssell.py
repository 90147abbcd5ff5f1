"""Cross-sell ("bought together"): product pairs mined from order lines, and the suggestions read from them.

For a site, a *basket* is the set of distinct products of one counted order (`Order.objects.counted()`)
that has at least one line of the site's products; N is the number of baskets. For an ordered pair A → B:

    both       = baskets holding A and B
    support    = both / N
    confidence = both / baskets holding A          (P(B | A))
    lift       = confidence / (baskets holding B / N) = both · N / (n_A · n_B)

A pair is kept when `both` ≥ MIN_ORDERS, confidence ≥ MIN_CONFIDENCE and lift > MIN_LIFT, at most
MAX_PER_PRODUCT per antecedent (the strongest by lift × confidence). The whole computation is one
INSERT … SELECT over a self-join of the baskets, so no order is ever loaded into Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from lavka.analytics.models import ProductPair
from lavka.catalog.models import Offer, Product
from lavka.core.models import Site
from lavka.customers.models import Customer
from lavka.orders.models import Order, OrderItem


def min_orders() -> int:
    """Fewer baskets than this holding both products is noise, however high the lift."""
    return max(int(getattr(settings, "LAVKA_CROSSSELL_MIN_ORDERS", 3)), 1)


def min_confidence() -> float:
    return float(getattr(settings, "LAVKA_CROSSSELL_MIN_CONFIDENCE", 0.05))


def min_lift() -> float:
    """Only pairs bought together more often than chance (lift strictly above this)."""
    return float(getattr(settings, "LAVKA_CROSSSELL_MIN_LIFT", 1.0))


def refresh_seconds() -> float:
    """How often the periodic job recomputes every site's pairs (6 hours by default)."""
    return float(getattr(settings, "LAVKA_CROSSSELL_REFRESH_SECONDS", 6 * 3600))


MAX_PER_PRODUCT = 20  # pairs kept per antecedent: bounds the table and the suggestion queries


def baskets(site: Site | int) -> QuerySet:
    """Distinct (order id, product id) of the site's counted orders, as a subquery."""
    counted = Order.objects.filter(site=site).counted().values("pk")
    return (
        OrderItem.objects.filter(order__in=counted, offer__product__site=site)
        .order_by()
        .values_list("order_id", "offer__product_id")
        .distinct()
    )


# INSERT first, then WITH: Python's sqlite3 reports no rowcount for a statement that starts with WITH.
PAIRS_SQL = """
INSERT INTO {table} (site_id, antecedent_id, product_id, orders, support, confidence, lift, refreshed_at)
WITH basket (order_id, product_id) AS ({baskets}),
together AS (
    SELECT a.product_id AS antecedent_id, b.product_id AS product_id, COUNT(*) AS both_orders
    FROM basket a JOIN basket b ON b.order_id = a.order_id AND b.product_id <> a.product_id
    GROUP BY a.product_id, b.product_id
    HAVING COUNT(*) >= %s
),
product_orders AS (SELECT product_id, COUNT(*) AS n FROM basket GROUP BY product_id),
total AS (SELECT COUNT(DISTINCT order_id) AS n FROM basket),
scored AS (
    SELECT t.antecedent_id, t.product_id, t.both_orders,
        CAST(t.both_orders AS DOUBLE PRECISION) / total.n AS support,
        CAST(t.both_orders AS DOUBLE PRECISION) / pa.n AS confidence,
        -- both · N / (n_A · n_B): exactly 1 for independent products, whatever the float rounding
        CAST(t.both_orders AS DOUBLE PRECISION) * total.n / (CAST(pa.n AS DOUBLE PRECISION) * pb.n) AS lift
    FROM together t
    JOIN product_orders pa ON pa.product_id = t.antecedent_id
    JOIN product_orders pb ON pb.product_id = t.product_id
    CROSS JOIN total
),
ranked AS (
    SELECT s.*, ROW_NUMBER() OVER (
        PARTITION BY s.antecedent_id ORDER BY s.lift * s.confidence DESC, s.both_orders DESC, s.product_id
    ) AS place
    FROM scored s
    WHERE s.confidence >= %s AND s.lift > %s
)
SELECT %s, antecedent_id, product_id, both_orders, support, confidence, lift, %s
FROM ranked WHERE place <= %s
"""


def refresh_pairs(site: Site) -> int:
    """Recompute the site's pairs and replace its rows in one transaction; how many pairs were kept."""
    basket_sql, basket_params = baskets(site).query.sql_with_params()
    sql = PAIRS_SQL.format(baskets=basket_sql, table=connection.ops.quote_name(ProductPair._meta.db_table))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [
        *basket_params,
        min_orders(),
        min_confidence(),
        min_lift(),
        site.pk,
        now,
        MAX_PER_PRODUCT,
    ]
    with transaction.atomic():
        # A product moved to another site would otherwise keep a row the unique pair constraint trips on.
        ProductPair.objects.filter(Q(site=site) | Q(antecedent__site=site)).delete()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)


# --- Reading the pairs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One pair behind a suggestion: bought with `antecedent` in `orders` orders."""

    antecedent: Product
    orders: int
    confidence: float
    lift: float


@dataclass
class Suggestion:
    product: Product
    score: float  # sum over the antecedents held of lift × confidence
    reasons: list[Reason] = field(default_factory=list)  # strongest first

    @property
    def reason(self) -> Reason:
        return self.reasons[0]


def _suggest(site_id: int, held: QuerySet, limit: int) -> list[Suggestion]:
    """Products paired with any of `held` (a subquery of product ids) and not in it themselves.

    A product several held items point at ranks above one only a single item points at with the same
    strength: the scores are summed over antecedents.
    """
    if limit <= 0:
        return []
    sellable = Exists(Offer.objects.filter(product=OuterRef("product_id"), is_active=True))
    pairs = (
        ProductPair.objects.filter(site_id=site_id, antecedent_id__in=held, product__is_active=True)
        .exclude(product_id__in=held)
        .filter(sellable)
        .annotate(strength=F("lift") * F("confidence"))
    )
    top = list(
        pairs.order_by()
        .values("product_id")
        .annotate(score=Sum("strength"), best=Max("strength"))
        .order_by("-score", "-best", "product_id")[:limit]
    )
    if not top:
        return []
    products: dict[int, Product] = {}
    reasons: dict[int, list[Reason]] = {row["product_id"]: [] for row in top}
    rows = (
        pairs.filter(product_id__in=list(reasons))
        .select_related("antecedent", "product")
        .order_by("-strength", "-orders", "antecedent_id")
    )
    for pair in rows:
        products[pair.product_id] = pair.product
        reasons[pair.product_id].append(
            Reason(antecedent=pair.antecedent, orders=pair.orders, confidence=pair.confidence, lift=pair.lift)
        )
    return [
        Suggestion(
            product=products[row["product_id"]], score=row["score"], reasons=reasons[row["product_id"]]
        )
        for row in top
    ]


def suggestions_for_order(order: Order, limit: int = 5) -> list[Suggestion]:
    """What to offer with this order: products often bought with its items and not in it yet."""
    held = OrderItem.objects.filter(order=order).values("offer__product_id")
    return _suggest(order.site_id, held, limit)


def likely_next(customer: Customer, limit: int = 5) -> list[Suggestion]:
    """What this customer may buy next: products often bought with what they bought, not bought yet."""
    orders = Order.objects.filter(customer=customer).counted().values("pk")
    held = OrderItem.objects.filter(order__in=orders).values("offer__product_id")
    return _suggest(customer.site_id, held, limit)
