"""What an endpoint gets: the parsed parameters, the key, and helpers for the retailCRM conventions."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.signals import post_save
from django.dispatch import receiver

from lavka.accounts.models import ApiKey
from lavka.core.actor import Actor
from lavka.core.models import Site
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.errors import (
    ENTITY_ERROR,
    AccessDenied,
    ApiError,
    InvalidParameters,
    MissingParameter,
)

LIMITS = (20, 50, 100, 250)
HISTORY_LIMITS = (20, 50, 100)


@dataclass
class ApiRequest:
    key: ApiKey
    params: dict[str, Any]
    method: str
    path: str
    http: Any = None  # the Django HttpRequest
    _sites: dict[str, Site] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        return Actor.for_api_key(self.key)

    # --- plain parameters -------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def text(self, name: str, default: str = "") -> str:
        value = self.params.get(name)
        if value is None:
            return default
        if isinstance(value, dict | list):
            raise InvalidParameters(name)
        return str(value)

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        try:
            return p.boolean(self.params.get(name), name, default)
        except p.ParameterError:
            raise InvalidParameters(name) from None

    @property
    def filter(self) -> dict[str, Any]:
        """`filter[...]`; anything that is not a dict (the Python client's `filter=None`) is no filter."""
        value = p.decode_entity(self.params.get("filter"))
        if not isinstance(value, dict):
            return {}
        nul = p.find_nul(value, "filter")
        if nul:
            raise InvalidParameters(nul, "This value contains a NUL character.")
        return value

    def entity(self, *names: str, required: bool = True, kind: type | tuple = dict) -> Any:
        """The JSON-or-form entity field (`order`, `customer` …), first of `names` that is present."""
        for name in names:
            if name in self.params and self.params[name] not in (None, ""):
                value = p.decode_entity(self.params[name])
                if not isinstance(value, kind):
                    raise ApiError(ENTITY_ERROR, 400, {name: "This value is not valid."})
                nul = p.find_nul(value, name)
                if nul:
                    raise ApiError(ENTITY_ERROR, 400, {nul: "This value contains a NUL character."})
                return value
        if required:
            raise MissingParameter(names[0])
        return None

    def by(self, name: str = "by") -> str:
        value = self.text(name) or "externalId"
        if value not in ("externalId", "id"):
            raise ApiError(
                f"Value '{value}' for parameter '{name}' is not valid. Allowed values are id and externalId."
            )
        return value

    # --- pagination -------------------------------------------------------------------------------
    def limit_page(self, limits: tuple[int, ...] = LIMITS) -> tuple[int, int]:
        try:
            limit = int(str(self.params.get("limit") or limits[0]))
        except ValueError:
            raise InvalidParameters("limit") from None
        if limit not in limits:
            # Clamp rather than fail: old clients cannot handle a 400 here (§1.7).
            limit = min((lim for lim in limits if lim >= limit), default=limits[-1])
        try:
            page = int(str(self.params.get("page") or 1))
        except ValueError:
            raise InvalidParameters("page") from None
        if page < 1 or page > 10_000_000:
            raise InvalidParameters("page")
        return limit, page

    def paginate(
        self, queryset: QuerySet, limits: tuple[int, ...] = LIMITS, *, count: int | None = None
    ) -> tuple[list[Any], dict[str, int]]:
        limit, page = self.limit_page(limits)
        total = queryset.count() if count is None else count
        rows = list(queryset[(page - 1) * limit : page * limit])
        return rows, pagination(limit, page, total)

    # --- sites and access -------------------------------------------------------------------------
    def allows_site(self, site_code: str) -> bool:
        codes = self.key.site_codes
        return codes is None or site_code in codes

    def check_site(self, site: Site) -> Site:
        if not self.allows_site(site.code):
            raise AccessDenied()
        return site

    def site_q(self, field_name: str = "site") -> Q:
        """Rows of the sites this key may see."""
        codes = self.key.site_codes
        return Q() if codes is None else Q(**{f"{field_name}__code__in": codes})

    def site_by_code(self, code: Any, name: str = "site") -> Site:
        if isinstance(code, dict | list):
            raise InvalidParameters(name)
        code = str(code)
        if "\x00" in code or len(code) > 64:
            raise InvalidParameters(name)
        if code not in self._sites:
            site = known_site(code)
            if site is None:
                raise (
                    ApiError(f"Site with code '{code}' not found", 400)
                    if name == "site"
                    else ApiError(ENTITY_ERROR, 400, {name: f"Site with code '{code}' not found."})
                )
            self._sites[code] = site
        return self.check_site(self._sites[code])

    def site(self, *, required: bool = False, value: Any = None) -> Site | None:
        """The `site` parameter (or `value`, e.g. `order.site`).

        When absent: the key's only site, or the installation's only site; else 400 if `required`.
        """
        code = value if value not in (None, "") else self.params.get("site")
        if code not in (None, ""):
            return self.site_by_code(code)
        codes = self.key.site_codes
        if codes is not None and len(codes) == 1:
            return self.site_by_code(next(iter(codes)))
        if codes is None:
            only = list(Site.objects.filter(is_active=True)[:2])
            if len(only) == 1:
                return only[0]
        if required:
            raise MissingParameter("site")
        return None


# Sites by code, kept for a few seconds per process: nearly every call names its site. Saving a site
# in this process forgets them at once (below); other processes see a change within the same time.
_known_sites: dict[str, tuple[float, Site]] = {}


def known_site(code: str) -> Site | None:
    now = time.monotonic()
    cached = _known_sites.get(code)
    if cached and now - cached[0] < settings.LAVKA_API_KEY_CACHE_SECONDS:
        return cached[1]
    site = Site.objects.filter(code=code).first()
    if site is not None:
        if len(_known_sites) > 1000:
            _known_sites.clear()
        _known_sites[code] = (now, site)
    return site


@receiver(post_save, sender=Site)
def _forget_sites(**kwargs: Any) -> None:
    _known_sites.clear()


def pagination(limit: int, page: int, total: int) -> dict[str, int]:
    return {
        "limit": limit,
        "totalCount": total,
        "currentPage": page,
        "totalPageCount": math.ceil(total / limit) if total else 0,
    }
