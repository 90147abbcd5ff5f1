from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "lavka.analytics"
    label = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The metrics receiver and the periodic jobs register themselves on import.
        from lavka.analytics import jobs, receivers  # noqa: F401
