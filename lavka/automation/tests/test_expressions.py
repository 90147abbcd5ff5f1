"""The condition language: operators and precedence, fields of related objects, changed/old/new, nulls,
errors with their exact positions, explain(), limits, and a fuzz that only ExpressionError comes out."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lavka.automation import expressions
from lavka.automation.expressions import (
    BOOL,
    DATE,
    DATETIME,
    MONEY,
    NUMBER,
    STRING,
    Context,
    ExpressionError,
    Schema,
    check,
    compile_condition,
    compile_expression,
    evaluate,
    explain,
    list_of,
    obj,
    parse,
)
from lavka.automation.expressions.nodes import Attr, Binary, BoolOp, Call, Literal, Name, Unary
from lavka.automation.subjects import EVENT, ITEM, NOW, PAYMENT, USER

MSK = datetime.timezone(datetime.timedelta(hours=3))
NOW_AT = datetime.datetime(2025, 3, 5, 10, 15, tzinfo=MSK)  # a Wednesday

CUSTOMER = obj(
    "customer",
    {
        "id": NUMBER,
        "name": STRING,
        "email": STRING,
        "phones": list_of(STRING, "phone"),
        "tags": list_of(STRING, "tag"),
        "vip": BOOL,
        "orders_count": NUMBER,
        "total_summ": MONEY,
        "last_order_at": DATETIME.null(),
        "birthday": DATE.null(),
        "manager": USER.null(),
    },
)
ORDER = obj(
    "order",
    {
        "id": NUMBER,
        "number": STRING,
        "site": STRING,
        "status": STRING,
        "total_summ": MONEY,
        "prepay_sum": MONEY,
        "delivery_cost": MONEY,
        "full_paid": BOOL,
        "created_at": DATETIME,
        "delivery_date": DATE.null(),
        "manager": USER.null(),
        "customer": CUSTOMER.null(),
        "items": list_of(ITEM, "item"),
        "payments": list_of(PAYMENT, "payment"),
        "custom": obj(
            "custom fields", {"gift": BOOL.null(), "my-code": STRING.null(), "1c_id": STRING.null()}
        ),
    },
)
SCHEMA = Schema(
    {"order": ORDER, "now": NOW, "event": EVENT},
    {"status": STRING, "manager": NUMBER, "delivery_cost": MONEY, "items": None, "custom.gift": BOOL},
)


def user(username: str, team: str | None = "Sales") -> dict:
    return {
        "id": 7,
        "username": username,
        "name": username.title(),
        "first_name": username.title(),
        "last_name": "",
        "email": "",
        "role": "manager",
        "presence": "working",
        "team": team,
    }


def line(sku: str, quantity: str, price: str) -> dict:
    q, p = Decimal(quantity), Decimal(price)
    return {
        "id": 1,
        "product_name": sku.lower(),
        "sku": sku,
        "quantity": q,
        "initial_price": p,
        "discount_manual_amount": Decimal("0.00"),
        "summ": q * p,
        "comment": "",
        "external_id": "",
        "offer": {"id": 1, "sku": sku, "name": sku.title(), "external_id": f"x-{sku}"},
        "product": {"id": 1, "name": sku.title(), "external_id": ""},
    }


def order_values(**overrides) -> dict:
    values = {
        "id": 42,
        "number": "42A",
        "site": "shop",
        "status": "paid",
        "total_summ": Decimal("4200.00"),
        "prepay_sum": Decimal("0.00"),
        "delivery_cost": Decimal("300.00"),
        "full_paid": False,
        "created_at": datetime.datetime(2025, 3, 1, 12, 0, tzinfo=MSK),
        "delivery_date": datetime.date(2025, 3, 7),
        "manager": user("alice"),
        "customer": {
            "id": 3,
            "name": "Петрова Анна",
            "email": "Anna@Example.com",
            "phones": ["+79161234567"],
            "tags": ["vip", "опт"],
            "vip": True,
            "orders_count": 1,
            "total_summ": Decimal("4200.00"),
            "last_order_at": datetime.datetime(2024, 12, 1, 12, 0, tzinfo=MSK),
            "birthday": None,
            "manager": None,
        },
        "items": [line("TEA", "2", "450.00"), line("CUP", "3", "333.33")],
        "payments": [
            {
                "id": 1,
                "type": "cash",
                "status": "paid",
                "amount": Decimal("100.00"),
                "paid": True,
                "paid_at": None,
                "external_id": None,
                "comment": "",
            }
        ],
        "custom": {"gift": True, "my-code": "abc", "1c_id": None},
    }
    values.update(overrides)
    return values


def context(order: dict | None = None, **changes) -> Context:
    return Context(
        {
            "order": order if order is not None else order_values(),
            "now": {
                "hour": 10,
                "minute": 15,
                "weekday": 2,
                "day": 5,
                "month": 3,
                "year": 2025,
                "date": NOW_AT.date(),
                "time": "10:15",
            },
            "event": {"type": "orders.status_changed", "source": "user", "depth": 0},
        },
        changed=frozenset(changes.get("changed", ())),
        old=changes.get("old", {}),
        new=changes.get("new", {}),
        now=NOW_AT,
    )


def value(text: str, ctx: Context | None = None):
    return evaluate(compile_expression(text, SCHEMA), ctx or context())


def holds(text: str, ctx: Context | None = None) -> bool:
    result = evaluate(compile_condition(text, SCHEMA), ctx or context())
    assert result is True or result is False
    return result


def error(text: str, *, condition: bool = True) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        check(text, SCHEMA, condition=condition)
    return caught.value


# --- operators and precedence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", Decimal(7)),
        ("(1 + 2) * 3", Decimal(9)),
        ("10 - 4 - 3", Decimal(3)),  # left to right
        ("24 / 4 / 2", Decimal(3)),
        ("10 / 4", Decimal("2.5")),
        ("-2 * 3", Decimal(-6)),
        ("- -2", Decimal(2)),
        ("2 - -2", Decimal(4)),
        ("1 / 3 * 3", Decimal("0.9999999999999999999999999999999999")),  # 34 digits, never a float
        ('"tea" + "pot"', "teapot"),
        ('"say \\"hi\\"\\n"', 'say "hi"\n'),
        ("'it\\'s \\\\ \\t \\u00e9'", "it's \\ \t é"),
        ('"ёлка 🎄"', "ёлка 🎄"),
        ("true", True),
        ("null", None),
    ],
)
def test_arithmetic_and_literals(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true or false and false", True),  # and binds tighter than or
        ("(true or false) and false", False),
        ("not true or true", True),  # not binds tighter than or
        ("not (true or true)", False),
        ("not 1 == 2", True),  # comparisons bind tighter than not
        ("1 + 2 == 3 and 2 * 3 > 5", True),
        ("0.1 + 0.2 == 0.3", True),  # decimal, exactly
        ("1 == 1.000", True),
        ("1 != 2 and 2 <= 2 and 3 >= 3 and 1 < 2 and 2 > 1", True),
        ('"abc" < "abd"', True),
        ('"b" in "abc" and "x" not in "abc"', True),
        ("true and true and true and false", False),
        ("false or false or false or true", True),
        ("not not true", True),
        ("true == true and false != true", True),
        ("null == null", True),
    ],
)
def test_precedence_and_comparisons(text, expected):
    assert holds(text) is expected


def test_the_tree_is_frozen_dataclasses_with_spans():
    tree = parse('a.b >= 1 and not f("x")')
    assert tree == BoolOp(
        "and",
        (
            Binary(
                ">=",
                Attr(Name("a", start=0, end=1), "b", 2, start=0, end=3),
                Literal(Decimal(1), "number", start=7, end=8),
                4,
                start=0,
                end=8,
            ),
            Unary(
                "not",
                Call("f", (Literal("x", "string", start=19, end=22),), start=17, end=23),
                start=13,
                end=23,
            ),
        ),
        start=0,
        end=23,
    )
    with pytest.raises(AttributeError):
        tree.op = "or"  # type: ignore[misc]


# --- fields of the subject and of related objects --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'order.total_summ >= 4200 and order.site == "shop"',
        "order.total_summ == 4200 and order.total_summ > 4199.99 and order.total_summ < 4200.01",
        "order.total_summ - order.prepay_sum > 4000",
        "order.total_summ * 2 == 8400 and order.total_summ / 2 == 2100",
        "order.customer.orders_count == 1",
        '"vip" in order.customer.tags and "retail" not in order.customer.tags',
        'order.manager.team == "Sales" and order.manager.username == "alice"',
        "count(order.items) == 2 and count(order.payments) == 1",
        "any(order.items, item.quantity > 2)",
        "any(order.items, it.quantity > 2)",
        'any(order.items, item.offer.sku == "CUP" and item.product.name == "Cup")',
        "all(order.items, item.initial_price > 300)",
        "count(order.items, item.quantity >= 3) == 1",
        "sum(order.items, item.summ) == 1899.99",
        "sum(order.items, item.quantity * item.initial_price) + order.delivery_cost == 2199.99",
        "min(order.items, item.initial_price) == 333.33 and max(order.items, item.initial_price) == 450",
        'max(order.items, item.sku) == "TEA" and min(order.items, item.sku) == "CUP"',
        "min(order.total_summ, 5000) == 4200 and max(order.total_summ, 5000, 10) == 5000",
        'any(order.customer.tags, tag == "опт") and any(order.customer.phones, phone != "")',
        "any(order.payments, payment.paid and payment.amount == 100)",
        'lower(order.customer.email) == "anna@example.com"',
        "len(order.number) == 3 and len(order.items) == 2",
        "now.hour >= 9 and now.weekday < 5 and now.date == now.date",
        'now.time >= "09:00" and now.time < "18:00"',
        "days_since(order.created_at) == 3 and days_since(order.customer.last_order_at) > 90",
        "days_since(order.delivery_date) == -2",
        "order.custom.gift and order.custom[\"my-code\"] == 'abc' and order.custom.1c_id == null",
        'event.type == "orders.status_changed" and event.source != "rule"',
        "order.created_at < order.customer.last_order_at or order.full_paid == false",
        'any(order.items, any(order.customer.tags, tag == "vip") and item.quantity > 0)',
    ],
)
def test_conditions_on_fields_hold(text):
    assert holds(text)


def test_money_stays_money_and_counts_are_numbers():
    assert check("order.total_summ * 2", SCHEMA, condition=False) == MONEY
    assert check("order.total_summ / order.prepay_sum", SCHEMA, condition=False).kind == "number"
    assert check("sum(order.items, item.summ)", SCHEMA, condition=False) == MONEY
    assert check("count(order.items)", SCHEMA, condition=False) == NUMBER
    assert check("order.manager", SCHEMA, condition=False).nullable
    assert check("lower(order.number)", SCHEMA, condition=False) == STRING
    assert check("order.total_summ > 1", SCHEMA) == BOOL


# --- changed / old / new ---------------------------------------------------------------------------


def test_changed_old_new():
    ctx = context(changed={"status"}, old={"status": "new"}, new={"status": "paid"})
    assert holds('changed("status") and new("status") == "paid"', ctx)
    assert holds('old("status") == "new" and old("status") != new("status")', ctx)
    assert not holds('changed("manager")', ctx)
    assert holds('old("manager") == null and new("delivery_cost") == null', ctx)
    assert not holds('new("delivery_cost") > 100', ctx)  # not changed: null, and null > 100 is false
    assert holds('changed("items") or changed("status")', ctx)
    money = context(
        changed={"delivery_cost"}, old={"delivery_cost": Decimal("300")}, new={"delivery_cost": None}
    )
    assert not holds('new("delivery_cost") < old("delivery_cost")', money)
    assert check('new("delivery_cost")', SCHEMA, condition=False) == MONEY.null()
    assert compile_condition('changed("status")', SCHEMA).uses_changes
    assert not compile_condition("order.total_summ > 1", SCHEMA).uses_changes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('changed("staus")', "unknown field 'staus' in changed() at 8; did you mean 'status'?"),
        ("changed(status)", 'changed() needs a field name in quotes at 8; e.g. changed("status")'),
        ('old("items") == null', "old() has no value for 'items' at 4; use changed(\"items\")"),
        ('new("custom.gfit")', "unknown field 'custom.gfit' in new() at 4; did you mean 'custom.gift'?"),
        ("changed()", "changed() takes 1 argument, got 0 at 0"),
        ('changed("status", "manager")', "changed() takes 1 argument, got 2 at 0"),
        ('new("status") == 5', "cannot compare string with number at 14"),
    ],
)
def test_changed_errors(text, message):
    assert error(text).message == message


# --- nulls -----------------------------------------------------------------------------------------


def test_a_missing_related_object_makes_comparisons_false_never_an_error():
    ctx = context(order_values(manager=None, customer=None))
    assert holds("not order.manager and order.manager == null", ctx)
    assert not holds("not order.manager")
    assert holds("not order.manager", ctx)
    assert not holds('order.manager.username == "alice"', ctx)
    assert not holds("order.manager.id > 0", ctx)
    assert not holds("order.manager.id <= 0", ctx)
    assert holds('order.manager.username != "alice"', ctx)  # != is exactly "not ==" (documented)
    assert not holds('"vip" in order.customer.tags', ctx)
    assert holds('"vip" not in order.customer.tags', ctx)
    assert not holds('any(order.customer.tags, tag == "vip")', ctx)
    assert not holds('all(order.customer.tags, tag != "")', ctx)
    assert holds("count(order.customer.tags) == 0", ctx)
    assert holds("sum(order.customer.phones, len(phone)) == 0", ctx)
    assert value("max(order.customer.tags, tag)", ctx) is None
    assert value("order.customer.orders_count + 1", ctx) is None
    assert value("lower(order.manager.name)", ctx) is None
    assert value("len(order.manager.name)", ctx) is None
    assert value("days_since(order.customer.last_order_at)", ctx) is None
    assert value("-order.customer.total_summ", ctx) is None
    assert holds("order.customer.orders_count + 1 == null", ctx)


def test_division_by_zero_and_overflow_are_null():
    assert value("order.total_summ / 0") is None
    assert value("order.total_summ / order.prepay_sum") is None
    assert value("0 / 0") is None
    assert not holds("order.total_summ / 0 > 1")
    huge = "9" * 900
    assert value(f"{huge} * {huge}") == Decimal("1E+1800")  # rounded to 34 digits, no error
    assert holds("all(order.items, item.quantity > 0) and all(order.payments, payment.paid)")
    assert holds("all(order.items, item.quantity > 0)", context(order_values(items=[])))  # vacuously


def test_truthiness_of_values_used_as_conditions():
    ctx = context(order_values(number="", items=[], prepay_sum=Decimal("0.00")))
    assert holds("not order.number and not order.items and not order.prepay_sum", ctx)
    assert holds("order.manager and order.items and order.number")
    assert holds("any(order.customer.tags)")  # any non-empty tag


# --- errors with positions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("(order.total_summ", "expected ')' at 17; found the end of the expression", 17),
        ("order.total_summ >= 10000 and", "expected a value at 29; the expression ends too early", 29),
        ("count(order.items", "expected ',' or ')' at 17; found the end of the expression", 17),
        ("count(order.items;", "unexpected character ';' at 17", 17),
        ('order.site = "shop"', "'=' is not an operator at 11; use '==' to compare", 11),
        ("order.manager && true", "'&' is not an operator at 14; use 'and'", 14),
        ("!order.manager", "'!' is not an operator at 0; use 'not'", 0),
        (
            "order.total_summ 100",
            "unexpected number 100 at 17; expected an operator such as 'and', '==' or '+'",
            17,
        ),
        ("1 < 2 < 3", "comparisons cannot be chained at 6; join them with 'and', e.g. a < b and b < c", 6),
        ('"unterminated', 'unterminated string at 0; close it with "', 0),
        (
            '"a\\qb"',
            "unknown escape '\\q' in a string at 2; write '\\\\' for a backslash; known escapes: "
            "\\\" \\' \\\\ \\n \\t \\r \\uXXXX",
            2,
        ),
        ('"\\u12"', "'\\u' needs four hex digits at 1; e.g. '\\u00e9' for é", 1),
        ('"\\ud800"', "'\\u' names a surrogate, not a character at 1", 1),
        ("order.", "expected a field name after '.' at 6; found the end of the expression", 6),
        ("order[1]", "expected a field name in quotes after '[' at 6; e.g. order.custom[\"my-field\"]", 6),
        ("a +", "expected a value at 3; the expression ends too early", 3),
        ("()", "expected a value, found ')' at 1", 1),
        ("order.total_summ > 1 and and", "expected a value, found 'and' at 25", 25),
        ("заказ", "unexpected character 'з' at 0", 0),
        ("a\x00", "unexpected character U+0000 at 1", 1),
    ],
)
def test_syntax_errors_with_positions(text, message, position):
    err = error(text)
    assert (err.message, err.position) == (message, position)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("order.totl_summ > 1", "unknown field 'order.totl_summ' at 6; did you mean 'total_summ'?"),
        ('order.site == "shop" and order.total_summ == "x"', "cannot compare money with string at 42"),
        ("order.customer.nmae", "unknown field 'order.customer.nmae' at 15; did you mean 'name'?"),
        ("ordr.total_summ > 1", "unknown name 'ordr' at 0; did you mean 'order'?"),
        ("True", "unknown name 'True' at 0; write it in lower case: 'true'"),
        (
            "item.quantity > 1",
            "unknown name 'item' at 0; 'item' exists only inside any(), all(), count(), sum(), "
            "min() or max() over a list",
        ),
        ("cnt(order.items) > 1", "unknown function 'cnt' at 0; did you mean 'count'?"),
        ("order(1)", "'order' is not a function at 0"),
        ("count > 1", "unknown name 'count' at 0; 'count' is a function: write count(…)"),
        (
            "order.items.quantity > 1",
            "order.items is a list, it has no field 'quantity' at 12; "
            "use any(order.items, item.quantity …), count() or sum()",
        ),
        ("order.total_summ.x", "order.total_summ is money, it has no field 'x' at 17"),
        ("order.total_summ", "a condition must be true or false, not money at 0; e.g. order.total_summ > 0"),
        ("order.manager", "a condition must be true or false, not user at 0; e.g. order.manager != null"),
        (
            "order.items",
            "a condition must be true or false, not list of order item at 0; e.g. count(order.items) > 0",
        ),
        ("order.number", 'a condition must be true or false, not string at 0; e.g. order.number != ""'),
        ("order.total_summ * order.total_summ > 1", "cannot multiply money by money at 17"),
        ("1 / order.total_summ > 1", "cannot divide number by money at 2"),
        ('order.total_summ + "1" > 1', "cannot add money and string at 17"),
        ('"a" - "b" == ""', "cannot subtract string from string at 4"),
        ('-order.site == ""', "cannot negate string at 0"),
        (
            "order.manager == order.customer.manager",
            "cannot compare user with user at 14; "
            "compare a field, e.g. order.manager.id or order.manager.username",
        ),
        (
            "order.created_at > now.date",
            "cannot compare datetime with date at 17; compare a date with a date, e.g. now.date",
        ),
        ("true > false", "cannot compare bool with bool at 5"),
        (
            "order.items == null or order.items == order.items",
            "cannot compare list of order item with list of "
            "order item at 35; use 'in', count(), any() or all() with a list",
        ),
        ("1 in order.customer.tags", "cannot look for number in list of string at 2"),
        (
            '"a" in order.total_summ',
            "'in' needs a list or a string on the right, not money at 4; e.g. \"vip\" in order.customer.tags",
        ),
        ("1 in order.number", "cannot look for number in a string at 2"),
        ("count(order.number) > 1", "count() needs a list first, not string at 6; use len() for a string"),
        ("sum(order.items) > 1", "sum() needs numbers, not order item at 4"),
        ("max(order.items, item.offer) == null", "max() needs numbers, strings or dates, not offer at 17"),
        ("min(order.site, 1) == 1", "min() cannot compare string with number at 16"),
        ("min(order.site) == 1", "min() needs a list first, not string at 4"),
        ("lower(1) == 1", "lower() needs a string, not number at 6"),
        ("len(1) == 1", "len() needs a string or a list, not number at 4"),
        ("days_since(order.site) > 1", "days_since() needs a date or a date and time, not string at 11"),
        ("any(order.items, item.quantity > 2, 3)", "any() takes 1 or 2 arguments, got 3 at 0"),
        ("min() == 1", "min() takes at least 1 argument, got 0 at 0"),
        ('any(order.items, item.quantity > "2")', "cannot compare number with string at 31"),
        (
            "any(order.items, payment.paid)",
            "unknown name 'payment' at 17; 'payment' exists only inside any(), "
            "all(), count(), sum(), min() or max() over a list",
        ),
    ],
)
def test_type_errors_with_positions(text, message):
    assert error(text).message == message


def test_error_is_a_validation_error_with_line_and_column():
    err = error('order.site == "shop"\n  and order.totl_summ > 1')
    assert isinstance(err, ValidationError)
    assert err.position == 33 and (err.line, err.column) == (2, 13)
    assert err.reason == "unknown field 'order.totl_summ'" and err.hint == "did you mean 'total_summ'?"
    assert str(err) == err.message
    assert err.messages == [err.message]
    wrapped = ValidationError({"condition": err})
    assert wrapped.message_dict == {"condition": [err.message]}
    assert error("(").line == 1 and error("(").column == 2


def test_limits_are_clear_errors_never_recursion_errors():
    long = "true and " * 222 + "true"
    assert len(long) == 2002
    assert error(long).message == "the expression is too long (2002 characters, at most 2000) at 2000"
    assert holds("true and " * 221 + "true")  # a flat chain of 222 is fine
    deep_message = "the expression is nested too deeply (more than 50 levels)"
    for text in [
        "(" * 1000,
        "(" * 60 + "1" + ")" * 60,
        "not " * 400 + "true",
        "-" * 1000 + "1",
        "1" + "+1" * 999,
        "count(" * 300,
        "a" + ".a" * 600,
    ]:
        assert error(text[:2000], condition=False).reason == deep_message
    assert holds("(" * 45 + "true" + ")" * 45)
    assert error(None).message == "an expression must be text at 0"  # type: ignore[arg-type]


def test_empty_condition_always_holds_and_an_empty_expression_is_an_error():
    for text in ["", "   ", "\n"]:
        compiled = compile_condition(text, SCHEMA)
        assert evaluate(compiled, context()) is True
        assert explain(compiled, context()) == (True, "no condition")
    with pytest.raises(ExpressionError, match="expected a value at 0"):
        compile_expression("", SCHEMA)


# --- explain ---------------------------------------------------------------------------------------


def test_explain_names_the_first_false_part_and_its_values():
    def why(text, ctx=None):
        return explain(compile_condition(text, SCHEMA), ctx or context())

    assert why("order.total_summ >= 10000") == (
        False,
        "order.total_summ >= 10000 was false: order.total_summ = 4200.00",
    )
    assert why('order.site == "shop" and order.total_summ >= 10000 and order.manager == null') == (
        False,
        "order.total_summ >= 10000 was false: order.total_summ = 4200.00",
    )
    assert why('order.site == "other" or count(order.items) >= 3') == (
        False,
        'order.site == "other" was false: order.site = "shop"; '
        "count(order.items) >= 3 was false: count(order.items) = 2",
    )
    assert why("not order.manager") == (
        False,
        'not order.manager was false: order.manager = {id: 7, username: "alice", name: "Alice", …}',
    )
    assert why("any(order.items, item.quantity > 5)") == (
        False,
        "any(order.items, item.quantity > 5) was false: order.items = [2 items], item.quantity = 2, 3",
    )
    assert why('changed("status") and new("status") == "paid"', context(changed={"manager"})) == (
        False,
        'changed("status") was false',
    )
    assert why('new("status") == "paid"', context(changed={"status"}, new={"status": "new"})) == (
        False,
        'new("status") == "paid" was false: new("status") = "new"',
    )
    assert why("order.total_summ - order.prepay_sum > 5000") == (
        False,
        "order.total_summ - order.prepay_sum > 5000 was false: "
        "order.total_summ = 4200.00, order.prepay_sum = 0.00",
    )
    assert why('"wholesale" in order.customer.tags') == (
        False,
        '"wholesale" in order.customer.tags was false: order.customer.tags = ["vip", "опт"]',
    )
    missing = context(order_values(manager=None))
    assert why('order.manager.team == "Sales"', missing) == (
        False,
        'order.manager.team == "Sales" was false: order.manager.team = null',
    )
    assert why("order.total_summ > 1000 and order.full_paid == false") == (
        True,
        "held: order.total_summ = 4200.00, order.full_paid = false",
    )


def test_explain_shortens_long_values():
    many = order_values(customer={**order_values()["customer"], "tags": [f"t{i}" for i in range(9)]})
    held, why = explain(compile_condition('"x" in order.customer.tags', SCHEMA), context(many))
    assert (
        why == '"x" in order.customer.tags was false: order.customer.tags = ["t0", "t1", "t2", "t3", "t4", …]'
    )
    held, why = explain(
        compile_condition('order.number == "x"', SCHEMA), context(order_values(number="n" * 200))
    )
    assert why == 'order.number == "x" was false: order.number = "' + "n" * 58 + "…"


# --- compiled once ---------------------------------------------------------------------------------


def test_evaluating_a_compiled_condition_does_not_parse_again(monkeypatch):
    compiled = compile_condition('any(order.items, item.quantity > 2) and order.site == "shop"', SCHEMA)

    def refuse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(expressions.parser, "tokenize", refuse)
    monkeypatch.setattr(expressions.compiler, "parse", refuse)
    assert evaluate(compiled, context()) is True
    assert explain(compiled, context())[0] is True
    assert compiled.fields == {"order", "order.items", "order.items.quantity", "order.site"}


def test_a_context_that_does_not_fit_the_schema_is_an_expression_error():
    compiled = compile_condition("order.total_summ > 1", SCHEMA)
    with pytest.raises(ExpressionError, match="could not evaluate"):
        evaluate(compiled, context(order_values(total_summ="not money")))
    with pytest.raises(ExpressionError, match="could not evaluate"):
        explain(compiled, context(order_values(total_summ="not money")))
    assert evaluate(compiled, {"order": None}) is False  # a plain dict is a context too


# --- fuzz ------------------------------------------------------------------------------------------

FIELDS = [
    "order.total_summ",
    "order.prepay_sum",
    "order.site",
    "order.status",
    "order.manager",
    "order.manager.team",
    "order.customer.tags",
    "order.customer.orders_count",
    "order.customer.last_order_at",
    "order.items",
    "order.payments",
    "order.created_at",
    "order.delivery_date",
    "order.custom.gift",
    'order.custom["my-code"]',
    "now.hour",
    "now.date",
    "event.type",
    "item.quantity",
    "item.summ",
    "tag",
    "it",
    "payment.paid",
]
ATOMS = [
    *FIELDS,
    "1",
    "0",
    "-3.5",
    "10000",
    '"shop"',
    '"vip"',
    "''",
    "true",
    "false",
    "null",
    'changed("status")',
    'new("status")',
    'old("delivery_cost")',
    "now",
]
FUNCTION_NAMES = [
    "count",
    "sum",
    "min",
    "max",
    "any",
    "all",
    "lower",
    "len",
    "days_since",
    "changed",
    "new",
    "cnt",
]
OPERATORS = ["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]
NOISE = ["(", ")", ",", ".", "[", "]", '"', "\\", "=", "!", "not", "é", "\x00", "\n", "🎄"]


def _expressions():
    atom = st.sampled_from(ATOMS)

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(OPERATORS), inner).map(" ".join),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(st.sampled_from(FUNCTION_NAMES), st.lists(inner, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.tuples(
                st.sampled_from(["any", "all", "count", "sum", "min", "max"]),
                st.sampled_from(["order.items", "order.payments", "order.customer.tags"]),
                inner,
            ).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        )

    grammar = st.recursive(atom, extend, max_leaves=12)
    # Grammar-shaped text with a little damage: a token dropped, doubled or replaced by noise.
    damaged = st.tuples(grammar, st.integers(0, 200), st.sampled_from(NOISE)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    return st.one_of(grammar, damaged, _well_typed())


NUMBERS = [
    "order.total_summ",
    "order.prepay_sum",
    "order.customer.orders_count",
    "now.hour",
    "1",
    "0",
    "-3.5",
    "10000",
    "count(order.items)",
    "len(order.site)",
    "days_since(order.created_at)",
    "sum(order.items, item.summ)",
    'new("delivery_cost")',
    "max(order.items, item.quantity)",
    "min(order.total_summ, 5000)",
    'count(order.customer.tags, lower(tag) == "vip")',
]
TEXTS = [
    "order.site",
    "order.status",
    "order.manager.team",
    '"shop"',
    "''",
    "lower(order.customer.email)",
    'new("status")',
    "event.type",
    '"\\u00e9\\n"',
]
BOOLS = [
    'changed("status")',
    "not order.manager",
    "any(order.items, item.quantity > 2)",
    "order.custom.gift",
    '"vip" in order.customer.tags',
    "all(order.payments, payment.paid)",
    "true",
    "null == order.manager",
    "order.created_at < order.customer.last_order_at",
    "order.delivery_date >= now.date",
]


def _well_typed():
    """Expressions that are right by construction: each must compile and evaluate to true or false."""
    numbers = st.recursive(
        st.sampled_from(NUMBERS),
        lambda n: st.one_of(
            st.tuples(n, st.sampled_from(["+", "-"]), n).map(" ".join),
            # Money may be multiplied or divided by a number only.
            st.tuples(
                n, st.sampled_from(["*", "/"]), st.sampled_from(["2", "0", "-1.5", "count(order.items)"])
            ).map(" ".join),
            n.map(lambda e: f"({e})"),
            n.map(lambda e: f"-({e})"),
        ),
        max_leaves=6,
    )
    texts = st.sampled_from(TEXTS)
    atoms = st.one_of(
        st.tuples(numbers, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), numbers).map(" ".join),
        st.tuples(texts, st.sampled_from(["==", "!=", "<", ">=", "in", "not in"]), texts).map(" ".join),
        st.sampled_from(BOOLS),
    )
    return st.recursive(
        atoms,
        lambda b: st.one_of(
            st.tuples(b, st.sampled_from(["and", "or"]), b).map(" ".join),
            b.map(lambda e: f"not ({e})"),
            st.tuples(st.sampled_from(["any", "all"]), b).map(lambda t: f"{t[0]}(order.items, {t[1]})"),
        ),
        max_leaves=8,
    )


CONTEXTS = [
    context(
        changed={"status", "delivery_cost"},
        old={"status": "new", "delivery_cost": Decimal("1")},
        new={"status": "paid", "delivery_cost": None},
    ),
    context(order_values(manager=None, customer=None, items=[], payments=[], delivery_date=None)),
]


def _run(text: str) -> None:
    try:
        compiled = compile_expression(text, SCHEMA)
    except ExpressionError as err:
        assert 0 <= err.position <= len(text)
        return
    for ctx in CONTEXTS:
        evaluate(compiled, ctx)
        if compiled.type.kind == "bool":
            explain(compile_condition(text, SCHEMA), ctx)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_fuzz_any_text_raises_only_expression_errors(text):
    _run(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions())
def test_fuzz_grammar_shaped_expressions_raise_only_expression_errors(text):
    _run(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_well_typed())
def test_fuzz_well_typed_conditions_compile_and_evaluate_to_true_or_false(text):
    compiled = compile_condition(text, SCHEMA)
    for ctx in CONTEXTS:
        assert evaluate(compiled, ctx) in (True, False)
        held, why = explain(compiled, ctx)
        assert held is evaluate(compiled, ctx) and why


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="()-not 1+", min_size=100, max_size=2100))
def test_fuzz_deep_and_long_input_is_refused_cleanly(text):
    _run(text)
