from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "lavka.loyalty"
    label = "loyalty"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The accrual receiver and the periodic expiry job register themselves on import.
        from lavka.loyalty import jobs, receivers  # noqa: F401
