"""Order forms. They collect and type the input; the actions check it and name the field that is wrong."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lavka.accounts.models import User
from lavka.core.forms import (
    IdField,
    VisibleChoiceField,
    add_custom_fields,
    custom_values,
    money_field,
    responsible_candidates,
)
from lavka.core.models import CustomField, Site
from lavka.customers.actions import CustomerData
from lavka.customers.models import Customer
from lavka.orders.actions import MAX_ITEMS, ItemData, OrderData, PaymentData
from lavka.orders.choices import ComplaintReason, Group
from lavka.orders.models import (
    DeliveryType,
    Order,
    OrderMethod,
    OrderType,
    PaymentStatus,
    PaymentType,
    Status,
)

# Where an action's error key differs from the form field that shows it.
ERROR_ALIASES = {
    "phones": "phone",
    "payments.0.type": "payment_type",
    "payments.0.status": "payment_status",
    "payments.0.amount": "payment_amount",
    "payments.0.comment": "payment_comment",
    "payment.type": "type",
    "payment.status": "status",
    "payment.amount": "amount",
    "payment.comment": "comment",
}


def codes(model: Any, *, blank: bool = False) -> list[tuple[str, str]]:
    choices = [(obj.code, obj.name) for obj in model.objects.filter(is_active=True)]
    return [("", "—"), *choices] if blank else choices


def text(label: Any, max_length: int, *, textarea: bool = False, **attrs: Any) -> forms.CharField:
    widget = forms.Textarea(attrs={"rows": 2, **attrs}) if textarea else forms.TextInput(attrs=attrs)
    return forms.CharField(label=label, max_length=max_length, required=False, widget=widget)


class OrderForm(forms.Form):
    """The order create/edit form. A customer is picked (hidden `customer`) or entered as a new one."""

    customer = VisibleChoiceField(queryset=Customer.objects.none(), required=False, widget=forms.HiddenInput)
    confirm_new_customer = forms.BooleanField(
        label=_("Create a new customer anyway"),
        required=False,
    )
    last_name = text(_("Last name"), 150, autocomplete="off")
    first_name = text(_("First name"), 150, autocomplete="off")
    patronymic = text(_("Patronymic"), 150, autocomplete="off")
    phone = text(_("Phone"), 40, inputmode="tel", autocomplete="off")
    email = text(_("E-mail"), 254, inputmode="email", autocomplete="off")
    order_type = forms.ChoiceField(label=_("Order type"))
    order_method = forms.ChoiceField(label=_("Order method"))
    manager = VisibleChoiceField(
        label=_("Responsible manager"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("— unassigned —"),
    )
    delivery_type = forms.ChoiceField(label=_("Delivery type"), required=False)
    delivery_cost = money_field(_("Delivery cost"))
    delivery_address = text(_("Delivery address"), 1000, textarea=True)
    delivery_date = forms.DateField(
        label=_("Delivery date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    delivery_time_from = forms.TimeField(
        label=_("from"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    delivery_time_to = forms.TimeField(
        label=_("to"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    discount_manual_amount = money_field(_("Order discount"))
    discount_manual_percent = money_field(_("Order discount, %"))
    payment_type = forms.ChoiceField(label=_("Payment type"), required=False)
    payment_status = forms.ChoiceField(label=_("Payment status"), required=False)
    payment_amount = money_field(_("Amount paid"))
    source = text(_("UTM source"), 255)
    medium = text(_("UTM medium"), 255)
    campaign = text(_("UTM campaign"), 255)
    customer_comment = text(_("Customer comment"), 5000, textarea=True)
    manager_comment = text(_("Manager comment"), 5000, textarea=True)

    def __init__(self, *args: Any, user: User, site: Site, order: Order | None = None, **kwargs: Any) -> None:
        if order is not None:
            kwargs.setdefault("initial", initial_from(order))
        super().__init__(*args, **kwargs)
        self.site, self.order, self.user = site, order, user
        customers = Customer.objects.visible_to(user).active()
        if order is not None:
            # The order's own customer stays valid even when its card is outside the user's scope.
            customers = customers | Customer.objects.filter(pk=order.customer_id)
        self.fields["customer"].queryset = customers
        self.fields["order_type"].choices = codes(OrderType)
        self.fields["order_method"].choices = codes(OrderMethod)
        self.fields["delivery_type"].choices = codes(DeliveryType, blank=True)
        if order is None:
            self.fields["manager"].queryset = responsible_candidates(site)
            self.fields["payment_type"].choices = codes(PaymentType, blank=True)
            self.fields["payment_status"].choices = codes(PaymentStatus, blank=True)
            self.initial.setdefault("order_type", _default(OrderType))
            self.initial.setdefault("order_method", _default(OrderMethod))
            if user.role == User.Roles.MANAGER:
                self.initial.setdefault("manager", user.pk)
        else:
            # Reassignment and payments have their own forms on the order card.
            for name in (
                "manager",
                "payment_type",
                "payment_status",
                "payment_amount",
                "confirm_new_customer",
            ):
                del self.fields[name]
        definitions = CustomField.objects.filter(site=site, entity=CustomField.Entity.ORDER)
        add_custom_fields(self, list(definitions), order.custom_fields if order else None)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        has_contact = any(data.get(name) for name in ("last_name", "first_name", "phone", "email"))
        if (
            self.order is None
            and not data.get("customer")
            and not has_contact
            and "customer" not in self.errors
        ):
            self.add_error("customer", _("Choose a customer or enter a new one."))
        return data

    @property
    def picked_customer(self) -> Customer | None:
        """The customer chosen in the form, for showing it again on a re-rendered page."""
        if hasattr(self, "cleaned_data") and self.cleaned_data.get("customer"):
            return self.cleaned_data["customer"]
        if self.order is not None and not self.is_bound:
            return self.order.customer
        return None

    def new_customer_data(self) -> CustomerData:
        data = self.cleaned_data
        manager = data.get("manager")
        return CustomerData(
            first_name=data["first_name"],
            last_name=data["last_name"],
            patronymic=data["patronymic"],
            phones=[data["phone"]] if data["phone"] else [],
            email=data["email"],
            manager=manager,
            manager_set=manager is not None,
            source=data["source"],
            medium=data["medium"],
            campaign=data["campaign"],
        )

    def order_data(self, rows: list[forms.Form]) -> OrderData:
        data = self.cleaned_data
        customer = data.get("customer")
        result = OrderData(
            customer=customer,
            order_type=data["order_type"],
            order_method=data["order_method"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            patronymic=data["patronymic"],
            phone=data["phone"],
            email=data["email"],
            delivery_type=data["delivery_type"],
            delivery_cost=data["delivery_cost"],
            delivery_address=data["delivery_address"],
            # "" (not None) clears a date or time on edit; None would mean "leave it".
            delivery_date=data["delivery_date"] or "",
            delivery_time_from=data["delivery_time_from"] or "",
            delivery_time_to=data["delivery_time_to"] or "",
            discount_manual_amount=data["discount_manual_amount"],
            discount_manual_percent=data["discount_manual_percent"],
            source=data["source"],
            medium=data["medium"],
            campaign=data["campaign"],
            customer_comment=data["customer_comment"],
            manager_comment=data["manager_comment"],
            custom_fields=custom_values(self),
            items=[row.item_data() for row in rows],
        )
        if self.order is None:
            result.manager, result.manager_set = data.get("manager"), True
            if customer is None:
                result.new_customer = self.new_customer_data()
            if data.get("payment_amount"):
                result.payments = [
                    PaymentData(
                        type=data["payment_type"],
                        status=data["payment_status"],
                        amount=data["payment_amount"],
                    )
                ]
        return result


def _default(model: Any) -> str:
    found = model.objects.filter(is_active=True, default_for_crm=True).first()
    return found.code if found else ""


def initial_from(order: Order) -> dict[str, Any]:
    names = (
        "first_name",
        "last_name",
        "patronymic",
        "phone",
        "email",
        "delivery_cost",
        "delivery_address",
        "delivery_date",
        "delivery_time_from",
        "delivery_time_to",
        "discount_manual_amount",
        "discount_manual_percent",
        "source",
        "medium",
        "campaign",
        "customer_comment",
        "manager_comment",
    )
    initial = {name: getattr(order, name) for name in names}
    initial.update(
        customer=order.customer_id,
        order_type=order.order_type.code,
        order_method=order.order_method.code,
        delivery_type=order.delivery_type.code if order.delivery_type else "",
    )
    return initial


class ItemForm(forms.Form):
    id = IdField(required=False, widget=forms.HiddenInput)
    offer = IdField(
        label=_("Product"), widget=forms.HiddenInput, error_messages={"required": _("Choose a product.")}
    )
    quantity = forms.CharField(
        label=_("Quantity"),
        max_length=40,
        initial="1",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 5}),
    )
    initial_price = money_field(_("Price"), size=8)
    discount_manual_amount = money_field(_("Discount per unit"), size=6)
    discount_manual_percent = money_field(_("Discount, %"), size=4)
    comment = text(_("Comment"), 1000)

    def item_data(self) -> ItemData:
        data = self.cleaned_data
        return ItemData(
            id=data.get("id"),
            offer_id=data["offer"],
            quantity=data["quantity"],
            initial_price=data["initial_price"] or None,
            discount_manual_amount=data["discount_manual_amount"] or "0",
            discount_manual_percent=data["discount_manual_percent"] or "0",
            comment=data["comment"],
        )


class BaseItemFormSet(forms.BaseFormSet):
    default_error_messages = {"too_many_forms": _("Too many lines.")}

    def clean(self) -> None:
        if not any(self.errors) and not filled_rows(self):
            raise forms.ValidationError(_("Add at least one product."), code="no_lines")


ItemFormSet = forms.formset_factory(
    ItemForm,
    formset=BaseItemFormSet,
    extra=0,
    can_delete=True,
    max_num=MAX_ITEMS,
    absolute_max=MAX_ITEMS,
    validate_max=True,
)


def item_formset(data: Any = None, *, initial: list[dict[str, Any]] | None = None, extra: int = 0) -> Any:
    """The order lines' formset; `extra` blank lines follow the existing ones."""
    formset = ItemFormSet(data, prefix="items", initial=initial)
    formset.extra = extra
    return formset


