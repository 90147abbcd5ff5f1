from django.db import migrations


def create_main(apps, schema_editor):
    """A shop starts with one warehouse, `main`, so stock can be uploaded before any setup."""
    Warehouse = apps.get_model("inventory", "Warehouse")
    if not Warehouse.objects.exists():
        Warehouse.objects.create(code="main", name="Основной склад", ordering=0)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [migrations.RunPython(create_main, migrations.RunPython.noop)]
