from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from lavka.integrations.api_v5 import openapi, views

# `[\s\S]`, not `.`: a path id may hold a newline (%0A), and it must still reach the API's JSON 404.
urlpatterns = [
    re_path(r"^v5/openapi\.json$", csrf_exempt(openapi.view), name="api_v5_openapi"),
    re_path(r"^v5/(?P<path>[\s\S]*)$", views.v5),
    re_path(r"^(?P<path>[\s\S]*)$", views.unversioned),
]
