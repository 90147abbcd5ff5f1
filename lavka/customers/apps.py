from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "lavka.customers"
    label = "customers"

    def ready(self) -> None:
        from lavka.customers import receivers  # noqa: F401
