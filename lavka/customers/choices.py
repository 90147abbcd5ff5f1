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
}


class ContragentType(models.TextChoices):
    # retailCRM's codes, spelling included.
    INDIVIDUAL = "individual", _("individual")
    LEGAL_ENTITY = "legal-entity", _("legal entity")
    ENTREPRENEUR = "enterpreneur", _("sole trader")


# Corporate customers: tracked attributes and their history field names.
CORPORATE_TRACKED_FIELDS = {
    "nick_name": "nick_name",
    "manager_id": "manager",
    "external_id": "external_id",
    "vip": "vip",
    "bad": "bad",
    "source": "source.source",
    "medium": "source.medium",
    "campaign": "source.campaign",
    "keyword": "source.keyword",
    "content": "source.content",
}
# The parts of an address, as model field names (customers' and corporate customers' addresses alike).
ADDRESS_PARTS = ("index", "country_iso", "region", "city", "street", "building", "flat", "notes", "text")
CONTRAGENT_FIELDS = (
    "contragent_type",
    "legal_name",
    "legal_address",
    "inn",
    "kpp",
    "okpo",
    "ogrn",
    "ogrnip",
    "certificate_number",
    "bik",
    "bank",
    "bank_address",
    "corr_account",
    "bank_account",
)
