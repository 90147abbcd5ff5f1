from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "lavka.catalog"
    label = "catalog"
