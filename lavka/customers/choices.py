from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    SMS = "sms", _("SMS")
    MESSENGER = "messenger", _("messengers")


class Purpose(models.TextChoices):
    SERVICE = "service", _("service")
    MARKETING = "marketing", _("marketing")


class Sex(models.TextChoices):
    MALE = "male", _("male")
    FEMALE = "female", _("female")


# Fields whose changes are written to history, with the retailCRM history field name.
TRACKED_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "patronymic": "patronymic",
    "email": "email",
    "birthday": "birthday",
    "sex": "sex",
    "manager_id": "manager",
    "external_id": "external_id",
    "vip": "vip",
    "bad": "bad",
    "source": "source.source",
    "medium": "source.medium",
    "campaign": "source.campaign",
    "keyword": "source.keyword",
    "content": "source.content",
    "custom_fields": "custom_fields",
}