def item_initial(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "id": item.pk,
            "offer": item.offer_id,
            "quantity": f"{item.quantity.normalize():f}",
            "initial_price": item.initial_price,
            "discount_manual_amount": item.discount_manual_amount,
            "discount_manual_percent": item.discount_manual_percent,
            "comment": item.comment,
        }
        for item in order.items.all()
    ]


def filled_rows(formset: forms.BaseFormSet) -> list[forms.Form]:
    """The line forms that make the order: filled in and not marked for removal."""
    return [f for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"))
    comment = text(_("Comment"), 1000)
    complaint_reason = forms.ChoiceField(
        label=_("Complaint reason"), required=False, choices=[("", "—"), *ComplaintReason.choices]
    )
    complaint_comment = text(_("Complaint comment"), 5000, textarea=True)

    def __init__(self, *args: Any, statuses: list[Status], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses = statuses
        self.fields["status"].choices = [(s.code, f"{s.group.name} · {s.name}") for s in statuses]

    @property
    def offers_complaint(self) -> bool:
        return any(s.group.code == Group.COMPLAINT for s in self.statuses)


class AssignForm(forms.Form):
    manager = VisibleChoiceField(
        label=_("Assign to"), queryset=User.objects.none(), required=False, empty_label=_("— unassigned —")
    )

    def __init__(self, *args: Any, site: Site, current: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["manager"].queryset = responsible_candidates(site, current)


class PaymentForm(forms.Form):
    type = forms.ChoiceField(label=_("Payment type"))
    status = forms.ChoiceField(label=_("Payment status"))
    amount = money_field(_("Amount"), required=True)
    paid_at = forms.DateTimeField(
        label=_("Paid at"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    comment = text(_("Comment"), 1000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = codes(PaymentType)
        self.fields["status"].choices = codes(PaymentStatus)

    def payment_data(self) -> PaymentData:
        data = self.cleaned_data
        return PaymentData(
            type=data["type"],
            status=data["status"],
            amount=data["amount"],
            paid_at=data["paid_at"],
            comment=data["comment"],
        )
