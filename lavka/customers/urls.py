from django.urls import path

from lavka.customers import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.create, name="create"),
    path("search/", views.search, name="search"),
    path("export.csv", views.export, name="export"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/notes/", views.note_add, name="note_add"),
    path("<int:pk>/merge/", views.merge, name="merge"),
]
