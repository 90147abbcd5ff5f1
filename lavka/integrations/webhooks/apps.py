from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "lavka.integrations.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The fan-out receiver and the periodic sender register themselves on import.
        from lavka.integrations.webhooks import jobs, receivers  # noqa: F401
