from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "lavka.accounts"
    label = "accounts"
