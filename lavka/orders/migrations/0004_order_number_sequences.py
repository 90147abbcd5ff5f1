"""PostgreSQL functions behind lavka.orders.numbering: a sequence per site, made on first use."""

from django.db import migrations

FUNCTIONS = [
    """
CREATE OR REPLACE FUNCTION lavka_order_number_sequence(p_site bigint) RETURNS text AS $$
DECLARE
    seq text := 'orders_number_site_' || p_site;
BEGIN
    IF to_regclass(seq) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE SEQUENCE %I', seq);
            PERFORM setval(seq, c.last_number) FROM orders_ordercounter c
                WHERE c.site_id = p_site AND c.last_number > 0;
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;  -- another transaction made it first
        END;
    END IF;
    RETURN seq;
END $$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION lavka_order_number(p_site bigint) RETURNS bigint AS $$
BEGIN
    RETURN nextval(lavka_order_number_sequence(p_site));
END $$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION lavka_order_number_raise(p_site bigint, p_top bigint) RETURNS void AS $$
DECLARE
    seq text := lavka_order_number_sequence(p_site);
    last bigint;
    called boolean;
BEGIN
    EXECUTE format('SELECT last_value, is_called FROM %I', seq) INTO last, called;
    IF p_top > (CASE WHEN called THEN last ELSE last - 1 END) THEN
        PERFORM setval(seq, p_top);
    END IF;
END $$ LANGUAGE plpgsql
""",
]

DROP = [
    "DROP FUNCTION IF EXISTS lavka_order_number_raise(bigint, bigint)",
    "DROP FUNCTION IF EXISTS lavka_order_number(bigint)",
    "DROP FUNCTION IF EXISTS lavka_order_number_sequence(bigint)",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_fewer_order_indexes")]

    operations = [migrations.RunPython(_run(FUNCTIONS), _run(DROP))]
