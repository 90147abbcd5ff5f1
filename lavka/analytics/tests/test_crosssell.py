"""Cross-sell: pairs mined from a small hand-built set of orders, thresholds, and the suggestions read
from them for an order and for a customer.

The counted baskets of site "shop" (products A…F; F is in every basket):

    #1 A A' B F   (A' is a second offer of A: the product counts once)
    #2 A B F      #3 A B C F    #4 A B F     #5 A C F     #6 A F
    #7 B D F      #8 C D F      #9 C D F     #10 C D E F
    and three cancelled orders D E F, which count nowhere, and one order on the other site.

N = 10; n_A = 6 (#1–#6), n_B = 5 (#1–#4, #7), n_C = 5 (#3, #5, #8–#10), n_D = 4 (#7–#10), n_E = 1, n_F = 10.
Together: A&B = 4, C&D = 3, A&C = 2, B&C = 1, B&D = 1, C&E = 1, D&E = 1, X&F = n_X.

With the defaults (≥ 3 orders together, confidence ≥ 0.05, lift > 1):
    A→B: support 4/10 = 0.4, confidence 4/6 = 0.6667, lift 4·10/(6·5) = 1.3333   kept
    B→A: support 0.4,        confidence 4/5 = 0.8,    lift 1.3333                kept
    C→D: support 3/10 = 0.3, confidence 3/5 = 0.6,    lift 3·10/(5·4) = 1.5      kept
    D→C: support 0.3,        confidence 3/4 = 0.75,   lift 1.5                   kept
    X→F and F→X: lift n_X·10/(n_X·10) = 1 exactly: not above 1, dropped.
    D&E: 1 order together (the 3 cancelled ones do not count; if they did: 4 of 13, lift 1.86, kept).
With at least 1 order together, also: C→E conf 1/5 = 0.2, lift 1·10/(5·1) = 2; E→C conf 1, lift 2;
    D→E conf 1/4 = 0.25, lift 10/4 = 2.5; E→D conf 1, lift 2.5 (A&C: lift 2·10/30 = 0.67, dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from lavka.analytics import crosssell, jobs
from lavka.analytics.models import ProductPair
from lavka.catalog.models import Offer, Product
from lavka.core.models import Job
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer
from lavka.orders.actions import ItemData, OrderData, change_status, create_order
from lavka.orders.models import Order


@dataclass
class Basket:
    shop: object
    products: dict[str, Product]
    offers: dict[str, Offer]
    orders: list[Order]  # the ten counted orders, #1 first
    customers: dict[str, Customer]

    def pair(self, a: str, b: str) -> ProductPair:
        return ProductPair.objects.get(antecedent=self.products[a], product=self.products[b])


def _offer(product: Product, sku: str) -> Offer:
    return Offer.objects.create(product=product, sku=sku, name=product.name, price=Decimal("100"))


def build_baskets(shop) -> Basket:
    """The orders of the module docstring; customers: ira owns #6, petya #7, anna #1, the rest others."""
    actor = shop.actor(shop.admin)
    products = {"A": shop.tea.product, "B": shop.cup.product}
    offers = {"A": shop.tea, "B": shop.cup}
    for letter, name in zip("CDEF", ("Чайник", "Пиала", "Ситечко", "Пакет"), strict=True):
        products[letter] = Product.objects.create(site=shop.site, name=name)
        offers[letter] = _offer(products[letter], f"SKU-{letter}")
    offers["A'"] = _offer(products["A"], "SKU-A2")
    customers = {
        name: create_customer(shop.site, CustomerData(first_name=name, phones=[phone]), actor=actor)
        for name, phone in (("anna", "+79160000001"), ("ira", "+79160000002"), ("petya", "+79160000003"))
    }
    others = create_customer(
        shop.site, CustomerData(first_name="other", phones=["+79160000009"]), actor=actor
    )

    def order(letters: str, customer: Customer, site=None) -> Order:
        items = [ItemData(offer_id=offers[x].pk) for x in letters.split()]
        return create_order(site or shop.site, OrderData(customer=customer, items=items), actor=actor)

    lines = ["A A' B F", "A B F", "A B C F", "A B F", "A C F", "A F", "B D F", "C D F", "C D F", "C D E F"]
    owners = {0: customers["anna"], 5: customers["ira"], 6: customers["petya"]}
    orders = [order(line, owners.get(i, others)) for i, line in enumerate(lines)]
    for _ in range(3):
        change_status(order("D E F", others), "no-call", actor=actor)
    foreigner = create_customer(
        shop.other_site, CustomerData(first_name="x", phones=["+79160000010"]), actor=actor
    )
    items = [ItemData(offer_id=shop.foreign_offer.pk), ItemData(offer_id=shop.foreign_offer.pk)]
    create_order(shop.other_site, OrderData(customer=foreigner, items=items), actor=actor)
    return Basket(shop=shop, products=products, offers=offers, orders=orders, customers=customers)


