from functools import cached_property

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site
from lavka.core.permissions import Role


class Team(models.Model):
    """A group of managers (e.g. "Sales Moscow"); assignment and reports work per team."""

    name = models.CharField(_("name"), max_length=150, unique=True)
    supervisor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="supervised_teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Roles(models.TextChoices):
        ADMIN = Role.ADMIN, _("administrator")
        SUPERVISOR = Role.SUPERVISOR, _("supervisor")
        MANAGER = Role.MANAGER, _("manager")
        OPERATOR = Role.OPERATOR, _("operator")

    class Presence(models.TextChoices):
        WORKING = "working", _("working")
        BUSY = "busy", _("busy")
        ABSENT = "absent", _("absent")

    role = models.CharField(_("role"), max_length=16, choices=Roles.choices, default=Roles.MANAGER)
    patronymic = models.CharField(_("patronymic"), max_length=150, blank=True)
    sites = models.ManyToManyField(Site, blank=True, related_name="users", verbose_name=_("sites"))
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    presence = models.CharField(
        _("presence"), max_length=16, choices=Presence.choices, default=Presence.WORKING
    )
    # {"mon": ["09:00", "18:00"], …}; a missing day is a day off.
    working_hours = models.JSONField(_("working hours"), default=dict, blank=True)
    phone_extension = models.CharField(_("phone extension"), max_length=16, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=[("ru", "Русский"), ("en", "English")], default="ru"
    )

    class Meta:
        ordering = ["last_name", "first_name", "username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @cached_property
    def site_ids(self) -> list[int]:
        return list(self.sites.values_list("id", flat=True))


class SavedFilter(models.Model):
    """A list filter a user keeps under a name: the list's query string, replayed as a link."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="saved_filters")
    page = models.CharField(_("page"), max_length=32)  # "orders", "customers" …
    name = models.CharField(_("name"), max_length=100)
    query = models.CharField(_("query"), max_length=2000)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "page", "name"], name="saved_filter_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A key an integration uses for the API v5. Only a SHA-256 of the key is stored.

    The key is 32 random characters, so a fast hash is enough to make a leaked table useless, and it
    keeps the per-request lookup cheap (argon2 would cost ~50 ms on every call).
    """

    class SiteAccess(models.TextChoices):
        FULL = "access_full", _("all sites")
        SELECTIVE = "access_selective", _("selected sites")

    name = models.CharField(_("name"), max_length=150)
    prefix = models.CharField(_("key starts with"), max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(_("scopes"), default=list)
    site_access = models.CharField(
        _("site access"), max_length=20, choices=SiteAccess.choices, default=SiteAccess.FULL
    )
    sites = models.ManyToManyField(Site, blank=True, related_name="api_keys", verbose_name=_("sites"))
    rate_limit = models.PositiveIntegerField(
        _("requests per second"), null=True, blank=True, help_text=_("Empty: the installation's default.")
    )
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @cached_property
    def site_codes(self) -> frozenset[str] | None:
        """The sites this key may touch; None means every site."""
        if self.site_access == self.SiteAccess.FULL:
            return None
        return frozenset(self.sites.values_list("code", flat=True))
