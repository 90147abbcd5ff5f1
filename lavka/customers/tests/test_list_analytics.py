"""The customers list filtered and sorted by the analytics figures (CustomerMetrics rows made by hand):
customers without figures never match a figure filter and sort last either way; the usual filters,
scope and export still apply."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lavka.accounts.models import SavedFilter
from lavka.analytics.models import CustomerMetrics
from lavka.customers.actions import CustomerData, create_customer
from lavka.customers.models import Customer

# name: (lifecycle, rfm segment, r, f, m, churn risk, P(alive), predicted value); None: no metrics row.
FIGURES = {
    "anna": ("active", "champions", 5, 5, 5, 0.10, 0.95, 9000.0),
    "boris": ("sleeping", "at_risk", 2, 3, 4, 0.70, 0.30, 2500.0),
    "vera": ("churned", "lost", 1, 1, 1, 0.95, 0.05, 100.0),
    "gleb": ("new", "new", 5, 1, 2, None, None, None),  # scored, not modelled
    "dina": None,
}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(shop):
    actor = shop.actor(shop.admin)
    found = {}
    for i, (name, figures) in enumerate(FIGURES.items()):
        data = CustomerData(first_name=name, last_name=name, phones=[f"+7916000000{i}"])
        found[name] = customer = create_customer(shop.site, data, actor=actor)
        if figures is None:
            continue
        lifecycle, segment, r, f, m, churn, alive, value = figures
        CustomerMetrics.objects.create(
            customer=customer,
            site=shop.site,
            lifecycle=lifecycle,
            rfm_segment=segment,
            r_score=r,
            f_score=f,
            m_score=m,
            churn_risk=churn,
            churn_reason=f"<i>{name}</i> reason",
            p_alive=alive,
            predicted_value=value,
            updated_at=timezone.now(),
        )
    return found


def listed(client, **params) -> list[str]:
    response = client.get(reverse("customers:list"), params)
    assert response.status_code == 200
    return [c.first_name for c in response.context["page"].rows]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"lifecycle": "sleeping"}, ["boris"]),
        ({"rfm_segment": "lost"}, ["vera"]),
        ({"churn_from": "70"}, ["boris", "vera"]),  # 0.70 is included
        ({"churn_from": "50", "churn_to": "90"}, ["boris"]),
        ({"alive_to": "30"}, ["boris", "vera"]),
        ({"alive_from": "90"}, ["anna"]),
        ({"value_from": "100", "value_to": "2500"}, ["boris", "vera"]),
        ({"value_from": "2500.01"}, ["anna"]),
        ({"lifecycle": "new", "churn_from": "0"}, []),  # no churn risk: not "0 % or more"
        ({"q": "anna", "lifecycle": "active"}, ["anna"]),
        ({"q": "anna", "lifecycle": "sleeping"}, []),
    ],
)
def test_filters(shop, people, params, expected):
    assert sorted(listed(client_for(shop.supervisor), **params)) == expected


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("-churn_risk", ["vera", "boris", "anna"]),
        ("churn_risk", ["anna", "boris", "vera"]),
        ("-p_alive", ["anna", "boris", "vera"]),
        ("p_alive", ["vera", "boris", "anna"]),
        ("-predicted_value", ["anna", "boris", "vera"]),
        ("predicted_value", ["vera", "boris", "anna"]),
        ("rfm", ["anna", "gleb", "boris", "vera"]),
        ("lifecycle", ["gleb", "anna", "boris", "vera"]),
    ],
)
def test_sorts_put_customers_without_figures_last(shop, people, sort, expected):
    rows = listed(client_for(shop.supervisor), sort=sort)
    assert rows[: len(expected)] == expected
    # gleb has scores but no model figures; dina has no metrics at all: both after the rest.
    assert set(rows[len(expected) :]) == {"gleb", "dina"} - set(expected)


def test_latest_order_first_puts_customers_without_orders_last(shop, people):
    # PostgreSQL sorts NULL first in a descending order unless told otherwise.
    Customer.objects.filter(pk=people["vera"].pk).update(last_order_at=timezone.now())
    assert listed(client_for(shop.supervisor), sort="-last_order_at")[0] == "vera"


def test_columns_show_the_figures_escaped(shop, people):
    text = client_for(shop.supervisor).get(reverse("customers:list"), {"sort": "rfm"}).content.decode()
    assert "At risk" in text and "Champions" in text
    assert "70&nbsp;%" in text and "30&nbsp;%" in text
    assert "9,000.00" in text
    assert 'title="&lt;i&gt;boris&lt;/i&gt; reason"' in text
    assert "<i>boris</i>" not in text
    assert "Sleeping" in text


def test_bad_numbers_are_refused_not_failed(shop, people):
    response = client_for(shop.supervisor).get(reverse("customers:list"), {"churn_from": "150"})
    assert response.status_code == 200
    assert response.context["filter"].errors
    response = client_for(shop.supervisor).get(reverse("customers:list"), {"value_to": "lots"})
    assert response.status_code == 200 and response.context["filter"].errors


def test_scope_applies_to_the_figure_filters(shop, people):
    # alice is a manager: she sees the unassigned customers of her site, and otto none of them.
    assert sorted(listed(client_for(shop.alice), churn_from="0")) == ["anna", "boris", "vera"]
    assert listed(client_for(shop.outsider), churn_from="0") == []


def test_export_follows_the_figure_filters(shop, people):
    response = client_for(shop.supervisor).get(reverse("customers:export"), {"lifecycle": "churned"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row[3] for row in rows[1:]] == ["vera"]  # the first name


def test_saved_filter_with_figures_round_trips(shop, people):
    client = client_for(shop.supervisor)
    query = "lifecycle=sleeping&sort=-churn_risk"
    response = client.post(
        reverse("settings:filter_save"), {"page": "customers", "query": query, "name": "<s>"}
    )
    assert response.status_code in (200, 302)
    saved = SavedFilter.objects.get(user=shop.supervisor, page="customers")
    text = client.get(reverse("customers:list")).content.decode()
    assert "&lt;s&gt;" in text
    assert listed(client, **dict(pair.split("=") for pair in saved.query.split("&"))) == ["boris"]