@pytest.fixture
def basket(shop) -> Basket:
    return build_baskets(shop)


def kept(basket: Basket) -> set[tuple[str, str]]:
    names = {p.pk: letter for letter, p in basket.products.items()}
    return {(names[a], names[b]) for a, b in ProductPair.objects.values_list("antecedent_id", "product_id")}


def test_support_confidence_and_lift_by_hand(basket):
    assert crosssell.refresh_pairs(basket.shop.site) == 4
    assert kept(basket) == {("A", "B"), ("B", "A"), ("C", "D"), ("D", "C")}
    expected = {
        ("A", "B"): (4, 0.4, 4 / 6, 4 * 10 / (6 * 5)),
        ("B", "A"): (4, 0.4, 4 / 5, 4 * 10 / (6 * 5)),
        ("C", "D"): (3, 0.3, 3 / 5, 3 * 10 / (5 * 4)),
        ("D", "C"): (3, 0.3, 3 / 4, 3 * 10 / (5 * 4)),
    }
    for (a, b), (orders, support, confidence, lift) in expected.items():
        pair = basket.pair(a, b)
        assert pair.site == basket.shop.site
        assert pair.orders == orders
        assert pair.support == pytest.approx(support)
        assert pair.confidence == pytest.approx(confidence)
        assert pair.lift == pytest.approx(lift)
        assert pair.refreshed_at is not None


def test_thresholds(basket, settings):
    settings.LAVKA_CROSSSELL_MIN_ORDERS = 1
    crosssell.refresh_pairs(basket.shop.site)
    assert kept(basket) == {
        *[("A", "B"), ("B", "A"), ("C", "D"), ("D", "C")],
        *[("C", "E"), ("E", "C"), ("D", "E"), ("E", "D")],
    }
    assert basket.pair("D", "E").lift == pytest.approx(2.5)
    assert basket.pair("E", "C").confidence == pytest.approx(1.0)

    settings.LAVKA_CROSSSELL_MIN_ORDERS = 3
    settings.LAVKA_CROSSSELL_MIN_CONFIDENCE = 0.7  # drops A→B (0.667) and C→D (0.6)
    crosssell.refresh_pairs(basket.shop.site)
    assert kept(basket) == {("B", "A"), ("D", "C")}

    settings.LAVKA_CROSSSELL_MIN_CONFIDENCE = 0.05
    settings.LAVKA_CROSSSELL_MIN_LIFT = 1.4  # drops A↔B (1.33)
    crosssell.refresh_pairs(basket.shop.site)
    assert kept(basket) == {("C", "D"), ("D", "C")}


def test_refresh_replaces_only_the_sites_rows_and_is_idempotent(basket):
    other = basket.shop.other_site
    mug, spoon = (Product.objects.create(site=other, name=n) for n in ("Кружка", "Ложка"))
    foreign = ProductPair.objects.create(
        site=other, antecedent=mug, product=spoon, orders=9, support=0.5, confidence=0.5, lift=2,
        refreshed_at=basket.orders[0].created_at,
    )  # fmt: skip
    assert crosssell.refresh_pairs(basket.shop.site) == 4
    first = sorted(ProductPair.objects.filter(site=basket.shop.site).values_list("antecedent", "product"))
    assert crosssell.refresh_pairs(basket.shop.site) == 4
    again = sorted(ProductPair.objects.filter(site=basket.shop.site).values_list("antecedent", "product"))
    assert first == again and len(again) == 4
    assert ProductPair.objects.filter(pk=foreign.pk).exists()
    # The other site's single product pairs with nothing; its refresh clears its stale row.
    assert crosssell.refresh_pairs(other) == 0
    assert not ProductPair.objects.filter(site=other).exists()
    assert ProductPair.objects.filter(site=basket.shop.site).count() == 4


