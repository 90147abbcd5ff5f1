"""The analytics panels of the order and customer cards: the same scope as the card, the "not enough
data" states, the figures and the suggestions they show."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lavka.analytics import crosssell, panels
from lavka.analytics.models import CustomerMetrics, Segment
from lavka.analytics.tests.test_crosssell import build_baskets
from lavka.customers.actions import CustomerData, create_customer
from lavka.orders.actions import ItemData, OrderData, create_order

WHO = ["alice", "bob", "supervisor", "admin", "outsider", "operator"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alices(shop):
    data = CustomerData(first_name="Анна", phones=["+79161234567"], manager=shop.alice, manager_set=True)
    return create_customer(shop.site, data, actor=shop.actor(shop.admin))


def metrics_for(customer, **values) -> CustomerMetrics:
    return CustomerMetrics.objects.create(
        customer=customer, site=customer.site, updated_at=timezone.now(), **values
    )


def panel(client, customer):
    return client.get(reverse("analytics:customer_panel", args=[customer.pk]))


@pytest.mark.parametrize("who", WHO)
def test_customer_panel_has_the_cards_scope(shop, alices, who):
    client = client_for(getattr(shop, who))
    card = client.get(reverse("customers:detail", args=[alices.pk])).status_code
    assert panel(client, alices).status_code == card
    assert card == (200 if who in ("alice", "supervisor", "admin") else 404)


@pytest.mark.parametrize("who", WHO)
def test_order_panel_has_the_cards_scope(shop, who):
    data = OrderData(
        new_customer=CustomerData(first_name="Ира", phones=["+79160000002"]),
        items=[ItemData(offer_id=shop.tea.pk)],
        manager=shop.alice,
        manager_set=True,
    )
    order = create_order(shop.site, data, actor=shop.actor(shop.admin))
    client = client_for(getattr(shop, who))
    card = client.get(reverse("orders:detail", args=[order.pk])).status_code
    response = client.get(reverse("analytics:order_pairs", args=[order.pk]))
    assert response.status_code == card
    assert card == (200 if who in ("alice", "supervisor", "admin") else 404)
    if card == 200:
        assert "Often bought together" in response.content.decode()
        assert "Nothing is bought together often enough" in response.content.decode()


def test_panels_are_read_only(shop, alices):
    client = client_for(shop.admin)
    assert client.post(reverse("analytics:customer_panel", args=[alices.pk])).status_code == 405


def test_cards_load_the_panels(shop, alices):
    client = client_for(shop.alice)
    page = client.get(reverse("customers:detail", args=[alices.pk])).content.decode()
    assert f'hx-get="{reverse("analytics:customer_panel", args=[alices.pk])}"' in page
    data = OrderData(customer=alices, items=[ItemData(offer_id=shop.tea.pk)])
    order = create_order(shop.site, data, actor=shop.actor(shop.alice))
    page = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert f'hx-get="{reverse("analytics:order_pairs", args=[order.pk])}"' in page


def test_customer_without_metrics_shows_not_enough_data(shop, alices):
    text = panel(client_for(shop.alice), alices).content.decode()
    assert "Not enough data yet" in text
    assert "Likely next purchase" in text
    assert "Not enough data: nothing this customer bought" in text


def test_customer_without_scores_shows_not_enough_data_per_figure(shop, alices):
    metrics_for(alices, orders_count=1, lifecycle="new")
    text = panel(client_for(shop.alice), alices).content.decode()
    assert "Not enough data yet" not in text
    assert "<dt>Lifecycle</dt>\n  <dd>New</dd>" in text
    # Segment, R/F/M, P(alive), expected value and churn risk have nothing to show.
    assert text.count("not enough data") == 5


def test_customer_panel_shows_the_figures_escaped(shop, alices):
    metrics_for(
        alices,
        orders_count=4,
        r_score=2,
        f_score=3,
        m_score=4,
        rfm_segment="at_risk",
        lifecycle="sleeping",
        p_alive=0.4234,
        expected_purchases_365=1.26,
        predicted_value=1234.5,
        churn_risk=0.58,
        churn_reason="<b>no order for 200 days</b>, usual gap 40",
    )
    text = panel(client_for(shop.alice), alices).content.decode()
    assert "At risk" in text
    assert "2 / 3 / 4" in text
    assert "<dd>Sleeping</dd>" in text
    assert "42&nbsp;%" in text
    assert "58&nbsp;%" in text
    assert "1,234.50" in text
    assert "≈ 1.3 orders in the next year" in text
    assert "&lt;b&gt;no order for 200 days&lt;/b&gt;, usual gap 40" in text
    assert "<b>no order" not in text
    assert "not enough data" not in text


def test_customer_panel_lists_the_segments_it_belongs_to(shop, alices, monkeypatch):
    now = timezone.now()
    for code, site in (("vip", shop.site), ("all-sites", None), ("no", shop.site)):
        Segment.objects.create(name=f"<{code}>", code=code, site=site, created_at=now, updated_at=now)
    Segment.objects.create(name="other", code="other", site=shop.other_site, created_at=now, updated_at=now)
    asked = []

    def memberships(customer_id, candidates):
        assert customer_id == alices.pk
        asked.extend(s.code for s in candidates)
        return ["vip", "all-sites", "other"]

    monkeypatch.setattr(panels, "_memberships", lambda: memberships)
    metrics_for(alices, rfm_segment="champions", r_score=5, f_score=5, m_score=5)
    text = panel(client_for(shop.alice), alices).content.decode()
    assert sorted(asked) == ["all-sites", "no", "vip"]  # not another site's segment
    assert "&lt;vip&gt;" in text and "&lt;all-sites&gt;" in text
    assert "&lt;no&gt;" not in text and ">other<" not in text
    assert "Champions" in text


def test_segments_are_optional_and_never_break_the_card(shop, alices, monkeypatch):
    now = timezone.now()
    Segment.objects.create(name="vip", code="vip", site=shop.site, created_at=now, updated_at=now)
    monkeypatch.setattr(panels, "_memberships", lambda: None)
    assert panels.segments_of(alices) == []

    def broken(customer_id, candidates):
        raise ValueError("bad definition")

    monkeypatch.setattr(panels, "_memberships", lambda: broken)
    assert panels.segments_of(alices) == []
    assert panel(client_for(shop.alice), alices).status_code == 200


def test_with_the_segments_module(shop, alices):
    """The real membership test of lavka.analytics.segments (definition format from its docstring)."""
    pytest.importorskip("lavka.analytics.segments")
    now = timezone.now()
    for code, stage in (("sleepers", "sleeping"), ("actives", "active")):
        condition = {"field": "metrics.lifecycle", "operator": "in", "value": [stage]}
        Segment.objects.create(
            name=code,
            code=code,
            site=shop.site,
            definition={"op": "and", "items": [condition]},
            created_at=now,
            updated_at=now,
        )
    metrics_for(alices, lifecycle="sleeping")
    assert [s.code for s in panels.segments_of(alices)] == ["sleepers"]


def test_panels_show_the_suggestions(shop):
    data = build_baskets(shop)
    crosssell.refresh_pairs(shop.site)
    client = client_for(shop.admin)
    # Order #7 holds B D F: C (with D) then A (with B).
    text = client.get(reverse("analytics:order_pairs", args=[data.orders[6].pk])).content.decode()
    assert text.index("Чайник") < text.index("Пуэр")
    assert "bought with Пиала in 3 orders, lift 1.5" in text
    assert "bought with Чашка in 4 orders, lift 1.3" in text
    # Customer ira bought A F: likely B.
    text = panel(client, data.customers["ira"]).content.decode()
    assert "Чашка" in text and "bought with Пуэр in 4 orders, lift 1.3" in text


def test_a_suggestion_from_several_items_says_so(shop, settings):
    data = build_baskets(shop)
    settings.LAVKA_CROSSSELL_MIN_ORDERS = 1
    crosssell.refresh_pairs(shop.site)
    # Order #8 holds C D F: E is paired with D (lift 2.5, the stronger) and with C.
    text = client_for(shop.admin).get(reverse("analytics:order_pairs", args=[data.orders[7].pk]))
    text = " ".join(text.content.decode().split())
    assert "Ситечко" in text
    assert "bought with Пиала in 1 order, lift 2.5 and 1 more item" in text


def test_panel_query_count_does_not_grow_with_the_suggestions(shop, django_assert_max_num_queries):
    data = build_baskets(shop)
    crosssell.refresh_pairs(shop.site)
    client = client_for(shop.admin)
    url = reverse("analytics:order_pairs", args=[data.orders[6].pk])
    client.get(url)  # warm the session and the user
    with django_assert_max_num_queries(6):
        assert client.get(url).status_code == 200


def test_metrics_updated_at_is_shown(shop, alices):
    moment = timezone.make_aware(datetime.datetime(2024, 3, 5, 10, 30))
    CustomerMetrics.objects.create(customer=alices, site=shop.site, updated_at=moment)
    assert "Computed" in panel(client_for(shop.alice), alices).content.decode()
