from django.urls import path

from lavka.tasks import views

app_name = "tasks"
urlpatterns = [
    path("", views.my_tasks, name="my"),
    path("new/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/complete/", views.complete, name="complete"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/reopen/", views.reopen, name="reopen"),
    path("panel/order/<int:pk>/", views.order_panel, name="order_panel"),
    path("panel/customer/<int:pk>/", views.customer_panel, name="customer_panel"),
    path("notices/<int:pk>/read/", views.notice_read, name="notice_read"),
    path("notices/read/", views.notices_read, name="notices_read"),
]
