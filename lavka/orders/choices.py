from django.db import models
from django.utils.translation import gettext_lazy as _


class Group:
    """Status groups (retailCRM codes). Orders in CLOSED groups need no responsible manager."""

    NEW = "new"
    APPROVAL = "approval"
    ASSEMBLING = "assembling"
    DELIVERY = "delivery"
    COMPLETE = "complete"
    CANCEL = "cancel"
    COMPLAINT = "complaint"
    CLOSED = (COMPLETE, CANCEL)


class ComplaintReason(models.TextChoices):
    DEFECT = "defect", _("defect")
    DELAY = "delay", _("delay")
    COURIER = "courier", _("courier")
    WRONG_ITEM = "wrong-item", _("wrong item")
    SUPPLIER = "supplier", _("supplier")
    OTHER = "other", _("other")


# Order fields whose changes go to history, by attribute → retailCRM history field name
# (references to reference books and the customer are added by orders.actions.order_state).
TRACKED_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "patronymic": "patronymic",
    "phone": "phone",
    "additional_phone": "additional_phone",
    "email": "email",
    "external_id": "external_id",
    "customer_comment": "customer_comment",
    "manager_comment": "manager_comment",
    "delivery_cost": "delivery_cost",
    "delivery_date": "delivery_date",
    "delivery_address": "delivery_address",
    "delivery_external_id": "integration_delivery_data.external_id",
    "track_number": "integration_delivery_data.track_number",
    "delivery_status": "integration_delivery_data.status",
    "discount_manual_amount": "discount_manual_amount",
    "discount_manual_percent": "discount_manual_percent",
    "source": "source.source",
    "medium": "source.medium",
    "campaign": "source.campaign",
    "keyword": "source.keyword",
    "content": "source.content",
    "created_at": "created_at",
}
# Order fields that history keeps as several records or one object (see orders.actions.order_state):
# the delivery slot as `delivery_time` {from, to}, each address part as `delivery_address.<part>`, each
# custom field as `custom_<code>` — the names retailCRM's history feed uses.
ADDRESS_PARTS = (
    "index",
    "country_iso",
    "region",
    "city",
    "street",
    "building",
    "house",
    "housing",
    "block",
    "flat",
    "floor",
    "metro",
    "notes",
)
ITEM_TRACKED_FIELDS = {
    "quantity": "order_product.quantity",
    "initial_price": "order_product.initial_price",
    "discount_manual_amount": "order_product.discount_manual_amount",
    "discount_manual_percent": "order_product.discount_manual_percent",
    "comment": "order_product.comment",
}
PAYMENT_TRACKED_FIELDS = {
    "type_id": "payments.type",
    "status_id": "payments.status",
    "amount": "payments.amount",
    "paid_at": "payments.paid_at",
    "comment": "payments.comment",
    "external_id": "payments.external_id",
}
