from django.urls import path

from lavka.analytics import panels, views
from lavka.analytics.segments import views as segment_views

app_name = "analytics"
urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("backtest/", views.backtest_page, name="backtest"),
    path("settings/", views.settings_page, name="settings"),
    path("kpi/", views.kpi_page, name="kpi"),
    path("kpi.csv", views.kpi_csv, name="kpi_csv"),
    path("kpi/<int:user_id>/<slug:figure>/", views.kpi_detail, name="kpi_detail"),
    path("segments/", segment_views.segment_list, name="segments"),
    path("segments/new/", segment_views.segment_builder, name="segment_new"),
    path("segments/count/", segment_views.segment_count, name="segment_count"),
    path("segments/<int:pk>/", segment_views.segment_detail, name="segment"),
    path("segments/<int:pk>/edit/", segment_views.segment_builder, name="segment_edit"),
    path("segments/<int:pk>/refresh/", segment_views.segment_refresh, name="segment_refresh"),
    path("segments/<int:pk>/delete/", segment_views.segment_delete, name="segment_delete"),
    path("segments/<int:pk>/export.csv", segment_views.segment_export, name="segment_export"),
    path("panels/order/<int:order_pk>/pairs/", panels.order_pairs, name="order_pairs"),
    path("panels/customer/<int:customer_pk>/", panels.customer_panel, name="customer_panel"),
]
