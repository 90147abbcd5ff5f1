from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "lavka.automation"
    label = "automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The engine's receiver and the periodic jobs register themselves on import.
        from lavka.automation import assignment_receivers, engine, jobs  # noqa: F401
