"""Segment actions: dynamic and frozen segments, snapshots, history and events, errors naming the field."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from lavka.analytics import segments
from lavka.analytics.models import Segment, SegmentMember
from lavka.analytics.segments import actions
from lavka.analytics.segments.actions import SegmentData
from lavka.core.actor import Actor
from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.actions import CustomerData, create_customer, update_customer

SYSTEM = Actor.system("tests")
VIP = {"op": "and", "items": [{"field": "vip", "operator": "is", "value": True}]}


def customer(site, name, **fields):
    return create_customer(site, CustomerData(first_name=name, **fields), actor=SYSTEM)


@pytest.fixture
def vips(shop):
    return [
        customer(shop.site, "Анна", vip=True),
        customer(shop.site, "Борис", vip=True),
        customer(shop.site, "Вера"),
    ]


def members(segment: Segment) -> set[str]:
    return set(segments.customers(segment).values_list("first_name", flat=True))


def test_a_dynamic_segment_follows_the_customers(shop, vips):
    segment = actions.create_segment(
        SegmentData(name="VIP", definition=VIP, site=shop.site, site_set=True), actor=SYSTEM
    )
    assert segment.code == "vip" and segment.kind == Segment.Kind.DYNAMIC
    assert segment.last_count == 2 and segment.counted_at is not None
    assert not SegmentMember.objects.filter(segment=segment).exists()
    update_customer(vips[2], CustomerData(vip=True), actor=SYSTEM)
    assert members(segment) == {"Анна", "Борис", "Вера"}
    assert segments.contains(segment, vips[2].pk)


def test_a_frozen_segment_keeps_its_snapshot(shop, vips):
    segment = actions.create_segment(SegmentData(name="VIP", definition=VIP, kind="frozen"), actor=SYSTEM)
    assert segment.last_count == 2 and segment.frozen_at is not None
    assert set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)) == {
        vips[0].pk,
        vips[1].pk,
    }
    update_customer(vips[2], CustomerData(vip=True), actor=SYSTEM)
    update_customer(vips[0], CustomerData(vip=False), actor=SYSTEM)
    assert members(segment) == {"Анна", "Борис"}  # as it was when frozen
    assert not segments.contains(segment, vips[2].pk) and segments.contains(segment, vips[0].pk)
    assert segments.count(segment) == 2

    refreshed = actions.refresh_segment(segment, actor=SYSTEM)
    assert refreshed.last_count == 2 and members(refreshed) == {"Борис", "Вера"}
    record = (
        HistoryRecord.objects.filter(entity="segment", entity_id=segment.pk, field="members")
        .order_by("id")
        .last()
    )
    assert record.old_value["count"] == record.new_value["count"] == 2
    assert record.old_value["frozen_at"] < record.new_value["frozen_at"]
    frozen_events = OutboxEvent.objects.filter(
        type="analytics.segment_frozen", payload__segment_id=segment.pk
    )
    assert frozen_events.count() == 2


def test_changing_a_frozen_definition_takes_the_snapshot_again(shop, vips):
    segment = actions.create_segment(SegmentData(name="VIP", definition=VIP, kind="frozen"), actor=SYSTEM)
    nobody_vip = {"op": "and", "items": [{"field": "vip", "operator": "is", "value": False}]}
    segment = actions.update_segment(segment, SegmentData(definition=nobody_vip), actor=SYSTEM)
    assert members(segment) == {"Вера"} and segment.last_count == 1
    # Only the name changed: the snapshot stays.
    update_customer(vips[0], CustomerData(vip=False), actor=SYSTEM)
    segment = actions.update_segment(segment, SegmentData(name="Not VIP"), actor=SYSTEM)
    assert members(segment) == {"Вера"}


def test_freeze_then_thaw(shop, vips):
    segment = actions.create_segment(SegmentData(name="VIP", definition=VIP), actor=SYSTEM)
    segment = actions.freeze_segment(segment, actor=SYSTEM)
    assert segment.kind == Segment.Kind.FROZEN and SegmentMember.objects.filter(segment=segment).count() == 2
    segment = actions.update_segment(segment, SegmentData(kind="dynamic"), actor=SYSTEM)
    assert segment.frozen_at is None and not SegmentMember.objects.filter(segment=segment).exists()
    assert members(segment) == {"Анна", "Борис"}


def test_merged_customers_leave_frozen_segments_too(shop, vips):
    from lavka.customers.actions import merge_customers

    segment = actions.create_segment(SegmentData(name="VIP", definition=VIP, kind="frozen"), actor=SYSTEM)
    merge_customers(vips[2], [vips[1]], actor=SYSTEM)
    assert members(segment) == {"Анна"}


def test_history_and_events(shop, vips):
    actor = Actor.for_user(shop.supervisor)
    segment = actions.create_segment(SegmentData(name="VIP", code="vip-2024", definition=VIP), actor=actor)
    assert segment.created_by == shop.supervisor
    fields = set(
        HistoryRecord.objects.filter(entity="segment", entity_id=segment.pk).values_list("field", flat=True)
    )
    assert {"id", "name", "code", "kind", "definition"} <= fields
    actions.update_segment(segment, SegmentData(description="Наши лучшие"), actor=actor)
    saved = OutboxEvent.objects.filter(type="analytics.segment_saved", payload__segment_id=segment.pk)
    assert [e.payload["created"] for e in saved.order_by("id")] == [True, False]
    assert saved.order_by("id").last().payload["fields"] == ["description"]
    actions.delete_segment(segment, actor=actor)
    assert not Segment.objects.filter(pk=segment.pk).exists()
    deleted = HistoryRecord.objects.get(entity="segment", entity_id=segment.pk, field="deleted")
    assert deleted.old_value["code"] == "vip-2024"
    assert OutboxEvent.objects.filter(type="analytics.segment_deleted", payload__code="vip-2024").exists()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (SegmentData(name="", definition=VIP), "name"),
        (SegmentData(name="A", code="not a slug", definition=VIP), "code"),
        (SegmentData(name="A", kind="sometimes", definition=VIP), "kind"),
        (
            SegmentData(name="A", definition={"items": [{"field": "vip", "operator": "is", "value": 3}]}),
            "definition.items.0.value",
        ),
        (
            SegmentData(name="A", definition={"items": [{"field": "nope", "operator": "is"}]}),
            "definition.items.0.field",
        ),
    ],
)
def test_errors_name_the_field(shop, data, key):
    with pytest.raises(ValidationError) as caught:
        actions.create_segment(data, actor=SYSTEM)
    assert key in caught.value.message_dict
    assert not Segment.objects.exists()


def test_codes_are_unique_and_made_from_the_name(shop):
    first = actions.create_segment(SegmentData(name="Sleeping VIPs", definition=VIP), actor=SYSTEM)
    second = actions.create_segment(SegmentData(name="Sleeping VIPs", definition=VIP), actor=SYSTEM)
    cyrillic = actions.create_segment(SegmentData(name="Спящие", definition=VIP), actor=SYSTEM)
    assert (first.code, second.code, cyrillic.code) == ("sleeping-vips", "sleeping-vips-2", "segment")
    with pytest.raises(ValidationError) as caught:
        actions.update_segment(second, SegmentData(code="sleeping-vips"), actor=SYSTEM)
    assert "code" in caught.value.message_dict


def test_definitions_are_stored_checked_and_plain(shop):
    definition = {"items": [{"field": "metrics.revenue", "operator": "gte", "value": "1000,50"}]}
    segment = actions.create_segment(SegmentData(name="Rich", definition=definition), actor=SYSTEM)
    segment.refresh_from_db()
    assert segment.definition == {
        "op": "and",
        "items": [{"field": "metrics.revenue", "operator": "gte", "value": 1000.5}],
    }
