from django.db import migrations


def create_base(apps, schema_editor):
    """Every catalog has one base price type: the offers' own `price` (retailCRM calls it `base`)."""
    PriceType = apps.get_model("catalog", "PriceType")
    if not PriceType.objects.filter(is_default=True).exists():
        PriceType.objects.create(code="base", name="Базовая", is_default=True, ordering=0)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_price_types")]

    operations = [migrations.RunPython(create_base, migrations.RunPython.noop)]
