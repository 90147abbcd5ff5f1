from django.urls import path

from lavka.integrations import views

app_name = "integrations"
urlpatterns = [
    path("", views.api_keys, name="api_keys"),
    path("new/", views.api_key_new, name="api_key_new"),
    path("<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
