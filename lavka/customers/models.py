from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site
from lavka.customers.choices import Channel, ContragentType, Purpose, Sex
from lavka.customers.querysets import CustomerQuerySet


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    color = models.CharField(_("colour"), max_length=7, default="#8a8a8a")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="customers", verbose_name=_("site"))
    external_id = models.CharField(_("external ID"), max_length=100, null=True, blank=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    patronymic = models.CharField(_("patronymic"), max_length=150, blank=True)
    email = models.EmailField(_("e-mail"), blank=True, db_index=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        verbose_name=_("responsible manager"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vip = models.BooleanField(default=False)
    bad = models.BooleanField(default=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers")
    # Acquisition source (UTM)
    source = models.CharField(_("source"), max_length=255, blank=True)
    medium = models.CharField(_("medium"), max_length=255, blank=True)
    campaign = models.CharField(_("campaign"), max_length=255, blank=True)
    keyword = models.CharField(_("keyword"), max_length=255, blank=True)
    content = models.CharField(_("content"), max_length=255, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    # Derived from orders by a receiver of order events; never edited by hand.
    orders_count = models.PositiveIntegerField(default=0)
    total_summ = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_customers"
    )
    created_at = models.DateTimeField(_("created"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "external_id"],
                name="customer_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="customer_name_idx"),
            models.Index(fields=["site", "manager"], name="customer_site_manager_idx"),
            # Segments and lists count live customers only: an index-only scan instead of the table.
            models.Index(
                fields=["id"], name="customer_live_idx", condition=models.Q(merged_into__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.last_name, self.first_name, self.patronymic) if part)

    @property
    def main_phone(self) -> str:
        phones = list(self.phones.all())
        return phones[0].number if phones else ""


class CustomerPhone(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(_("phone"), max_length=20, db_index=True)  # E.164
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.number


class CustomerAddress(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    index = models.CharField(_("postcode"), max_length=20, blank=True)
    country_iso = models.CharField(_("country"), max_length=2, blank=True)
    region = models.CharField(_("region"), max_length=255, blank=True)
    city = models.CharField(_("city"), max_length=255, blank=True)
    street = models.CharField(_("street"), max_length=255, blank=True)
    building = models.CharField(_("building"), max_length=50, blank=True)
    flat = models.CharField(_("flat"), max_length=50, blank=True)
    notes = models.CharField(_("notes"), max_length=500, blank=True)
    text = models.CharField(_("address"), max_length=1000, blank=True)
    is_main = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_main", "id"]

    def __str__(self) -> str:
        return self.text or ", ".join(
            p for p in (self.index, self.city, self.street, self.building, self.flat) if p
        )


class CustomerNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField(_("note"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Consent(models.Model):
    """Whether we may contact the customer on a channel for a purpose, when and how that was given."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    granted = models.BooleanField(default=False)
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=100, blank=True)  # "checkout form", "call", "api", "import" …

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel", "purpose"], name="consent_unique")
        ]


# --- Corporate (B2B) customers -------------------------------------------------------------------


class CorporateCustomer(models.Model):
    """An organisation that buys: its addresses, legal entities (companies) and contact persons."""

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="corporate_customers", verbose_name=_("site")
    )
    external_id = models.CharField(_("external ID"), max_length=100, null=True, blank=True)
    nick_name = models.CharField(_("name"), max_length=255, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="corporate_customers",
        verbose_name=_("responsible manager"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vip = models.BooleanField(default=False)
    bad = models.BooleanField(default=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="corporate_customers")
    source = models.CharField(_("source"), max_length=255, blank=True)
    medium = models.CharField(_("medium"), max_length=255, blank=True)
    campaign = models.CharField(_("campaign"), max_length=255, blank=True)
    keyword = models.CharField(_("keyword"), max_length=255, blank=True)
    content = models.CharField(_("content"), max_length=255, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_corporates"
    )
    created_at = models.DateTimeField(_("created"), db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "external_id"],
                name="corporate_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return self.nick_name or f"#{self.pk}"


class CorporateAddress(models.Model):
    corporate = models.ForeignKey(CorporateCustomer, on_delete=models.CASCADE, related_name="addresses")
    external_id = models.CharField(_("external ID"), max_length=100, null=True, blank=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    is_main = models.BooleanField(default=False)
    index = models.CharField(_("postcode"), max_length=20, blank=True)
    country_iso = models.CharField(_("country"), max_length=2, blank=True)
    region = models.CharField(_("region"), max_length=255, blank=True)
    city = models.CharField(_("city"), max_length=255, blank=True)
    street = models.CharField(_("street"), max_length=255, blank=True)
    building = models.CharField(_("building"), max_length=50, blank=True)
    flat = models.CharField(_("flat"), max_length=50, blank=True)
    notes = models.CharField(_("notes"), max_length=500, blank=True)
    text = models.CharField(_("address"), max_length=1000, blank=True)

    class Meta:
        ordering = ["-is_main", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["corporate", "external_id"],
                name="corporate_address_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["corporate"], name="corporate_one_main_address", condition=models.Q(is_main=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.text or f"#{self.pk}"


class Company(models.Model):
    """A legal entity a corporate customer buys through (its bank and tax details)."""

    corporate = models.ForeignKey(CorporateCustomer, on_delete=models.CASCADE, related_name="companies")
    external_id = models.CharField(_("external ID"), max_length=100, null=True, blank=True)
    name = models.CharField(_("name"), max_length=255)
    brand = models.CharField(_("brand"), max_length=255, blank=True)
    is_main = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    address = models.ForeignKey(
        CorporateAddress, null=True, blank=True, on_delete=models.SET_NULL, related_name="companies"
    )
    contragent_type = models.CharField(max_length=16, choices=ContragentType.choices, blank=True)
    legal_name = models.CharField(_("legal name"), max_length=255, blank=True)
    legal_address = models.CharField(_("legal address"), max_length=500, blank=True)
    inn = models.CharField("INN", max_length=20, blank=True, db_index=True)
    kpp = models.CharField("KPP", max_length=20, blank=True)
    okpo = models.CharField("OKPO", max_length=20, blank=True)
    ogrn = models.CharField("OGRN", max_length=20, blank=True)
    ogrnip = models.CharField("OGRNIP", max_length=20, blank=True)
    certificate_number = models.CharField(_("certificate number"), max_length=50, blank=True)
    certificate_date = models.DateField(_("certificate date"), null=True, blank=True)
    bik = models.CharField("BIK", max_length=20, blank=True)
    bank = models.CharField(_("bank"), max_length=255, blank=True)
    bank_address = models.CharField(_("bank address"), max_length=500, blank=True)
    corr_account = models.CharField(_("correspondent account"), max_length=34, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=34, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["-is_main", "id"]
        verbose_name_plural = _("companies")
        constraints = [
            models.UniqueConstraint(
                fields=["corporate", "external_id"],
                name="company_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["corporate"], name="corporate_one_main_company", condition=models.Q(is_main=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CorporateContact(models.Model):
    """A person (a Customer of the same site) who speaks for the corporate customer."""

    corporate = models.ForeignKey(CorporateCustomer, on_delete=models.CASCADE, related_name="contacts")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="corporate_contacts")
    is_main = models.BooleanField(default=False)
    companies = models.ManyToManyField(Company, through="ContactCompany", related_name="contacts")

    class Meta:
        ordering = ["-is_main", "id"]
        constraints = [
            models.UniqueConstraint(fields=["corporate", "customer"], name="corporate_contact_unique"),
            models.UniqueConstraint(
                fields=["corporate"], name="corporate_one_main_contact", condition=models.Q(is_main=True)
            ),
        ]


class ContactCompany(models.Model):
    """Which of the corporate customer's companies a contact person acts for."""

    contact = models.ForeignKey(CorporateContact, on_delete=models.CASCADE, related_name="company_links")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contact_links")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["contact", "company"], name="contact_company_unique")]


class CorporateNote(models.Model):
    corporate = models.ForeignKey(CorporateCustomer, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField(_("note"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
