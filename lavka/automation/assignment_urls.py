from django.urls import path

from lavka.automation import assignment_views as views

app_name = "assignment"
urlpatterns = [
    path("", views.rule_list, name="list"),
    path("new/", views.rule_edit, name="new"),
    path("<int:pk>/", views.rule_edit, name="edit"),
    path("<int:pk>/state/", views.rule_state, name="state"),
]
