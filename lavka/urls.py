from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="orders:my_work", permanent=False)),
    path("healthz", healthz),
    path("accounts/", include("lavka.accounts.urls")),
    path("orders/", include("lavka.orders.urls")),
    path("customers/", include("lavka.customers.urls")),
    path("tasks/", include("lavka.tasks.urls")),
    path("rules/", include("lavka.automation.urls")),
    path("analytics/", include("lavka.analytics.urls")),
    path("settings/", include("lavka.core.urls")),
    path("settings/api-keys/", include("lavka.integrations.urls")),
    path("settings/webhooks/", include("lavka.integrations.webhooks.urls")),
    path("settings/assignment/", include("lavka.automation.assignment_urls")),
    path("loyalty/", include("lavka.loyalty.urls")),
    path("api/", include("lavka.integrations.api_v5.urls")),
]
