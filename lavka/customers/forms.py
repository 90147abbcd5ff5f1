"""Customer forms. They collect and type the input; the actions check it and name the field that is wrong."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lavka.accounts.models import User
from lavka.core.forms import VisibleChoiceField, add_custom_fields, custom_values, responsible_candidates
from lavka.core.models import CustomField, Site
from lavka.customers.actions import CustomerData
from lavka.customers.choices import Channel, Purpose, Sex
from lavka.customers.models import Customer

ADDRESS_FIELDS = [
    ("text", _("Address"), 1000),
    ("index", _("Postcode"), 20),
    ("region", _("Region"), 255),
    ("city", _("City"), 255),
    ("street", _("Street"), 255),
    ("building", _("Building"), 50),
    ("flat", _("Flat"), 50),
]
CONSENTS = [(channel, purpose) for channel in Channel for purpose in Purpose]
CONSENT_SOURCE = "manager form"
ERROR_ALIASES = {f"address.{name}": f"address_{name}" for name, _label, _n in ADDRESS_FIELDS}
MAX_PHONES_TEXT = 500


def consent_field(channel: str, purpose: str) -> str:
    return f"consent_{channel}_{purpose}"


def _text(label: Any, max_length: int, **kwargs: Any) -> forms.CharField:
    return forms.CharField(label=label, max_length=max_length, required=False, **kwargs)


class CustomerForm(forms.Form):
    confirm_duplicate = forms.BooleanField(label=_("Create a new customer anyway"), required=False)
    last_name = _text(_("Last name"), 150)
    first_name = _text(_("First name"), 150)
    patronymic = _text(_("Patronymic"), 150)
    phones = _text(
        _("Phones"),
        MAX_PHONES_TEXT,
        widget=forms.Textarea(attrs={"rows": 2, "inputmode": "tel"}),
        help_text=_("One number per line, in any format."),
    )
    email = _text(_("E-mail"), 254, widget=forms.TextInput(attrs={"inputmode": "email"}))
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sex = forms.ChoiceField(label=_("Sex"), required=False, choices=[("", "—"), *Sex.choices])
    manager = VisibleChoiceField(
        label=_("Responsible manager"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("— unassigned —"),
    )
    vip = forms.BooleanField(label=_("VIP"), required=False)
    bad = forms.BooleanField(label=_("Bad customer"), required=False)
    tags = _text(_("Tags"), 1000, help_text=_("Separated by commas."))
    source = _text(_("UTM source"), 255)
    medium = _text(_("UTM medium"), 255)
    campaign = _text(_("UTM campaign"), 255)

    def __init__(
        self, *args: Any, site: Site, user: User, customer: Customer | None = None, **kwargs: Any
    ) -> None:
        if customer is not None:
            kwargs.setdefault("initial", initial_from(customer))
        super().__init__(*args, **kwargs)
        self.site, self.customer = site, customer
        self.had_address = customer is not None and any(a.is_main for a in customer.addresses.all())
        if customer is None and user.role == User.Roles.MANAGER:
            self.initial.setdefault("manager", user.pk)
        self.fields["manager"].queryset = responsible_candidates(site, customer.manager if customer else None)
        for name, label, max_length in ADDRESS_FIELDS:
            widget = forms.Textarea(attrs={"rows": 2}) if name == "text" else None
            self.fields[f"address_{name}"] = _text(label, max_length, widget=widget)
        for channel, purpose in CONSENTS:
            self.fields[consent_field(channel, purpose)] = forms.BooleanField(
                label=f"{channel.label} · {purpose.label}", required=False
            )
        if customer is not None:
            del self.fields["confirm_duplicate"]
        definitions = CustomField.objects.filter(site=site, entity=CustomField.Entity.CUSTOMER)
        add_custom_fields(self, list(definitions), customer.custom_fields if customer else None)

    @property
    def address_fields(self) -> list[forms.BoundField]:
        return [self[f"address_{name}"] for name, _label, _n in ADDRESS_FIELDS]

    @property
    def consent_fields(self) -> list[forms.BoundField]:
        return [self[consent_field(c, p)] for c, p in CONSENTS]

    def phone_list(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data["phones"].replace(",", "\n").splitlines()
            if line.strip()
        ]

    def _consents(self) -> dict[tuple[str, str], bool]:
        current = (
            {(c.channel, c.purpose): c.granted for c in self.customer.consents.all()} if self.customer else {}
        )
        wanted = {(c, p): bool(self.cleaned_data.get(consent_field(c, p))) for c, p in CONSENTS}
        # Only what changed: an untouched box must not record a refusal the customer never gave.
        return {key: value for key, value in wanted.items() if value != current.get(key, False)}

    def _address(self) -> dict[str, str] | None:
        address = {name: self.cleaned_data[f"address_{name}"] for name, _label, _n in ADDRESS_FIELDS}
        return address if any(address.values()) or self.had_address else None

    def customer_data(self) -> CustomerData:
        data = self.cleaned_data
        manager = data.get("manager")
        manager_changed = self.customer is None or manager != self.customer.manager
        return CustomerData(
            first_name=data["first_name"],
            last_name=data["last_name"],
            patronymic=data["patronymic"],
            email=data["email"],
            phones=self.phone_list(),
            birthday=data["birthday"] or "",
            sex=data["sex"],
            manager=manager,
            manager_set=manager_changed and (self.customer is not None or manager is not None),
            vip=data["vip"],
            bad=data["bad"],
            source=data["source"],
            medium=data["medium"],
            campaign=data["campaign"],
            custom_fields=custom_values(self),
            address=self._address(),
            tags=[t.strip() for t in data["tags"].split(",") if t.strip()],
            consents=self._consents(),
            consent_source=CONSENT_SOURCE,
        )


def initial_from(customer: Customer) -> dict[str, Any]:
    initial = {
        name: getattr(customer, name)
        for name in (
            "last_name",
            "first_name",
            "patronymic",
            "email",
            "birthday",
            "sex",
            "vip",
            "bad",
            "source",
            "medium",
            "campaign",
        )
    }
    initial["manager"] = customer.manager_id
    initial["phones"] = "\n".join(p.number for p in customer.phones.all())
    initial["tags"] = ", ".join(t.name for t in customer.tags.all())
    main = next((a for a in customer.addresses.all() if a.is_main), None)
    for name, _label, _n in ADDRESS_FIELDS:
        initial[f"address_{name}"] = getattr(main, name) if main else ""
    for consent in customer.consents.all():
        initial[consent_field(consent.channel, consent.purpose)] = consent.granted
    return initial


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class MergeForm(forms.Form):
    others = forms.TypedMultipleChoiceField(
        label=_("Merge into this customer"), coerce=int, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, candidates: list[Customer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.candidates = {c.pk: c for c in candidates}
        self.fields["others"].choices = [(c.pk, str(c)) for c in candidates]

    def chosen(self) -> list[Customer]:
        return [self.candidates[pk] for pk in self.cleaned_data["others"]]
