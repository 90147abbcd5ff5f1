"""Order numbers: each site counts on its own, and a number a shop already used is skipped.

On PostgreSQL each site's count is a sequence (`orders_number_site_<id>`), made on first use by the
functions migration 0004 installs (`lavka_order_number`, `lavka_order_number_raise`) and started after
the site's OrderCounter row. A sequence takes no row lock, so concurrent order writers do not queue
behind the one that took the last number until it commits; the price is a gap in the numbers where an
order was rolled back. On SQLite, which has one writer at a time anyway, the OrderCounter row counts,
moved on by one UPDATE … RETURNING.
"""

from __future__ import annotations

from django.db import connection

from lavka.core.models import Site
from lavka.orders.models import Order, OrderCounter


def next_free(site: Site) -> str:
    """The site's next number that no order of the site has (a shop may have used some of its own)."""
    orders = Order._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT n, EXISTS(SELECT 1 FROM {orders} o WHERE o.site_id = %s AND o.number = n::text || %s)"
            " FROM lavka_order_number(%s) AS n"
        )
        params = [site.pk, site.order_suffix, site.pk]
    else:
        sql = (
            f"UPDATE {OrderCounter._meta.db_table} SET last_number = last_number + 1 WHERE site_id = %s"
            f" RETURNING last_number, EXISTS(SELECT 1 FROM {orders} o WHERE o.site_id = %s"
            " AND o.number = CAST(last_number AS TEXT) || %s)"
        )
        params = [site.pk, site.pk, site.order_suffix]
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            OrderCounter.objects.get_or_create(site=site)
        elif not row[1]:
            return f"{row[0]}{site.order_suffix}"


def take(site: Site, count: int) -> list[int]:
    """`count` numbers of the site's count, in one statement (a bulk import asks for many)."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT lavka_order_number(%s) FROM generate_series(1, %s)", [site.pk, count])
            return [row[0] for row in cursor.fetchall()]
    OrderCounter.objects.get_or_create(site=site)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {OrderCounter._meta.db_table} SET last_number = last_number + %s WHERE site_id = %s"
            " RETURNING last_number",
            [count, site.pk],
        )
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


def raise_to(site: Site, top: int) -> None:
    """Move the site's count past `top`, so new orders go on after a number an import brought."""
    if top <= 0:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT lavka_order_number_raise(%s, %s)", [site.pk, top])
        return
    counter, _created = OrderCounter.objects.get_or_create(site=site)
    if counter.last_number < top:
        OrderCounter.objects.filter(site=site, last_number__lt=top).update(last_number=top)
