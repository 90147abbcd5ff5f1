"""The only writers of users, teams and API keys."""

import hashlib
import secrets
import string
import time
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.accounts.events import PresenceChanged
from lavka.accounts.models import ApiKey, SavedFilter, Team, User
from lavka.accounts.scopes import API_SCOPES
from lavka.core import events
from lavka.core.actor import Actor
from lavka.core.models import Site
from lavka.core.validation import clean_text

KEY_ALPHABET = string.ascii_letters + string.digits


class UnknownSite(ValueError):
    pass


def _sites(codes: Iterable[str]) -> list[Site]:
    codes = list(codes)
    sites = list(Site.objects.filter(code__in=codes))
    missing = set(codes) - {s.code for s in sites}
    if missing:
        raise UnknownSite(", ".join(sorted(missing)))
    return sites


@transaction.atomic
def create_user(
    username: str,
    *,
    role: str,
    password: str,
    actor: Actor,
    site_codes: Iterable[str] = (),
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    language: str = "ru",
    check_password: bool = True,
    team: Team | None = None,
    working_hours: dict[str, list[str]] | None = None,
) -> User:
    if role not in User.Roles.values:
        raise ValueError(f"unknown role {role!r}")
    if User.objects.filter(username__iexact=username).exists():
        raise ValueError(f"user {username!r} exists")
    user = User(
        username=username,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
        language=language,
        team=team,
        working_hours=working_hours or {},
        is_staff=role == User.Roles.ADMIN,
    )
    if check_password:
        validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.sites.set(_sites(site_codes) if site_codes else [])
    return user


@transaction.atomic
def update_user(user: User, *, actor: Actor, sites: Iterable[Site] | None = None, **fields) -> User:
    for name, value in fields.items():
        setattr(user, name, value)
    user.is_staff = user.role == User.Roles.ADMIN
    user.full_clean(exclude=["password"])
    user.save()
    if sites is not None:
        user.sites.set(list(sites))
    user.__dict__.pop("site_ids", None)
    return user


@transaction.atomic
def set_presence(user: User, presence: str, *, actor: Actor) -> User:
    """Working, busy or absent; a real change emits `accounts.presence_changed` (assignment reacts to it)."""
    if presence not in User.Presence.values:
        raise ValueError(f"unknown presence {presence!r}")
    old = User.objects.select_for_update().filter(pk=user.pk).values_list("presence", flat=True).first()
    user.presence = presence
    if old is None or old == presence:
        return user
    User.objects.filter(pk=user.pk).update(presence=presence)
    events.emit(PresenceChanged(user.pk, old, presence), actor=actor)
    return user


@transaction.atomic
def set_password(user: User, password: str, *, actor: Actor) -> User:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


@transaction.atomic
def save_team(team: Team | None, *, name: str, supervisor: User | None, actor: Actor) -> Team:
    team = team or Team()
    team.name, team.supervisor = name.strip(), supervisor
    team.full_clean()
    team.save()
    return team


@transaction.atomic
def save_filter(user: User, page: str, name: str, query: str, *, actor: Actor) -> SavedFilter:
    """Keep a list's query string under a name; the same name again replaces it."""
    name = clean_text(name, "name", 100)
    if not name:
        raise ValidationError({"name": _("This field is required.")})
    saved, _created = SavedFilter.objects.update_or_create(
        user=user, page=page, name=name, defaults={"query": clean_text(query, "query", 2000)}
    )
    return saved


def delete_filter(saved: SavedFilter, *, actor: Actor) -> None:
    saved.delete()


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# Keys found recently, by hash: an integration calls many times a second, and the key with its sites
# need not be read for each call. A revocation reaches other processes within this many seconds.
_found_keys: dict[str, tuple[float, ApiKey]] = {}


def find_api_key(raw: str) -> ApiKey | None:
    """The active key for this raw value, or None."""
    if not raw or len(raw) > 128:
        return None
    digest = _hash_key(raw)
    now = time.monotonic()
    cached = _found_keys.get(digest)
    if cached and now - cached[0] < settings.LAVKA_API_KEY_CACHE_SECONDS:
        return cached[1]
    key = ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).prefetch_related("sites").first()
    if key is None:
        _found_keys.pop(digest, None)
        return None
    _ = key.site_codes  # computed once, while cached
    if len(_found_keys) > 1000:
        _found_keys.clear()
    _found_keys[digest] = (now, key)
    return key


@transaction.atomic
def create_api_key(
    name: str,
    *,
    actor: Actor,
    scopes: Iterable[str] | None = None,
    site_codes: Iterable[str] | None = None,
    rate_limit: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its raw value, which is shown once and never stored.

    No scopes: every scope. No sites: every site (access_full).
    """
    name = clean_text(name, "name", 150)
    if not name:
        raise ValidationError({"name": _("Required.")})
    scopes = list(dict.fromkeys(scopes or API_SCOPES))
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown:
        raise ValidationError({"scopes": _("Unknown scope: %(scopes)s") % {"scopes": ", ".join(unknown)}})
    sites = _sites(site_codes) if site_codes else []
    raw = "".join(secrets.choice(KEY_ALPHABET) for _i in range(32))
    key = ApiKey.objects.create(
        name=name,
        prefix=raw[:6],
        key_hash=_hash_key(raw),
        scopes=scopes,
        site_access=ApiKey.SiteAccess.SELECTIVE if sites else ApiKey.SiteAccess.FULL,
        rate_limit=rate_limit,
        created_by=actor.user,
    )
    key.sites.set(sites)
    return key, raw


@transaction.atomic
def revoke_api_key(key: ApiKey, *, actor: Actor) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    _found_keys.pop(key.key_hash, None)
    return key


def touch_api_key(key: ApiKey, *, every_seconds: int = 60) -> None:
    """Record use, at most once a minute per key so that busy keys do not write on every call."""
    now = timezone.now()
    if key.last_used_at and (now - key.last_used_at).total_seconds() < every_seconds:
        return
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