def test_a_cancelled_order_stops_counting(basket):
    crosssell.refresh_pairs(basket.shop.site)
    assert basket.pair("C", "D").orders == 3
    change_status(basket.orders[7], "no-call", actor=basket.shop.actor(basket.shop.admin))  # #8: C D F
    # C&D = 2 < 3 now: the pair goes.
    crosssell.refresh_pairs(basket.shop.site)
    assert kept(basket) == {("A", "B"), ("B", "A")}
    assert basket.pair("A", "B").support == pytest.approx(4 / 9)


def names(suggestions) -> list[str]:
    return [s.product.name for s in suggestions]


def test_suggestions_for_an_order_leave_out_what_it_holds(basket):
    crosssell.refresh_pairs(basket.shop.site)
    p = basket.products
    # #7 holds B D F: B→A strength 0.8·1.333 = 1.067, D→C 0.75·1.5 = 1.125; C first.
    found = crosssell.suggestions_for_order(basket.orders[6])
    assert names(found) == [p["C"].name, p["A"].name]
    assert found[0].reason.antecedent == p["D"] and found[0].reason.orders == 3
    assert found[0].score == pytest.approx(0.75 * 1.5)
    assert found[1].reason.lift == pytest.approx(4 / 3)
    assert names(crosssell.suggestions_for_order(basket.orders[6], limit=1)) == [p["C"].name]
    # #1 holds A A' B F: every product paired with them is in it already.
    assert crosssell.suggestions_for_order(basket.orders[0]) == []
    # #3 holds A B C F: only C→D (0.6·1.5 = 0.9) leads outside it.
    (found,) = crosssell.suggestions_for_order(basket.orders[2])
    assert (found.product, found.score) == (p["D"], pytest.approx(0.9))
    # #6 holds A F: B.
    assert names(crosssell.suggestions_for_order(basket.orders[5])) == [p["B"].name]


def test_suggestions_sum_over_the_items_held(basket, settings):
    settings.LAVKA_CROSSSELL_MIN_ORDERS = 1
    crosssell.refresh_pairs(basket.shop.site)
    # #8 holds C D F: E is paired with both C (0.2·2 = 0.4) and D (0.25·2.5 = 0.625).
    (found,) = crosssell.suggestions_for_order(basket.orders[7])
    assert found.product == basket.products["E"]
    assert found.score == pytest.approx(0.4 + 0.625)
    assert [r.antecedent for r in found.reasons] == [basket.products["D"], basket.products["C"]]


def test_only_active_products_with_an_active_offer_are_suggested(basket):
    crosssell.refresh_pairs(basket.shop.site)
    p, o = basket.products, basket.offers
    Product.objects.filter(pk=p["C"].pk).update(is_active=False)
    assert names(crosssell.suggestions_for_order(basket.orders[6])) == [p["A"].name]
    Offer.objects.filter(pk__in=[o["A"].pk, o["A'"].pk]).update(is_active=False)
    assert crosssell.suggestions_for_order(basket.orders[6]) == []
    Offer.objects.filter(pk=o["A'"].pk).update(is_active=True)
    assert names(crosssell.suggestions_for_order(basket.orders[6])) == [p["A"].name]


def test_likely_next_purchase(basket):
    crosssell.refresh_pairs(basket.shop.site)
    p, c = basket.products, basket.customers
    assert names(crosssell.likely_next(c["ira"])) == [p["B"].name]  # bought A F
    assert names(crosssell.likely_next(c["petya"])) == [p["C"].name, p["A"].name]  # bought B D F
    assert crosssell.likely_next(c["anna"]) == []  # bought A B F: A↔B both bought
    # A cancelled order is not a purchase: petya's only order cancelled leaves nothing to go on.
    change_status(basket.orders[6], "no-call", actor=basket.shop.actor(basket.shop.admin))
    assert crosssell.likely_next(c["petya"]) == []


def test_periodic_job_queues_one_refresh_per_site_and_window(basket):
    assert jobs.schedule_product_pairs() == 2
    assert jobs.schedule_product_pairs() == 2  # a second worker in the same window
    queued = Job.objects.filter(name="lavka.analytics.jobs.refresh_product_pairs")
    assert sorted(j.args[0] for j in queued) == sorted([basket.shop.site.pk, basket.shop.other_site.pk])
    assert jobs.refresh_product_pairs(basket.shop.site.pk) == 4
    assert jobs.refresh_product_pairs(basket.shop.site.pk) == 4
    assert ProductPair.objects.count() == 4
    assert jobs.refresh_product_pairs(10**9) == 0  # a site deleted meanwhile
