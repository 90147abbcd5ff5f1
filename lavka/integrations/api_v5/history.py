"""The history feed shared by orders, customers and corporate customers (§2.2.7).

Records come in id order; `sinceId` moves forward; `page` with `sinceId` is a 400; pagination is
counted over what is left, so `currentPage < totalPageCount` means "there is more".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from lavka.core.models import HistoryRecord
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.errors import ApiError, InvalidParameters
from lavka.integrations.api_v5.request import HISTORY_LIMITS, ApiRequest, pagination

# Lavka's sources in retailCRM's words: "code" is a change the system made by itself.
SOURCES = {"user": "user", "api": "api", "rule": "rule", "system": "code", "import": "code"}

Serializer = Callable[[list[HistoryRecord], ApiRequest], list[dict[str, Any]]]


def record_base(record: HistoryRecord, req: ApiRequest) -> dict[str, Any]:
    """The keys every history record has; flags and actors only when they apply (§1.12)."""
    out: dict[str, Any] = {"id": record.id, "createdAt": formats.dt(record.created_at)}
    if record.created:
        out["created"] = True
    out["source"] = SOURCES.get(record.source, "code")
    if record.source == "api":
        out["apiKey"] = {"current": record.actor_ref == str(req.key.pk)}
    elif record.source == "user" and record.user_id:
        out["user"] = {"id": record.user_id}
    return out


def _since_id(value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidParameters("sinceId") from None
    if not 0 <= number < 2**62:
        raise InvalidParameters("sinceId")
    return number


def feed(
    req: ApiRequest,
    entity: str,
    serialize: Serializer,
    *,
    entity_ids: Any = None,
) -> dict[str, Any]:
    """`{history, pagination, generatedAt}` for `entity` ("order", "customer" …).

    `entity_ids` (a list or a `values("id")` queryset) narrows the feed: to one order for
    `filter[orderId]`, and to the key's sites for a key with selective site access.
    """
    flt = req.filter
    limit, page = req.limit_page(HISTORY_LIMITS)
    # Paging with sinceId is refused (clients move sinceId instead). page=1 is let through: the
    # official Python client sends it on every call, and it means "the start of the remainder".
    if flt.get("sinceId") not in (None, "") and page > 1:
        raise ApiError("Errors in the input parameters", 400, {"page": "page cannot be used with sinceId"})
    rows = HistoryRecord.objects.filter(entity=entity)
    if flt.get("sinceId") not in (None, ""):
        rows = rows.filter(id__gt=_since_id(flt["sinceId"]))
    start = formats.parse_datetime(flt.get("startDate"), "startDate", error="Errors in the input parameters")
    end = formats.parse_datetime(flt.get("endDate"), "endDate", error="Errors in the input parameters")
    if start:
        rows = rows.filter(created_at__gte=start)
    if end:
        rows = rows.filter(created_at__lte=end)
    if entity_ids is not None:
        rows = rows.filter(entity_id__in=entity_ids)
    total = rows.count()
    records = list(rows.order_by("id")[(page - 1) * limit : page * limit])
    return {
        "history": serialize(records, req),
        "pagination": pagination(limit, page, total),
        "generatedAt": formats.dt(timezone.now()),
    }
