from django.urls import path

from lavka.integrations.webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("new/", views.subscription_edit, name="new"),
    path("<int:pk>/", views.subscription_edit, name="edit"),
    path("<int:pk>/state/", views.subscription_state, name="state"),
    path("<int:pk>/secret/", views.subscription_secret, name="secret"),
    path("<int:pk>/delete/", views.subscription_delete, name="delete"),
    path("<int:pk>/deliveries/", views.delivery_list, name="deliveries"),
    path("<int:pk>/deliveries/<int:delivery_pk>/", views.delivery_detail, name="delivery"),
    path("<int:pk>/deliveries/<int:delivery_pk>/replay/", views.delivery_replay, name="replay"),
]
