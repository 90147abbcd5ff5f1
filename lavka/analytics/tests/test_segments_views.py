"""Segment pages: who may build and who may only look, the builder's edits as plain posts and as htmx,
the live count, saving dynamic and frozen segments, the segment's page and its CSV with the
requester's own scope, CSRF and escaping."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from lavka.analytics.models import Segment, SegmentMember
from lavka.analytics.segments import actions
from lavka.analytics.segments.actions import SegmentData
from lavka.core.actor import Actor
from lavka.core.testing import PASSWORD
from lavka.customers.actions import CustomerData, create_customer, update_customer

SYSTEM = Actor.system("tests")
VIP = {"op": "and", "items": [{"field": "vip", "operator": "is", "value": True}]}


def client_for(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def crowd(shop):
    """VIPs: Anna (Alice's), Boris (Bob's), Vera (nobody's), Olga (the other site); Gleb is not a VIP."""

    def make(site, name, manager=None, vip=True):
        data = CustomerData(first_name=name, vip=vip, manager=manager, manager_set=manager is not None)
        return create_customer(site, data, actor=SYSTEM)

    return {
        "anna": make(shop.site, "Анна", shop.alice),
        "boris": make(shop.site, "Борис", shop.bob),
        "vera": make(shop.site, "Вера"),
        "olga": make(shop.other_site, "Ольга"),
        "gleb": make(shop.site, "Глеб", vip=False),
    }


def vip_segment(site=None, kind="dynamic", name="VIP") -> Segment:
    data = SegmentData(name=name, definition=VIP, site=site, site_set=True, kind=kind)
    return actions.create_segment(data, actor=SYSTEM)


def builder_post(**extra) -> dict:
    """The builder's form with one condition, "VIP is yes", as the browser posts it."""
    data = {
        "name": "VIP",
        "code": "",
        "description": "",
        "kind": "dynamic",
        "op@": "and",
        "node": ["g:", "c:items.0"],
        "field@items.0": "vip",
        "operator@items.0": "is",
        "value@items.0": "true",
    }
    data.update(extra)
    return data


# --- who may do what --------------------------------------------------------------------------------


def test_managers_and_operators_cannot_build(shop, crowd):
    segment = vip_segment(shop.site)
    for user in (shop.alice, shop.operator):
        client = client_for(user)
        assert client.get(reverse("analytics:segment_new")).status_code == 404
        assert client.get(reverse("analytics:segment_edit", args=[segment.pk])).status_code == 404
        assert client.post(reverse("analytics:segment_count"), builder_post()).status_code == 404
        assert client.post(reverse("analytics:segment_refresh", args=[segment.pk])).status_code == 404
        assert client.post(reverse("analytics:segment_delete", args=[segment.pk])).status_code == 404
        page = client.get(reverse("analytics:segments"))
        assert page.status_code == 200 and "VIP" in page.content.decode()
        assert reverse("analytics:segment_new") not in page.content.decode()
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_a_segment_of_another_site_does_not_exist_for_its_outsiders(shop, crowd):
    other = vip_segment(shop.other_site, name="Other VIP")
    client = client_for(shop.supervisor)
    assert client.get(reverse("analytics:segment", args=[other.pk])).status_code == 404
    assert client.get(reverse("analytics:segment_export", args=[other.pk])).status_code == 404
    assert "Other VIP" not in client.get(reverse("analytics:segments")).content.decode()
    assert client_for(shop.outsider).get(reverse("analytics:segment", args=[other.pk])).status_code == 200


def test_supervisors_edit_only_their_sites_segments(shop, crowd):
    everywhere = vip_segment(None, name="All VIP")
    client = client_for(shop.supervisor)
    assert client.get(reverse("analytics:segment", args=[everywhere.pk])).status_code == 200  # may look
    assert client.get(reverse("analytics:segment_edit", args=[everywhere.pk])).status_code == 404
    # A supervisor's new segment must belong to one of their sites.
    response = client.post(
        reverse("analytics:segment_new"), builder_post(do="save", site=str(shop.other_site.pk))
    )
    assert response.status_code == 400 and not Segment.objects.filter(name="VIP").exists()


# --- the builder ---------------------------------------------------------------------------------


def test_the_builder_page_renders(shop, crowd):
    page = client_for(shop.supervisor).get(reverse("analytics:segment_new"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="field@items.0"' in html and "csrfmiddlewaretoken" in html
    assert 'id="live-count"' in html and 'value="metrics.lifecycle"' in html


def test_adding_and_removing_conditions_without_javascript(shop, crowd):
    client = client_for(shop.supervisor)
    url = reverse("analytics:segment_new")
    page = client.post(url, builder_post(do="add:", site=str(shop.site.pk)))
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html  # the whole page, for a plain post
    assert 'name="field@items.1"' in html
    page = client.post(url, builder_post(do="group:", site=str(shop.site.pk)))
    html = page.content.decode()
    assert 'value="g:items.1"' in html and 'name="field@items.1.items.0"' in html
    page = client.post(url, builder_post(do="remove:items.0", site=str(shop.site.pk)))
    assert 'name="field@items.0"' not in page.content.decode()


def test_htmx_gets_only_the_builder(shop, crowd):
    client = client_for(shop.supervisor)
    page = client.post(
        reverse("analytics:segment_new"),
        builder_post(do="add:", site=str(shop.site.pk)),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="builder",
    )
    html = page.content.decode()
    assert html.startswith('<div id="builder">') and "<html" not in html
    assert 'name="field@items.1"' in html
    assert "data-count" not in html and "incomplete" in html  # the new condition has no field yet
    html = client.post(
        reverse("analytics:segment_new"),
        builder_post(do="refresh", site=str(shop.site.pk)),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="builder",
    ).content.decode()
    assert 'data-count="3"' in html  # VIPs of the shop the supervisor sees: Anna, Boris, Vera


def test_changing_the_field_offers_its_operators(shop, crowd):
    client = client_for(shop.supervisor)
    data = builder_post(site=str(shop.site.pk))
    data["field@items.0"] = "metrics.lifecycle"  # "is" is not one of its operators
    html = client.post(reverse("analytics:segment_new"), data).content.decode()
    assert '<option value="in" selected>' in html
    assert 'value="sleeping"' in html  # the lifecycle stages to choose from


def test_live_count(shop, crowd):
    client = client_for(shop.supervisor)
    url = reverse("analytics:segment_count")
    response = client.post(url, builder_post(site=str(shop.site.pk)))
    assert response.status_code == 200 and 'data-count="3"' in response.content.decode()
    second = {
        "node": ["g:", "c:items.0", "c:items.1"],
        "field@items.1": "manager",
        "operator@items.1": "in",
        "value@items.1": [str(shop.alice.pk), "none"],
    }
    assert (
        'data-count="2"' in client.post(url, builder_post(site=str(shop.site.pk), **second)).content.decode()
    )
    incomplete = builder_post(site=str(shop.site.pk), **{"value@items.0": ""})
    html = client.post(url, incomplete).content.decode()
    assert "data-count" not in html and "incomplete" in html
    assert client.get(url).status_code == 405


def test_the_admin_counts_every_site(shop, crowd):
    html = (
        client_for(shop.admin)
        .post(reverse("analytics:segment_count"), builder_post(site=""))
        .content.decode()
    )
    assert 'data-count="4"' in html


def test_saving_a_dynamic_segment(shop, crowd):
    client = client_for(shop.supervisor)
    response = client.post(
        reverse("analytics:segment_new"), builder_post(do="save", site=str(shop.site.pk), name="Наши VIP")
    )
    segment = Segment.objects.get(name="Наши VIP")
    assert response.status_code == 302 and response["Location"] == reverse(
        "analytics:segment", args=[segment.pk]
    )
    assert segment.site == shop.site and segment.kind == "dynamic" and segment.last_count == 3
    assert segment.definition == VIP and segment.created_by == shop.supervisor
    assert segment.code == "vip"  # made from the Latin part of the name
    page = client.get(response["Location"])
    html = page.content.decode()
    assert 'data-count="3"' in html and "Анна" in html and "Глеб" not in html
    assert "VIP is yes" in html or "VIP" in html


def test_saving_a_frozen_segment_snapshots_it(shop, crowd):
    client = client_for(shop.supervisor)
    client.post(
        reverse("analytics:segment_new"),
        builder_post(do="save", site=str(shop.site.pk), kind="frozen", code="frozen-vip"),
    )
    segment = Segment.objects.get(code="frozen-vip")
    assert SegmentMember.objects.filter(segment=segment).count() == 3
    update_customer(crowd["gleb"], CustomerData(vip=True), actor=SYSTEM)
    html = client.get(reverse("analytics:segment", args=[segment.pk])).content.decode()
    assert 'data-count="3"' in html and "Глеб" not in html
    client.post(reverse("analytics:segment_refresh", args=[segment.pk]))
    html = client.get(reverse("analytics:segment", args=[segment.pk])).content.decode()
    assert 'data-count="4"' in html and "Глеб" in html


def test_a_bad_condition_is_shown_where_it_is_and_nothing_is_saved(shop, crowd):
    client = client_for(shop.supervisor)
    data = builder_post(do="save", site=str(shop.site.pk))
    data.update({"field@items.0": "metrics.revenue", "operator@items.0": "gte", "value@items.0": "a lot"})
    response = client.post(reverse("analytics:segment_new"), data)
    html = response.content.decode()
    assert response.status_code == 400 and not Segment.objects.exists()
    start = html.index('id="condition-items0"')
    assert "Enter a number." in html[start : html.index("</div>", html.index("field-error", start)) + 6]
    assert 'value="a lot"' in html  # what was typed stays


def test_editing_keeps_the_code_and_shows_the_definition(shop, crowd):
    segment = vip_segment(shop.site)
    client = client_for(shop.supervisor)
    html = client.get(reverse("analytics:segment_edit", args=[segment.pk])).content.decode()
    assert '<option value="vip" selected>' in html and '<option value="true" selected>' in html
    data = builder_post(do="save", site=str(shop.site.pk), name="VIP renamed")
    response = client.post(reverse("analytics:segment_edit", args=[segment.pk]), data)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "VIP renamed" and segment.code == "vip"


def test_delete(shop, crowd):
    segment = vip_segment(shop.site)
    response = client_for(shop.supervisor).post(reverse("analytics:segment_delete", args=[segment.pk]))
    assert response.status_code == 302 and not Segment.objects.filter(pk=segment.pk).exists()


# --- the segment's page and CSV ------------------------------------------------------------------


def export(user, segment) -> list[str]:
    response = client_for(user).get(reverse("analytics:segment_export", args=[segment.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    return sorted(row[3] for row in rows[1:])


def test_csv_has_only_the_customers_the_requester_may_see(shop, crowd):
    segment = vip_segment(None, name="All VIP")
    assert export(shop.admin, segment) == sorted(["Анна", "Борис", "Вера", "Ольга"])
    assert export(shop.supervisor, segment) == sorted(["Анна", "Борис", "Вера"])
    assert export(shop.alice, segment) == sorted(["Анна", "Вера"])  # her own and the unassigned queue
    assert export(shop.bob, segment) == sorted(["Борис", "Вера"])
    assert export(shop.outsider, segment) == ["Ольга"]


def test_a_manager_sees_their_part_of_a_segment(shop, crowd):
    segment = vip_segment(shop.site)
    html = client_for(shop.alice).get(reverse("analytics:segment", args=[segment.pk])).content.decode()
    assert 'data-count="2"' in html and "Анна" in html and "Вера" in html and "Борис" not in html


def test_output_is_escaped(shop, crowd):
    segment = vip_segment(shop.site, name="<script>alert(1)</script>")
    update_customer(crowd["anna"], CustomerData(first_name="<b>Анна</b>"), actor=SYSTEM)
    client = client_for(shop.supervisor)
    for url in (reverse("analytics:segments"), reverse("analytics:segment", args=[segment.pk])):
        html = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>Анна</b>" not in client.get(reverse("analytics:segment", args=[segment.pk])).content.decode()


def test_posts_need_the_csrf_token(shop, crowd):
    segment = vip_segment(shop.site)
    client = Client(enforce_csrf_checks=True)
    client.login(username=shop.supervisor.username, password=PASSWORD)
    for url, data in (
        (reverse("analytics:segment_new"), builder_post(do="save", site=str(shop.site.pk))),
        (reverse("analytics:segment_count"), builder_post(site=str(shop.site.pk))),
        (reverse("analytics:segment_refresh", args=[segment.pk]), {}),
        (reverse("analytics:segment_delete", args=[segment.pk]), {}),
    ):
        assert client.post(url, data).status_code == 403
    assert Segment.objects.count() == 1


def test_the_segments_list_shows_counts_to_those_who_see_the_whole_segment(shop, crowd):
    vip_segment(shop.site)
    vip_segment(None, name="All VIP")  # 4, one of them on the other site
    html = client_for(shop.supervisor).get(reverse("analytics:segments")).content.decode()
    assert '<td class="num">3</td>' in html and '<td class="num">4</td>' not in html
    html = client_for(shop.admin).get(reverse("analytics:segments")).content.decode()
    assert '<td class="num">3</td>' in html and '<td class="num">4</td>' in html
    html = client_for(shop.alice).get(reverse("analytics:segments")).content.decode()
    assert "All VIP" in html and '<td class="num">3</td>' not in html


def test_periods_and_groups_through_the_form(shop, crowd):
    """VIP and (no orders in the last 30 days or Bob's): every VIP of the shop, none of whom ordered."""
    data = builder_post(
        site=str(shop.site.pk),
        node=["g:", "c:items.0", "g:items.1", "c:items.1.items.0", "c:items.1.items.1"],
        **{
            "op@items.1": "or",
            "field@items.1.items.0": "orders.count",
            "operator@items.1.items.0": "lt",
            "value@items.1.items.0": "1",
            "period@items.1.items.0": "days",
            "days@items.1.items.0": "30",
            "field@items.1.items.1": "manager",
            "operator@items.1.items.1": "in",
            "value@items.1.items.1": [str(shop.bob.pk)],
        },
    )
    client = client_for(shop.supervisor)
    assert 'data-count="3"' in client.post(reverse("analytics:segment_count"), data).content.decode()
    data["operator@items.1.items.0"] = "gte"  # at least one order: nobody; so only Bob's Boris
    assert 'data-count="1"' in client.post(reverse("analytics:segment_count"), data).content.decode()
    data.update({"do": "save", "name": "Quiet VIPs", "period@items.1.items.0": "dates"})  # dates, none given
    response = client.post(reverse("analytics:segment_new"), data)
    assert response.status_code == 400 and "Enter a date" in response.content.decode()
    data.update({"from@items.1.items.0": "2024-01-01", "to@items.1.items.0": "2024-12-31"})
    assert client.post(reverse("analytics:segment_new"), data).status_code == 302
    assert Segment.objects.get(name="Quiet VIPs").definition["items"][1] == {
        "op": "or",
        "items": [
            {
                "field": "orders.count",
                "operator": "gte",
                "value": 1,
                "period": {"from": "2024-01-01", "to": "2024-12-31"},
            },
            {"field": "manager", "operator": "in", "value": [str(shop.bob.pk)]},
        ],
    }
