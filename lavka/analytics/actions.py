"""The only writers of analytics' own tables: costs and their reference books.

Costs are input for ROI and CAC figures; each change is written with its history and event in one
transaction (DESIGN.md §6).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lavka.analytics.events import CostCreated, CostDeleted, CostUpdated
from lavka.analytics.models import Cost, CostGroup, CostItem
from lavka.core import events, history
from lavka.core.actions import apply_and_save
from lavka.core.actor import Actor, Source
from lavka.core.history import Change
from lavka.core.models import Site
from lavka.core.validation import clean_decimal, clean_text

ENTITY = "cost"
TRACKED_FIELDS = {
    "date_from": "date_from",
    "date_to": "date_to",
    "summ": "summ",
    "cost_item_id": "cost_item",
    "comment": "comment",
    "order_id": "order",
    "user_id": "user",
    "source": "source.source",
    "medium": "source.medium",
    "campaign": "source.campaign",
    "keyword": "source.keyword",
    "content": "source.content",
}
SOURCE_FIELDS = ("source", "medium", "campaign", "keyword", "content")


@dataclass
class CostData:
    """What the API or a form may set on a cost; None means "leave as it is".

    `order` and `user` may also be cleared, so they carry a `*_set` flag.
    """

    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    summ: Any = None
    cost_item: CostItem | None = None
    comment: str | None = None
    order: Any = None  # an orders.Order
    order_set: bool = False
    user: Any = None  # an accounts.User
    user_set: bool = False
    sites: list[Site] | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    keyword: str | None = None
    content: str | None = None


def _apply(cost: Cost, data: CostData) -> None:
    if data.date_from is not None:
        cost.date_from = data.date_from
    if data.date_to is not None:
        cost.date_to = data.date_to
    if data.summ is not None:
        cost.summ = clean_decimal(data.summ, "summ")
    if data.cost_item is not None:
        cost.cost_item = data.cost_item
    if data.comment is not None:
        cost.comment = clean_text(data.comment, "comment", 1000)
    if data.order_set:
        cost.order = data.order
    if data.user_set:
        cost.user = data.user
    for name in SOURCE_FIELDS:
        value = getattr(data, name)
        if value is not None:
            setattr(cost, name, clean_text(value, name, 255))
    for name in ("date_from", "date_to", "summ", "cost_item_id"):
        if getattr(cost, name) is None:
            raise ValidationError({name.removesuffix("_id"): _("This field is required.")})
    if cost.date_from > cost.date_to:
        raise ValidationError({"date_to": _("The period must end after it starts.")})
    if cost.order is not None and data.sites and cost.order.site_id not in {s.pk for s in data.sites}:
        raise ValidationError({"order": _("The order belongs to another site.")})


def _site_codes(cost: Cost) -> list[str]:
    return sorted(cost.sites.values_list("code", flat=True))


def _snapshot(cost: Cost) -> dict[str, Any]:
    return {**history.snapshot(cost, TRACKED_FIELDS), "sites": _site_codes(cost)}


def _created(cost: Cost, actor: Actor) -> None:
    changes = [Change(ENTITY, cost.pk, "id", None, cost.pk, created=True)]
    changes += [
        Change(ENTITY, cost.pk, name, None, value, created=True)
        for name, value in _snapshot(cost).items()
        if value not in (None, "", [])
    ]
    history.write(changes, actor)
    events.emit(CostCreated(cost.pk, cost.cost_item.code, str(cost.summ), _site_codes(cost)), actor=actor)


def _new(data: CostData, actor: Actor) -> Cost:
    cost = Cost(created_at=timezone.now(), created_by=actor.user)
    if actor.source == Source.API and actor.ref.isdigit():
        cost.created_by_api_key_id = int(actor.ref)
    _apply(cost, data)
    cost.save()
    cost.sites.set(data.sites or [])
    return cost


@transaction.atomic
def create_cost(data: CostData, *, actor: Actor) -> Cost:
    cost = _new(data, actor)
    _created(cost, actor)
    return cost


@transaction.atomic
def upload_costs(costs: Iterable[CostData], *, actor: Actor) -> list[Cost]:
    """Several costs, all or none: errors are keyed `<index>.<field>`."""
    created, errors = [], {}
    for index, data in enumerate(costs):
        try:
            with transaction.atomic():
                created.append(_new(data, actor))
        except ValidationError as exc:
            errors.update({f"{index}.{name}": messages for name, messages in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    for cost in created:
        _created(cost, actor)
    return created


@transaction.atomic
def update_cost(cost: Cost, data: CostData, *, actor: Actor) -> Cost:
    cost = Cost.objects.select_for_update(of=("self",)).select_related("cost_item", "order").get(pk=cost.pk)
    before = _snapshot(cost)
    _apply(cost, data)
    cost.save()
    if data.sites is not None:
        cost.sites.set(data.sites)
    changes = history.diff(ENTITY, cost.pk, before, _snapshot(cost))
    history.write(changes, actor)
    if changes:
        events.emit(
            CostUpdated(cost.pk, cost.cost_item.code, sorted({c.field for c in changes})), actor=actor
        )
    return cost


@transaction.atomic
def delete_costs(costs: Iterable[Cost], *, actor: Actor) -> list[int]:
    """Remove costs; their history keeps what they were. Returns the ids removed."""
    removed = []
    for cost in costs:
        snapshot = _snapshot(cost)
        code = cost.cost_item.code
        pk = cost.pk
        cost.delete()
        history.write([Change(ENTITY, pk, "deleted", snapshot, None)], actor)
        events.emit(CostDeleted(pk, code), actor=actor)
        removed.append(pk)
    return removed


@transaction.atomic
def save_cost_group(code: str, values: dict[str, Any], *, actor: Actor) -> tuple[CostGroup, bool]:
    """Create or change a cost group by code; errors are keyed by field name."""
    group = CostGroup.objects.select_for_update().filter(code=code).first()
    created = group is None
    return apply_and_save(group or CostGroup(code=code), values), created


@transaction.atomic
def save_cost_item(code: str, values: dict[str, Any], *, actor: Actor) -> tuple[CostItem, bool]:
    """Create or change a cost item by code; a new item needs its group."""
    item = CostItem.objects.select_for_update().filter(code=code).first()
    created = item is None
    if created and values.get("group") is None:
        raise ValidationError({"group": _("This field is required.")})
    return apply_and_save(item or CostItem(code=code), values), created
