from django.urls import path

from lavka.automation import views

app_name = "automation"
urlpatterns = [
    path("", views.rule_list, name="list"),
    path("new/", views.rule_edit, name="new"),
    path("check/", views.check_condition, name="check"),
    path("action-row/", views.action_row, name="action_row"),
    path("export/", views.rules_export, name="export"),
    path("import/", views.rules_import, name="import"),
    path("defaults/", views.rules_defaults, name="defaults"),
    path("<int:pk>/", views.rule_edit, name="edit"),
    path("<int:pk>/state/", views.rule_state, name="state"),
    path("<int:pk>/runs/", views.rule_runs, name="runs"),
    path("<int:pk>/dry-run/", views.rule_dry_run, name="dry_run"),
    path("orders/<int:order_pk>/runs/", views.order_runs, name="order_runs"),
]
