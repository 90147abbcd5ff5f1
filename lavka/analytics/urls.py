from django.urls import path

from lavka.analytics import views

app_name = "analytics"
urlpatterns = [
    path("kpi/", views.kpi_page, name="kpi"),
    path("kpi.csv", views.kpi_csv, name="kpi_csv"),
    path("kpi/<int:user_id>/<slug:figure>/", views.kpi_detail, name="kpi_detail"),
]
