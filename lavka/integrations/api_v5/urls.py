from django.urls import re_path

from lavka.integrations.api_v5 import views

urlpatterns = [
    re_path(r"^v5/(?P<path>.*)$", views.v5),
    re_path(r"^(?P<path>.*)$", views.unversioned),
]
