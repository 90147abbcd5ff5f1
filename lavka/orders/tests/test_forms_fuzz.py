"""Fuzz the order and customer forms: whatever is posted, never a 500 and never a partial write."""

from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lavka.core.models import HistoryRecord, OutboxEvent
from lavka.customers.models import Customer
from lavka.customers.tests.test_views import form_data as customer_form
from lavka.customers.tests.test_views import new_customer
from lavka.orders.models import Order
from lavka.orders.tests.test_views import form_data as order_form
from lavka.orders.tests.test_views import make_order

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Browsers send UTF-8, which cannot carry lone surrogates; everything else is fair game.
CHARS = st.characters(blacklist_categories=("Cs",))
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "-0.001",
    "1e999",
    "1E+30",
    "NaN",
    "-Infinity",
    "9" * 40,
    "٣",
    "²",
    "1,5",
    "0.0001",
    "\x00",
    "+7 916 123-45-67",
    "2030-02-30",
    "25:61",
    "a@b",
    "<script>alert(1)</script>",
    "'; DROP TABLE x;--",
    str(2**63),
    str(-(2**63)),
    "１２３",
    "null",
    "[]",
    "{}",
]
VALUES = st.one_of(
    st.text(alphabet=CHARS, max_size=40),
    st.text(alphabet=CHARS, min_size=200, max_size=3000),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(NASTY),
    st.none(),  # the key is left out
)
ITEM_KEYS = [
    f"items-{i}-{name}"
    for i in range(3)
    for name in (
        "id",
        "offer",
        "quantity",
        "initial_price",
        "discount_manual_amount",
        "discount_manual_percent",
        "comment",
        "DELETE",
    )
]
ORDER_KEYS = [
    "site",
    "customer",
    "confirm_new_customer",
    "last_name",
    "first_name",
    "patronymic",
    "phone",
    "email",
    "order_type",
    "order_method",
    "manager",
    "delivery_type",
    "delivery_cost",
    "delivery_address",
    "delivery_date",
    "delivery_time_from",
    "delivery_time_to",
    "discount_manual_amount",
    "discount_manual_percent",
    "payment_type",
    "payment_status",
    "payment_amount",
    "source",
    "customer_comment",
    "items-TOTAL_FORMS",
    "items-INITIAL_FORMS",
    *ITEM_KEYS,
]
CUSTOMER_KEYS = [
    "site",
    "confirm_duplicate",
    "last_name",
    "first_name",
    "patronymic",
    "phones",
    "email",
    "birthday",
    "sex",
    "manager",
    "vip",
    "bad",
    "tags",
    "source",
    "address_text",
    "address_index",
    "address_building",
    "address_flat",
    "consent_email_marketing",
    "consent_sms_service",
]


def overrides(keys: list[str]) -> st.SearchStrategy:
    return st.dictionaries(st.sampled_from(keys), VALUES, max_size=8)


def mutate(data: dict, changes: dict) -> dict:
    data = dict(data)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def rows() -> tuple[int, int, int, int]:
    return (
        Order.objects.count(),
        Customer.objects.count(),
        HistoryRecord.objects.count(),
        OutboxEvent.objects.count(),
    )


def post_and_check(client: Client, url: str, data: dict) -> None:
    before = rows()
    response = client.post(url, data)  # an exception in the view fails the test: that would be a 500
    assert response.status_code in (200, 302, 400), response.status_code
    if response.status_code != 302:
        assert rows() == before, "a rejected form wrote something"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_order_create_form_fuzz(shop):
    client = logged_in(shop.alice)

    @FUZZ
    @given(changes=overrides(ORDER_KEYS))
    def run(changes):
        post_and_check(client, reverse("orders:create"), mutate(order_form(shop), changes))

    run()


def test_order_edit_form_fuzz(shop):
    order = make_order(shop, shop.alice, manager=shop.alice)
    client = logged_in(shop.alice)
    base = order_form(
        shop,
        **{
            "customer": str(order.customer_id),
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "1",
            "items-0-id": str(order.items.get().pk),
        },
    )

    @FUZZ
    @given(changes=overrides(ORDER_KEYS))
    def run(changes):
        post_and_check(client, reverse("orders:edit", args=[order.pk]), mutate(base, changes))

    run()


def test_customer_create_form_fuzz(shop):
    client = logged_in(shop.alice)

    @FUZZ
    @given(changes=overrides(CUSTOMER_KEYS))
    def run(changes):
        post_and_check(client, reverse("customers:create"), mutate(customer_form(shop), changes))

    run()


def test_customer_edit_form_fuzz(shop):
    customer = new_customer(shop, shop.alice, manager=shop.alice)
    # A supervisor keeps seeing the customer whoever the fuzzed form makes responsible.
    client = logged_in(shop.supervisor)

    @FUZZ
    @given(changes=overrides(CUSTOMER_KEYS))
    def run(changes):
        post_and_check(
            client, reverse("customers:edit", args=[customer.pk]), mutate(customer_form(shop), changes)
        )

    run()
