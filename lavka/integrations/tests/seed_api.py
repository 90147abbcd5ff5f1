"""`python -m lavka.integrations.tests.seed_api` prepares a store for the API end-to-end tests.

A site `shop` with a manager, offers bound by externalId and xmlId, a warehouse-free catalog, and an
API key with every scope (printed on standard output, the only place it ever appears).
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal


def seed() -> str:
    from lavka.accounts.actions import create_api_key, create_user
    from lavka.catalog.models import Offer, Product
    from lavka.core.actor import Actor
    from lavka.core.models import Site

    actor = Actor.system("e2e")
    site = Site.objects.create(code="shop", name="Shop", order_suffix="A")
    Site.objects.create(code="other", name="Other", order_suffix="B")
    manager = create_user(
        "alice",
        role="manager",
        password="correct-horse-42",
        actor=actor,
        site_codes=[site.code],
        first_name="Alice",
    )
    manager.phone_extension = "101"
    manager.save(update_fields=["phone_extension"])
    for n, (name, price) in enumerate([("Tea", "450.00"), ("Cup", "333.33"), ("Pot", "1200.00")], start=1):
        product = Product.objects.create(site=site, name=name, external_id=f"p{n}")
        Offer.objects.create(
            product=product,
            sku=f"SKU-{n}",
            name=name,
            price=Decimal(price),
            external_id=f"offer-{n}",
            xml_id=f"xml-{n}",
        )
    _key, raw = create_api_key("e2e", actor=actor)
    return raw


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavka.settings")
    django.setup()
    sys.stdout.write(seed() + "\n")
