from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_chain_head(sender, **kwargs) -> None:
    from lavka.core.models import ChainHead

    ChainHead.objects.get_or_create(pk=1)


class CoreConfig(AppConfig):
    name = "lavka.core"
    label = "core"
    verbose_name = "Lavka core"

    def ready(self) -> None:
        from django.conf import settings

        from lavka.core import receivers

        post_migrate.connect(_ensure_chain_head, sender=self)
        if settings.LAVKA_EVENT_TRACE:
            receivers.enable_trace()
