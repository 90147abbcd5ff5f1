"""The testing kit: standard actors and a small shop, shared by every app's tests (DESIGN.md §11).

Two sites (`shop`, `other`); an admin, a supervisor of `shop`, two managers of `shop` (`alice`, `bob`),
an operator of `shop`, and an outsider who works only on `other`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lavka.accounts.actions import create_user
from lavka.accounts.models import User
from lavka.catalog.models import Category, Offer, Product
from lavka.core.actor import Actor
from lavka.core.models import Site

PASSWORD = "correct-horse-42"


@dataclass
class Shop:
    site: Site
    other_site: Site
    admin: User
    supervisor: User
    alice: User
    bob: User
    operator: User
    outsider: User
    tea: Offer
    cup: Offer
    foreign_offer: Offer

    def actor(self, user: User) -> Actor:
        return Actor.for_user(user)


def make_shop() -> Shop:
    site = Site.objects.create(code="shop", name="Чайная лавка", order_suffix="A")
    other = Site.objects.create(code="other", name="Другой магазин", order_suffix="B")
    system = Actor.system("tests")

    def user(username: str, role: str, sites: list[str]) -> User:
        return create_user(
            username,
            role=role,
            password=PASSWORD,
            actor=system,
            site_codes=sites,
            first_name=username.title(),
            language="en",
        )

    category = Category.objects.create(site=site, name="Чай")
    tea_product = Product.objects.create(site=site, category=category, name="Пуэр")
    cup_product = Product.objects.create(site=site, category=category, name="Чашка")
    other_product = Product.objects.create(site=other, name="Кофе")
    return Shop(
        site=site,
        other_site=other,
        admin=user("admin", "admin", []),
        supervisor=user("sveta", "supervisor", ["shop"]),
        alice=user("alice", "manager", ["shop"]),
        bob=user("bob", "manager", ["shop"]),
        operator=user("oleg", "operator", ["shop"]),
        outsider=user("otto", "manager", ["other"]),
        tea=Offer.objects.create(
            product=tea_product,
            sku="PU-100",
            name="Пуэр 100 г",
            price=Decimal("450.00"),
            purchase_price=Decimal("200.00"),
            weight=100,
        ),
        cup=Offer.objects.create(
            product=cup_product,
            sku="CUP-1",
            name="Чашка",
            price=Decimal("333.33"),
            purchase_price=Decimal("100.00"),
            weight=300,
        ),
        foreign_offer=Offer.objects.create(
            product=other_product, sku="CF-1", name="Кофе", price=Decimal("500")
        ),
    )
