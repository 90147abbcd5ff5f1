from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotentResponse(models.Model):
    """The stored answer to a POST sent with an `Idempotency-Key` header.

    Written in the same transaction as the request's own changes, so a retry either finds the answer
    or finds nothing was done.
    """

    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotent_response_unique")]


class IntegrationModule(models.Model):
    """A store plugin or service registered through `integration-modules/{code}/edit`."""

    code = models.CharField(_("code"), max_length=255, unique=True)
    integration_code = models.CharField(_("integration code"), max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    active = models.BooleanField(_("active"), default=True)
    client_id = models.CharField(max_length=255, blank=True)
    base_url = models.CharField(max_length=1000, blank=True)
    account_url = models.CharField(max_length=1000, blank=True)
    data = models.JSONField(default=dict, blank=True)  # everything else the module sent, as sent
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code
