"""Reference books a new shop starts with, using retailCRM's codes so API clients find what they expect."""

from lavka.orders.choices import Group

STATUS_GROUPS = [
    (Group.NEW, "Новый"),
    (Group.APPROVAL, "Согласование"),
    (Group.ASSEMBLING, "Комплектация"),
    (Group.DELIVERY, "Доставка"),
    (Group.COMPLETE, "Выполнен"),
    (Group.CANCEL, "Отменен"),
    (Group.COMPLAINT, "Претензия"),
]
STATUSES = [
    ("new", "Новый", Group.NEW),
    ("availability-confirmed", "Наличие подтверждено", Group.APPROVAL),
    ("client-confirmed", "Согласовано с клиентом", Group.APPROVAL),
    ("prepayed", "Предоплата поступила", Group.APPROVAL),
    ("send-to-assembling", "Передано в комплектацию", Group.ASSEMBLING),
    ("assembling-complete", "Укомплектован", Group.ASSEMBLING),
    ("send-to-delivery", "Передан в доставку", Group.DELIVERY),
    ("delivering", "Доставляется", Group.DELIVERY),
    ("redirect", "Доставка перенесена", Group.DELIVERY),
    ("complete", "Выполнен", Group.COMPLETE),
    ("no-call", "Недозвон", Group.CANCEL),
    ("no-product", "Нет в наличии", Group.CANCEL),
    ("prices-did-not-suit", "Не устроила цена", Group.CANCEL),
    ("cancel-other", "Отменен", Group.CANCEL),
    ("complaint", "Претензия", Group.COMPLAINT),
    ("return", "Возврат", Group.COMPLAINT),
]
# Which groups a status of each group may move to; expanded to status pairs per order type.
GROUP_TRANSITIONS = {
    Group.NEW: [Group.APPROVAL, Group.ASSEMBLING, Group.CANCEL],
    Group.APPROVAL: [Group.APPROVAL, Group.ASSEMBLING, Group.CANCEL],
    Group.ASSEMBLING: [Group.ASSEMBLING, Group.DELIVERY, Group.COMPLETE, Group.CANCEL],
    Group.DELIVERY: [Group.DELIVERY, Group.COMPLETE, Group.CANCEL, Group.COMPLAINT],
    Group.COMPLETE: [Group.COMPLAINT],
    Group.CANCEL: [Group.NEW],
    Group.COMPLAINT: [Group.COMPLAINT, Group.COMPLETE, Group.CANCEL],
}
ORDER_TYPES = [
    ("eshop-individual", "Интернет-магазин (физ. лицо)"),
    ("eshop-legal", "Интернет-магазин (юр. лицо)"),
]
ORDER_METHODS = [
    ("shopping-cart", "Оформлен через корзину"),
    ("phone", "По телефону"),
    ("one-click", "В один клик"),
    ("callback", "Обратный звонок"),
    ("live-chat", "Онлайн-консультант"),
    ("messenger", "Мессенджер"),
    ("offline", "Оффлайн"),
]
DELIVERY_TYPES = [
    ("courier", "Доставка курьером", 300),
    ("self-delivery", "Самовывоз", 0),
    ("russian-post", "Почта России", 350),
    ("ems", "EMS", 600),
]
PAYMENT_TYPES = [
    ("cash", "Наличные"),
    ("bank-card", "Банковская карта"),
    ("bank-transfer", "Безналичный расчет"),
    ("e-money", "Электронные деньги"),
    ("credit", "Кредит"),
]
PAYMENT_STATUSES = [
    ("not-paid", "Не оплачен", False),
    ("invoice", "Выставлен счет", False),
    ("paid", "Оплачен", True),
    ("returned", "Возвращен", False),
    ("fail", "Ошибка оплаты", False),
]


def seed_reference_books() -> None:
    """Create the default reference books where none exist (safe to run again)."""
    from lavka.orders.models import (
        DeliveryType,
        OrderMethod,
        OrderType,
        PaymentStatus,
        PaymentType,
        Status,
        StatusGroup,
        StatusTransition,
    )

    if StatusGroup.objects.exists():
        return
    groups = {
        code: StatusGroup.objects.create(code=code, name=name, ordering=i * 10)
        for i, (code, name) in enumerate(STATUS_GROUPS)
    }
    statuses = [
        Status.objects.create(code=code, name=name, group=groups[group], ordering=i * 10)
        for i, (code, name, group) in enumerate(STATUSES)
    ]
    for i, (code, name) in enumerate(ORDER_TYPES):
        order_type = OrderType.objects.create(
            code=code, name=name, ordering=i, default_for_crm=i == 0, default_for_api=i == 0
        )
        StatusTransition.objects.bulk_create(
            StatusTransition(order_type=order_type, from_status=a, to_status=b)
            for a in statuses
            for b in statuses
            if a != b and b.group.code in GROUP_TRANSITIONS[a.group.code]
        )
    for i, (code, name) in enumerate(ORDER_METHODS):
        OrderMethod.objects.create(
            code=code,
            name=name,
            ordering=i,
            default_for_crm=code == "phone",
            default_for_api=code == "shopping-cart",
        )
    for i, (code, name, cost) in enumerate(DELIVERY_TYPES):
        DeliveryType.objects.create(code=code, name=name, ordering=i, default_cost=cost)
    for i, (code, name) in enumerate(PAYMENT_TYPES):
        PaymentType.objects.create(code=code, name=name, ordering=i)
    for i, (code, name, complete) in enumerate(PAYMENT_STATUSES):
        PaymentStatus.objects.create(code=code, name=name, ordering=i, payment_complete=complete)
