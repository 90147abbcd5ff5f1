from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lavka.core.models import Site


class CostGroup(models.Model):
    """A heading for expense items ("Advertising", "Delivery" …)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)
    color = models.CharField(_("colour"), max_length=7, blank=True)

    class Meta:
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class CostItem(models.Model):
    """A kind of expense ("Yandex Direct", "Courier fees" …) that costs are booked under."""

    class Type(models.TextChoices):
        CONST = "const", _("fixed")
        VAR = "var", _("variable")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    group = models.ForeignKey(
        CostGroup, on_delete=models.PROTECT, related_name="items", verbose_name=_("group")
    )
    active = models.BooleanField(_("active"), default=True)
    ordering = models.PositiveIntegerField(_("ordering"), default=100)
    type = models.CharField(_("type"), max_length=8, choices=Type.choices, default=Type.CONST)
    applies_to_orders = models.BooleanField(_("applies to orders"), default=True)

    class Meta:
        ordering = ["ordering", "code"]

    def __str__(self) -> str:
        return self.name


class Cost(models.Model):
    """Money spent over a period (ad spend by source, an order's delivery …): the input of ROI and CAC."""

    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to"))
    summ = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    cost_item = models.ForeignKey(
        CostItem, on_delete=models.PROTECT, related_name="costs", verbose_name=_("item")
    )
    comment = models.CharField(_("comment"), max_length=1000, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="costs",
        verbose_name=_("order"),
    )
    # The staff member the cost is booked to (salary, bonus), if any.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="costs"
    )
    # No sites: the cost is shared by every site.
    sites = models.ManyToManyField(Site, blank=True, related_name="costs", verbose_name=_("sites"))
    # The acquisition source (UTM) the money was spent on.
    source = models.CharField(_("source"), max_length=255, blank=True)
    medium = models.CharField(_("medium"), max_length=255, blank=True)
    campaign = models.CharField(_("campaign"), max_length=255, blank=True)
    keyword = models.CharField(_("keyword"), max_length=255, blank=True)
    content = models.CharField(_("content"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-date_from", "-id"]
        indexes = [
            models.Index(fields=["date_from", "date_to"], name="cost_period_idx"),
            models.Index(fields=["source", "medium", "campaign"], name="cost_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cost_item} {self.summ}"


class Lifecycle(models.TextChoices):
    NEW = "new", _("new")
    ACTIVE = "active", _("active")
    REPEAT = "repeat", _("repeat")
    SLEEPING = "sleeping", _("sleeping")
    CHURNED = "churned", _("churned")


class CustomerMetrics(models.Model):
    """Derived figures of one customer: kept current from order events, recomputed in full by
    `lavka analytics refresh`. Written only by lavka.analytics (DESIGN.md §4)."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    # Indexed through the (site, …) indexes below: a full refresh rewrites every row, so each index counts.
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_index=False)
    orders_count = models.PositiveIntegerField(_("orders"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=16, decimal_places=2, default=0)
    average_order = models.DecimalField(_("average order"), max_digits=16, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    # Mean days between consecutive orders; null below two orders.
    days_between_orders = models.FloatField(_("days between orders"), null=True, blank=True)
    # Category ids, most bought first (by revenue), at most three.
    favourite_categories = models.JSONField(default=list, blank=True)
    returns_count = models.PositiveIntegerField(_("returns"), default=0)
    complaints_count = models.PositiveIntegerField(_("complaints"), default=0)
    # Quintile scores within the site, 1 (worst) … 5 (best); null for a customer with no orders.
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=32, blank=True)
    lifecycle = models.CharField(_("lifecycle"), max_length=16, choices=Lifecycle.choices, blank=True)
    # Model scores (BG/NBD + Gamma-Gamma); null while the site has too little data for a fit.
    p_alive = models.FloatField(_("P(alive)"), null=True, blank=True)
    expected_purchases_30 = models.FloatField(null=True, blank=True)
    expected_purchases_90 = models.FloatField(null=True, blank=True)
    expected_purchases_365 = models.FloatField(null=True, blank=True)
    expected_average_order = models.FloatField(null=True, blank=True)
    predicted_value = models.FloatField(_("predicted value"), null=True, blank=True)
    churn_risk = models.FloatField(_("churn risk"), null=True, blank=True)
    churn_reason = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "customer metrics"
        indexes = [
            models.Index(fields=["site", "lifecycle"], name="metrics_site_lifecycle_idx"),
            models.Index(fields=["site", "rfm_segment"], name="metrics_site_segment_idx"),
            models.Index(fields=["site", "r_score", "f_score", "m_score"], name="metrics_site_rfm_idx"),
            models.Index(fields=["churn_risk"], name="metrics_churn_idx"),
            models.Index(fields=["predicted_value"], name="metrics_value_idx"),
        ]

    def __str__(self) -> str:
        return f"metrics of customer {self.customer_id}"


class SiteAnalytics(models.Model):
    """Per-site settings and state of the analytics: lifecycle thresholds (derived from the shop's own
    purchase intervals unless a person edited them) and the RFM quintile edges of the last refresh."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, primary_key=True, related_name="+")
    active_days = models.PositiveIntegerField(_("active for (days)"), default=90)
    sleeping_days = models.PositiveIntegerField(_("sleeping after (days)"), default=180)
    churned_days = models.PositiveIntegerField(_("churned after (days)"), default=365)
    thresholds_edited = models.BooleanField(default=False)
    # {"r": [edges…], "f": […], "m": […]}: the quintile edges incremental updates score against.
    rfm_edges = models.JSONField(default=dict, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"analytics of {self.site}"


class ModelFit(models.Model):
    """One fit of the lifetime models for a site: parameters, fit quality and the backtest shown to
    the shop. The newest sufficient fit scores the customers."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    fitted_at = models.DateTimeField()
    sufficient = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)  # why not sufficient, in words
    customers = models.PositiveIntegerField(default=0)
    repeat_customers = models.PositiveIntegerField(default=0)
    # BG/NBD {"r","alpha","a","b"}, Gamma-Gamma {"p","q","gamma"}, log-likelihoods, timings.
    bgnbd = models.JSONField(default=dict, blank=True)
    gamma_gamma = models.JSONField(default=dict, blank=True)
    # {"calibration_end": …, "holdout_days": …, "buckets": [{"x": 0, "customers": n, "predicted": …,
    #  "actual": …}, …], "total_predicted": …, "total_actual": …, "error": …}
    backtest = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-fitted_at", "-id"]
        get_latest_by = "fitted_at"

    def __str__(self) -> str:
        return f"model fit {self.site} {self.fitted_at:%Y-%m-%d %H:%M}"


class Segment(models.Model):
    """A saved condition over customers. Dynamic: always evaluated now. Frozen: the members taken when
    it was frozen (SegmentMember)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("dynamic")
        FROZEN = "frozen", _("frozen")

    name = models.CharField(_("name"), max_length=255)
    code = models.SlugField(_("code"), max_length=64, unique=True)
    description = models.TextField(_("description"), blank=True)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.DYNAMIC)
    # The condition tree: {"op": "and"|"or", "items": [{"field": …, "operator": …, "value": …} | group]}
    definition = models.JSONField(default=dict)
    frozen_at = models.DateTimeField(null=True, blank=True)
    last_count = models.PositiveIntegerField(null=True, blank=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique"),
        ]


class ProductPair(models.Model):
    """Orders "bought together": how often `product` appears in orders that contain `antecedent`."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    antecedent = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    orders = models.PositiveIntegerField(default=0)  # orders holding both
    support = models.FloatField()
    confidence = models.FloatField()
    lift = models.FloatField()
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["antecedent", "product"], name="product_pair_unique"),
        ]
        indexes = [models.Index(fields=["antecedent", "-lift"], name="product_pair_lift_idx")]

    def __str__(self) -> str:
        return f"{self.antecedent_id} → {self.product_id}"


class OrderFacts(models.Model):
    """What the shop KPIs need of one order, kept by lavka.analytics.facts from order events (and by its
    catch-up and rebuild for orders written without events). Days are local dates in the installation's
    time zone (TIME_ZONE, recorded in FactsState); the columns about the customer's other orders are over
    their counted orders (not in the cancel group) ordered by creation time, then id."""

    order = models.OneToOneField(
        "orders.Order",
        on_delete=models.DO_NOTHING,  # orders are never deleted; no foreign key to check on a rebuild
        db_constraint=False,
        primary_key=True,
        related_name="+",
    )
    site = models.ForeignKey(
        Site, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    # Indexed: the facts of a customer are replaced together.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    day = models.DateField()  # local date of created_at
    cents = models.BigIntegerField()  # total_summ × 100
    counted = models.BooleanField()  # not in the cancel group
    complete = models.BooleanField()  # in the complete group
    complaint = models.BooleanField()  # in the complaint group, or with a complaint reason
    # Complete with status_updated_at ≥ created_at: microseconds from creation to the status; else null.
    delivery_us = models.BigIntegerField(null=True)
    # The customer's 1st, 2nd … counted order (0: not counted).
    rank = models.IntegerField()
    prev_day = models.DateField(null=True)  # day of the customer's previous counted order
    prev_cents = models.BigIntegerField(null=True)  # its cents, on the 2nd counted order only
    # First day of the month of the next counted order (NEVER_MONTH when there is none); counted only.
    next_month = models.DateField(null=True)
    month_first = models.BooleanField()  # the customer's first counted order of its calendar month
    cohort = models.DateField(null=True)  # first day of the month of the customer's first counted order
    # On the 1st counted order only: the customer's acquisition source and counted revenue to date.
    source = models.CharField(max_length=255, null=True)
    customer_cents = models.BigIntegerField(null=True)

    class Meta:
        verbose_name_plural = "order facts"

    def __str__(self) -> str:
        return f"facts of order {self.order_id}"


class FactsCell(models.Model):
    """Sums of OrderFacts by site, day and kind (lavka.analytics.facts.KINDS says what each kind counts
    and what `key`, `label`, `n`, `amount` and `extra` hold): what the shop KPIs add up, a few thousand
    rows a year where the orders are millions. Kept in step with OrderFacts by adding differences."""

    # Indexed through the unique constraint, which starts with the site.
    site = models.ForeignKey(
        Site, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    kind = models.CharField(max_length=1)
    day = models.DateField()
    key = models.DateField()  # the day again for the kinds keyed by day alone
    label = models.CharField(max_length=255, blank=True)
    n = models.BigIntegerField(default=0)
    amount = models.BigIntegerField(default=0)
    extra = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "kind", "day", "key", "label"], name="facts_cell_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.day} {self.key} {self.label}: {self.n}"


class FactsState(models.Model):
    """The time zone the order facts' days are in, and when they were last rebuilt (one row)."""

    zone = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"order facts in {self.zone}"
