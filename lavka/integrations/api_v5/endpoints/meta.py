"""API v5: versions, credentials, system info, settings, statistics refresh (§2.1)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from lavka import __version__
from lavka.core.models import Site
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api, endpoints


@api("GET", "/api/api-versions", scope=None)
def api_versions(req: ApiRequest) -> dict[str, Any]:
    """API versions this server speaks."""
    return {"versions": ["3.0", "4.0", "5.0"]}


@api("GET", "/api/credentials", scope=None)
def credentials(req: ApiRequest) -> dict[str, Any]:
    """The key's scopes and sites, and the methods it may call."""
    key = req.key
    sites = Site.objects.order_by("ordering", "code")
    if key.site_codes is not None:
        sites = sites.filter(code__in=key.site_codes)
    allowed = sorted(
        {
            e.pattern if e.pattern.startswith("/api/") else "/api/" + e.pattern
            for e in endpoints()
            if e.scope is None or e.scope in key.scopes
        }
    )
    return {
        "scopes": list(key.scopes),
        "siteAccess": key.site_access,
        "sitesAvailable": list(sites.values_list("code", flat=True)),
        "credentials": allowed,
    }


@api("GET", "/api/system-info", scope=None)
def system_info(req: ApiRequest) -> dict[str, Any]:
    """Server version and its public address."""
    url = req.http.build_absolute_uri("/").rstrip("/") if req.http is not None else ""
    return {"systemVersion": f"lavka-{__version__}", "publicUrl": url, "technicalUrl": url}


@api("GET", "settings", scope=None)
def account_settings(req: ApiRequest) -> dict[str, Any]:
    """Account settings: currency, language, time zone."""
    now = formats.dt(timezone.now())
    site = Site.objects.order_by("ordering", "code").first()
    return {
        "settings": {
            "default_currency": {"value": site.currency if site else "RUB", "updated_at": now},
            "system_language": {"value": settings.LANGUAGE_CODE.upper(), "updated_at": now},
            "timezone": {"value": settings.TIME_ZONE, "updated_at": now},
            "work_times": [],
            "non_working_days": [],
        }
    }


@api("GET", "statistic/update", scope="analytics_write")
def statistic_update(req: ApiRequest) -> dict[str, Any]:
    """Ask for a statistics refresh (customer figures are kept current by events already)."""
    return {}
