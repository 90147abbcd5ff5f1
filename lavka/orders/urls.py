from django.urls import path

from lavka.orders import views

app_name = "orders"
urlpatterns = [
    path("", views.order_list, name="list"),
    path("my/", views.my_work, name="my_work"),
    path("new/", views.create, name="create"),
    path("complaints/", views.complaints, name="complaints"),
    path("export.csv", views.export, name="export"),
    path("offers/", views.offer_search, name="offer_search"),
    path("new/line/", views.item_row, name="item_row"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/status/", views.change_status, name="status"),
    path("<int:pk>/manager/", views.assign, name="assign"),
    path("<int:pk>/payments/", views.payment_add, name="payment_add"),
]
