"""API v5: custom_fields (retailcrm-api-v5.md)."""

from lavka.integrations.api_v5.router import api  # noqa: F401
