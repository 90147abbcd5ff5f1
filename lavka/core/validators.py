"""Field validators the models use (kept apart from validation.py, which imports the models)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def validate_web_address(value: str) -> None:
    """An http(s) address with a host. Unlike Django's URLValidator it takes hosts without a domain
    (`http://shop/feed.xml`): shops run their storefront and its catalog feed inside Docker networks or
    on intranet names, and their plugins send those addresses."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if (
        not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() or ord(ch) < 32 for ch in value)
    ):
        raise ValidationError(_("Enter a valid http(s) address."), code="invalid")
