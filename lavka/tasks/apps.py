from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "lavka.tasks"
    label = "tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The missed-call receiver and the periodic sweeps register themselves on import.
        from lavka.tasks import jobs, receivers  # noqa: F401
