import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.actor import Source
from lavka.core.validators import validate_web_address


class Site(models.Model):
    """A storefront. Most data belongs to one site."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    url = models.CharField(_("URL"), max_length=200, blank=True, validators=[validate_web_address])
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    country = models.CharField(_("country"), max_length=2, default="RU", help_text=_("Default phone region"))
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Moscow")
    language = models.CharField(_("language"), max_length=8, default="ru")
    order_suffix = models.CharField(_("order number suffix"), max_length=8, blank=True)
    phones = models.CharField(_("phones"), max_length=255, blank=True)
    address = models.CharField(_("address"), max_length=500, blank=True)
    zip_code = models.CharField(_("postcode"), max_length=20, blank=True)
    description = models.TextField(_("description"), blank=True)
    yml_url = models.CharField(
        _("catalog feed URL"),
        max_length=500,
        blank=True,
        help_text=_("ICML / YML"),
        validators=[validate_web_address],
    )
    review_url = models.URLField(_("review link"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)

    class Meta:
        ordering = ["ordering", "code"]
        verbose_name = _("site")

    def __str__(self) -> str:
        return self.name


_ELEMENT_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CustomDictionary(models.Model):
    """A list of choices for dictionary custom fields: `elements` is `[{code, name, ordering}]`."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    elements = models.JSONField(_("elements"), default=list, blank=True)

    MAX_ELEMENTS = 1000

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "custom dictionaries"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.elements, list) or len(self.elements) > self.MAX_ELEMENTS:
            raise ValidationError({"elements": _("Expected a list of at most 1000 elements.")})
        seen = set()
        for n, element in enumerate(self.elements):
            key = f"elements[{n}]"
            if not isinstance(element, dict):
                raise ValidationError({key: _("Expected an element with a code and a name.")})
            code, name = element.get("code"), element.get("name")
            if not isinstance(code, str) or not _ELEMENT_CODE.match(code):
                raise ValidationError({f"{key}.code": _("Letters, digits, - and _ only, at most 64.")})
            if code in seen:
                raise ValidationError({f"{key}.code": _("This code is used twice.")})
            seen.add(code)
            if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
                raise ValidationError({f"{key}.name": _("A name of at most 255 characters is required.")})
            if not isinstance(element.get("ordering"), int) or isinstance(element.get("ordering"), bool):
                raise ValidationError({f"{key}.ordering": _("Expected a whole number.")})

    def codes(self) -> set[str]:
        return {element["code"] for element in self.elements}


class CustomField(models.Model):
    """A field a shop adds to its orders or customers; values live in the entity's `custom_fields`."""

    class Entity(models.TextChoices):
        ORDER = "order", _("order")
        CUSTOMER = "customer", _("customer")

    class Type(models.TextChoices):
        STRING = "string", _("text")
        TEXT = "text", _("long text")
        INTEGER = "integer", _("integer")
        NUMERIC = "numeric", _("number")
        BOOLEAN = "boolean", _("yes/no")
        DATE = "date", _("date")
        EMAIL = "email", _("e-mail")
        DICTIONARY = "dictionary", _("choice from a dictionary")

    # Where retailCRM shows the field and whether it can be edited there; kept for API clients.
    class DisplayArea(models.TextChoices):
        MAIN_DATA = "main_data", _("main data")
        CUSTOMER = "customer", _("customer")
        ADDRESS = "address", _("address")
        DELIVERY = "delivery", _("delivery")
        PAYMENT = "payment", _("payment")
        DIMENSIONS = "dimensions", _("dimensions")
        LEGAL_DETAILS = "legal_details", _("legal details")
        SHIPMENT = "shipment", _("shipment")

    class ViewMode(models.TextChoices):
        EDITABLE = "editable", _("editable")
        NOT_EDITABLE = "not_editable", _("read-only")
        MISS = "miss", _("hidden")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="custom_fields")
    entity = models.CharField(_("entity"), max_length=16, choices=Entity.choices)
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=255)
    type = models.CharField(_("type"), max_length=16, choices=Type.choices, default=Type.STRING)
    dictionary = models.ForeignKey(
        CustomDictionary,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fields",
        verbose_name=_("dictionary"),
    )
    required = models.BooleanField(_("required"), default=False)
    in_filter = models.BooleanField(_("in list filters"), default=False)
    in_list = models.BooleanField(_("in list columns"), default=False)
    display_area = models.CharField(
        _("display area"), max_length=16, choices=DisplayArea.choices, default=DisplayArea.CUSTOMER
    )
    view_mode = models.CharField(
        _("view mode"), max_length=16, choices=ViewMode.choices, default=ViewMode.EDITABLE
    )
    ordering = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["ordering", "code"]
        constraints = [
            models.UniqueConstraint(fields=["site", "entity", "code"], name="custom_field_unique_code")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Keyed by `type`: the settings form has no dictionary field to show the error on.
        if self.type == self.Type.DICTIONARY and self.dictionary_id is None:
            raise ValidationError({"type": _("A dictionary field needs a dictionary.")})
        if self.type != self.Type.DICTIONARY:
            self.dictionary = None


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("history is append-only")

    def delete(self):
        raise PermissionError("history is append-only")


class HistoryRecord(models.Model):
    """One field-level change of one entity. Append-only and hash-chained (see core.history).

    The primary key is the chain position, assigned under the chain lock, so ids grow in
    commit order: a reader that moves `sinceId` forward never skips a late commit.
    """

    id = models.BigIntegerField(primary_key=True)
    entity = models.CharField(max_length=32)
    entity_id = models.BigIntegerField()
    field = models.CharField(max_length=100)
    old_value = models.JSONField(null=True)
    new_value = models.JSONField(null=True)
    created = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    # No index: records are never looked up by user (and users are deactivated, not deleted).
    user = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_ref = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    context = models.JSONField(default=dict, blank=True)  # item / payment refs, merge target …
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["entity", "entity_id", "id"], name="history_entity_idx"),
            # The API's history feed: WHERE entity = … AND id > sinceId ORDER BY id.
            models.Index(fields=["entity", "id"], name="history_feed_idx"),
        ]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("history is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("history is append-only")


class ChainHead(models.Model):
    """The single row that serialises history writers and remembers the chain's tip."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class OutboxEvent(models.Model):
    """A domain event written in the same transaction as the change that caused it."""

    type = models.CharField(max_length=100)
    payload = models.JSONField()
    actor = models.JSONField(default=dict)
    depth = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"], name="outbox_pending_idx", condition=models.Q(processed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.type}#{self.pk}"


class ReceiverDelivery(models.Model):
    """Proof that one receiver handled one event; unique, and committed with the receiver's own writes."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    receiver = models.CharField(max_length=150)
    processed_at = models.DateTimeField(auto_now_add=True)
    worker = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "receiver"], name="receiver_delivery_once")]


class EventTrace(models.Model):
    """Diagnostics: one row per receiver call (not unique), to prove exactly-once in durability tests."""

    event_id = models.BigIntegerField(db_index=True)
    type = models.CharField(max_length=100)
    worker = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(auto_now_add=True)


class Job(models.Model):
    """A background job in the database queue (the default jobs backend)."""

    name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    run_after = models.DateTimeField(db_index=True)
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["run_after"], name="job_pending_idx", condition=models.Q(done_at__isnull=True)
            )
        ]
