from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed(sender, **kwargs) -> None:
    from lavka.orders.defaults import seed_reference_books

    seed_reference_books()


class OrdersConfig(AppConfig):
    name = "lavka.orders"
    label = "orders"

    def ready(self) -> None:
        post_migrate.connect(_seed, sender=self)
