from django.urls import path

from lavka.core import views

app_name = "settings"
urlpatterns = [
    path("", views.index, name="index"),
    path("me/language/", views.language, name="language"),
    path("me/presence/", views.presence, name="presence"),
    path("me/filters/", views.filter_save, name="filter_save"),
    path("me/filters/<int:pk>/delete/", views.filter_delete, name="filter_delete"),
    path("sites/", views.sites, name="sites"),
    path("sites/new/", views.site_edit, name="site_new"),
    path("sites/<int:pk>/", views.site_edit, name="site_edit"),
    path("custom-fields/", views.custom_fields, name="custom_fields"),
    path("custom-fields/new/", views.custom_field_edit, name="custom_field_new"),
    path("custom-fields/<int:pk>/", views.custom_field_edit, name="custom_field_edit"),
    path("books/<slug:slug>/", views.books, name="books"),
    path("books/<slug:slug>/new/", views.book_edit, name="book_new"),
    path("books/<slug:slug>/<int:pk>/", views.book_edit, name="book_edit"),
    path("transitions/", views.transitions, name="transitions"),
    path("transitions/<int:pk>/", views.transitions, name="transitions_of"),
    path("users/", views.users, name="users"),
    path("users/new/", views.user_new, name="user_new"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/active/", views.user_active, name="user_active"),
    path("teams/", views.teams, name="teams"),
    path("teams/new/", views.team_edit, name="team_new"),
    path("teams/<int:pk>/", views.team_edit, name="team_edit"),
]
