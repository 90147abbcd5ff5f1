from django.urls import path

from lavka.loyalty import views

app_name = "loyalty"
urlpatterns = [
    path("programs/", views.programs, name="programs"),
    path("programs/new/", views.program_edit, name="program_new"),
    path("programs/<int:pk>/", views.program_edit, name="program_edit"),
    path("customers/<int:pk>/enrol/", views.enrol, name="enrol"),
    path("customers/<int:pk>/activate/", views.activate, name="activate"),
    path("customers/<int:pk>/operation/", views.operation, name="operation"),
]
