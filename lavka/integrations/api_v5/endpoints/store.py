"""API v5: store — stock per warehouse, prices, products and offers (retailcrm-api-v5.md §2.5).

Uploads are all-or-nothing: every item is checked before anything is written, and the writes of one
request share a transaction. An offer that cannot be found is not an error: it is reported in
`notFoundOffers` and the rest is processed, as retailCRM does.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from lavka.catalog.actions import set_offer_prices
from lavka.catalog.models import Offer, OfferPrice, PriceType, Product
from lavka.core.models import Site
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5 import params as p
from lavka.integrations.api_v5.endpoints.references import default_currency
from lavka.integrations.api_v5.errors import ENTITY_ERROR, AccessDenied, ApiError, InvalidParameters
from lavka.integrations.api_v5.request import ApiRequest
from lavka.integrations.api_v5.router import api
from lavka.inventory.actions import StockCount, set_stock
from lavka.inventory.models import StockLevel, Warehouse

MAX_UPLOAD = 250  # the largest batch a module sends (Woo: prices in 250)
UNIT = {"code": "pc", "name": "Штука", "sym": "шт."}


# --- shared reading helpers --------------------------------------------------------------------------------


def _strings(data: dict[str, Any], name: str) -> list[str]:
    values = p.string_list(data.get(name), name)
    if any("\x00" in value for value in values):  # PostgreSQL refuses NUL bytes in a query
        raise InvalidParameters(name)
    return values


def _ints(data: dict[str, Any], name: str) -> list[int]:
    return p.int_list(data.get(name), name)


def _int(data: dict[str, Any], name: str) -> int | None:
    values = _ints(data, name)
    if len(values) > 1:
        raise p.ParameterError(name)
    return values[0] if values else None


def _flag(data: dict[str, Any], name: str) -> bool | None:
    return p.boolean(data.get(name), name)


def _number(data: dict[str, Any], name: str) -> Decimal | None:
    return formats.parse_decimal(data.get(name), f"children[{name}]", error="Errors in the input parameters")


def _site_codes(req: ApiRequest, wanted: list[str]) -> list[str] | None:
    """The site codes to read: the asked ones (each must be allowed), else the key's; None = all."""
    for code in wanted:
        if not req.allows_site(code):
            raise AccessDenied()
    if wanted:
        return wanted
    return None if req.key.site_codes is None else list(req.key.site_codes)


def _decimal(value: Any, places: int) -> Decimal:
    """A non-negative number with at most `places` decimals, or ValueError with the message."""
    if isinstance(value, bool | dict | list) or value in (None, ""):
        raise ValueError("This value should be a number.")
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("This value should be a number.") from None
    if not number.is_finite() or not 0 <= number < Decimal("1e11"):
        raise ValueError("This value should be a number between 0 and 99999999999.")
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"This value should have at most {places} decimal places.")
    return number


# --- finding offers named by id | externalId | xmlId -------------------------------------------------------


class OfferFinder:
    """Offers of the sites a key may see, by `id`, `externalId` or `xmlId` (with the item's site if any)."""

    def __init__(self, req: ApiRequest, list_name: str) -> None:
        self.req = req
        self.list_name = list_name
        self.visible = Offer.objects.select_related("product__site")
        if req.key.site_codes is not None:
            self.visible = self.visible.filter(product__site__code__in=req.key.site_codes)

    def site(self, item: dict[str, Any], n: int, default: Site | None) -> Site | None:
        if item.get("site") in (None, ""):
            return default
        if "\x00" in str(item["site"]):
            raise ApiError(ENTITY_ERROR, 400, {f"{self.list_name}[{n}].site": "This value is not valid."})
        return self.req.site_by_code(item["site"], f"{self.list_name}[{n}].site")

    def find(self, item: dict[str, Any], site: Site | None) -> Offer | None:
        rows = self.visible if site is None else self.visible.filter(product__site=site)
        if item.get("id") not in (None, ""):
            try:
                pk = int(str(item["id"]))
            except ValueError:
                return None
            return rows.filter(pk=pk).first() if 0 < pk < 2**63 else None
        for key, column in (("externalId", "external_id"), ("xmlId", "xml_id")):
            value = formats.external_id(item.get(key))
            if value and "\x00" in value:  # no offer has it, and PostgreSQL refuses it in a query
                return None
            if value:
                found = list(rows.filter(**{column: value})[:2])
                # Without a site the same externalId may name offers of two sites: that names none.
                return found[0] if len(found) == 1 else None
        return None


def _not_found(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("id", "externalId", "xmlId") if item.get(k) not in (None, "")}


def _batch(req: ApiRequest, name: str) -> list[dict[str, Any]]:
    items = req.entity(name, kind=list)
    if len(items) > MAX_UPLOAD:
        raise ApiError(ENTITY_ERROR, 400, {name: f"At most {MAX_UPLOAD} items per request."})
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(ENTITY_ERROR, 400, {f"{name}[{n}]": "This value is not valid."})
    return items


# --- inventories -------------------------------------------------------------------------------------------


@api("GET", "store/inventories", scope="store_read", query=("filter", "limit", "page"))
def inventories(req: ApiRequest) -> dict[str, Any]:
    """Stock of offers: the total and, with `details`, per warehouse."""
    f = req.filter
    offers = Offer.objects.select_related("product__site").order_by("id")
    codes = _site_codes(req, _strings(f, "sites"))
    if codes is not None:
        offers = offers.filter(product__site__code__in=codes)
    if ids := _ints(f, "ids"):
        offers = offers.filter(pk__in=ids)
    if external_ids := _strings(f, "offerExternalId"):
        offers = offers.filter(external_id__in=external_ids)
    if xml_ids := _strings(f, "offerXmlId"):
        offers = offers.filter(xml_id__in=xml_ids)
    if articles := _strings(f, "offerArticle"):
        offers = offers.filter(article__in=articles)
    if product_external_ids := _strings(f, "productExternalId"):
        offers = offers.filter(product__external_id__in=product_external_ids)
    if product_articles := _strings(f, "productArticle"):
        offers = offers.filter(product__article__in=product_articles)
    if (active := _flag(f, "offerActive")) is not None:
        offers = offers.filter(is_active=active)
    if (product_active := _flag(f, "productActive")) is not None:
        offers = offers.filter(product__is_active=product_active)
    details = _flag(f, "details") or req.bool("details") or False
    rows, pagination = req.paginate(offers)
    levels: dict[int, list[StockLevel]] = defaultdict(list)
    for level in StockLevel.objects.filter(offer__in=rows).select_related("warehouse"):
        levels[level.offer_id].append(level)
    out = []
    for offer in rows:
        entry = formats.compact(
            {
                "id": offer.pk,
                "externalId": offer.external_id,
                "xmlId": offer.xml_id,
                "site": offer.product.site.code,
                "purchasePrice": formats.money(offer.purchase_price),
                "quantity": formats.money(sum((lv.quantity for lv in levels[offer.pk]), Decimal(0))),
            }
        )
        if details:
            entry["stores"] = [
                formats.compact(
                    {
                        "store": lv.warehouse.code,
                        "quantity": formats.money(lv.quantity),
                        "purchasePrice": formats.money(lv.purchase_price),
                    }
                )
                for lv in levels[offer.pk]
            ]
        out.append(entry)
    return {"offers": out, "pagination": pagination}


def _stock_counts(item: dict[str, Any], n: int, warehouses: dict[str, Warehouse]) -> list[StockCount]:
    stores = item.get("stores", [])
    prefix = f"offers[{n}].stores"
    if isinstance(stores, dict):  # a PHP array with gaps in its indexes
        stores = list(stores.values())
    if not isinstance(stores, list):
        raise ApiError(ENTITY_ERROR, 400, {prefix: "This value is not valid."})
    counts = []
    for m, store in enumerate(stores):
        key = f"{prefix}[{m}]"
        if not isinstance(store, dict):
            raise ApiError(ENTITY_ERROR, 400, {key: "This value is not valid."})
        warehouse = warehouses.get(str(store.get("code", "")))
        if warehouse is None:
            raise ApiError(
                ENTITY_ERROR, 400, {f"{key}.code": f"Store with code '{store.get('code')}' not found."}
            )
        try:
            quantity = _decimal(store.get("available"), 3)
        except ValueError as exc:
            raise ApiError(ENTITY_ERROR, 400, {f"{key}.available": str(exc)}) from None
        price = None
        if store.get("purchasePrice") not in (None, ""):
            try:
                price = _decimal(store["purchasePrice"], 2)
            except ValueError as exc:
                raise ApiError(ENTITY_ERROR, 400, {f"{key}.purchasePrice": str(exc)}) from None
        counts.append(StockCount(warehouse, quantity, price))
    return counts


@api("POST", "store/inventories/upload", scope="store_write", entity="offers", query=("site",))
def inventories_upload(req: ApiRequest) -> dict[str, Any]:
    """Set offers' stock per warehouse; each difference is written to the stock ledger."""
    items = _batch(req, "offers")
    if "\x00" in str(req.params.get("site", "")):
        raise InvalidParameters("site")
    default_site = req.site(required=False)
    finder = OfferFinder(req, "offers")
    warehouses = {w.code: w for w in Warehouse.objects.all()}
    work: list[tuple[int, Offer, list[StockCount]]] = []
    not_found = []
    for n, item in enumerate(items):
        counts = _stock_counts(item, n, warehouses)
        offer = finder.find(item, finder.site(item, n, default_site))
        if offer is None:
            not_found.append(_not_found(item))
        else:
            work.append((n, offer, counts))
    with transaction.atomic():
        for n, offer, counts in work:
            try:
                set_stock(offer, counts, actor=req.actor)
            except ValidationError as exc:
                raise ApiError(ENTITY_ERROR, 400, {f"offers[{n}].stores": " ".join(exc.messages)}) from None
    return {"processedOffersCount": len(work), "notFoundOffers": not_found}


# --- prices ------------------------------------------------------------------------------------------------


def _price_changes(
    item: dict[str, Any], n: int, price_types: dict[str, PriceType]
) -> dict[PriceType, Decimal | None]:
    prices = item.get("prices", [])
    prefix = f"prices[{n}].prices"
    if isinstance(prices, dict) and "code" in prices:
        # WooCommerce modules before 4.6 send one price as an object, not as a list of one.
        prices = [prices]
    elif isinstance(prices, dict):  # a PHP array with gaps in its indexes
        prices = list(prices.values())
    if not isinstance(prices, list):
        raise ApiError(ENTITY_ERROR, 400, {prefix: "This value is not valid."})
    changes: dict[PriceType, Decimal | None] = {}
    for m, entry in enumerate(prices):
        key = f"{prefix}[{m}]"
        if not isinstance(entry, dict):
            raise ApiError(ENTITY_ERROR, 400, {key: "This value is not valid."})
        price_type = price_types.get(str(entry.get("code", "")))
        if price_type is None:
            raise ApiError(ENTITY_ERROR, 400, {f"{key}.code": f"Price type '{entry.get('code')}' not found."})
        try:
            remove = p.boolean(entry.get("remove"), "remove", False)
        except p.ParameterError:
            raise ApiError(ENTITY_ERROR, 400, {f"{key}.remove": "This value is not valid."}) from None
        if remove and price_type.is_default:
            raise ApiError(ENTITY_ERROR, 400, {f"{key}.remove": "The base price cannot be removed."})
        if remove:
            changes[price_type] = None
            continue
        try:
            changes[price_type] = _decimal(entry.get("price"), 2)
        except ValueError as exc:
            raise ApiError(ENTITY_ERROR, 400, {f"{key}.price": str(exc)}) from None
    return changes


@api("POST", "store/prices/upload", scope="store_write", entity="prices")
def prices_upload(req: ApiRequest) -> dict[str, Any]:
    """Set offers' prices by price type; the base type is the offer's own price."""
    items = _batch(req, "prices")
    finder = OfferFinder(req, "prices")
    price_types = {t.code: t for t in PriceType.objects.all()}
    work: list[tuple[Offer, dict[PriceType, Decimal | None]]] = []
    not_found = []
    for n, item in enumerate(items):
        changes = _price_changes(item, n, price_types)
        offer = finder.find(item, finder.site(item, n, None))
        if offer is None:
            not_found.append(_not_found(item))
        else:
            work.append((offer, changes))
    with transaction.atomic():
        for offer, changes in work:
            set_offer_prices(offer, changes, actor=req.actor)
    return {"processedOffersCount": len(work), "notFoundOffers": not_found}


# --- products and offers -----------------------------------------------------------------------------------


class OfferJson:
    """Offers as §2.5 shows them, with stock and prices read for a whole page at once."""

    def __init__(self, offers: list[Offer]) -> None:
        self.quantity: dict[int, Decimal] = dict(
            StockLevel.objects.filter(offer__in=offers)
            .values("offer")
            .annotate(total=Sum("quantity"))
            .values_list("offer", "total")
        )
        self.prices: dict[int, list[OfferPrice]] = defaultdict(list)
        for row in OfferPrice.objects.filter(offer__in=offers).select_related("price_type"):
            self.prices[row.offer_id].append(row)
        self.base = PriceType.objects.filter(is_default=True).first()
        self.currency = default_currency()

    def __call__(self, offer: Offer) -> dict[str, Any]:
        currency = offer.product.site.currency or self.currency
        prices = []
        if self.base is not None:
            prices.append(self._price(self.base, offer.price, currency))
        prices += [self._price(row.price_type, row.price, currency) for row in self.prices[offer.pk]]
        return formats.compact(
            {
                "id": offer.pk,
                "externalId": offer.external_id,
                "xmlId": offer.xml_id,
                "name": offer.name,
                "article": offer.article or offer.sku,
                "price": formats.money(offer.price),
                "prices": prices,
                "purchasePrice": formats.money(offer.purchase_price),
                "quantity": formats.money(self.quantity.get(offer.pk) or Decimal(0)),
                "weight": offer.weight,
                "active": offer.is_active,
                "unit": UNIT,
            }
        )

    @staticmethod
    def _price(price_type: PriceType, price: Decimal, currency: str) -> dict[str, Any]:
        return {
            "priceType": price_type.code,
            "price": formats.money(price),
            "ordering": price_type.ordering,
            "currency": price_type.currency or currency,
        }


def _offer_filters(f: dict[str, Any], prefix: str = "") -> Q:
    """Conditions on offers (`prefix` = "offers__" when filtering products by their offers)."""
    q = Q()
    if ids := _ints(f, "offerIds" if prefix else "ids"):
        q &= Q(**{f"{prefix}pk__in": ids})
    for name, column in (("offerExternalId", "external_id"), ("offerXmlId", "xml_id")):
        if values := _strings(f, name):
            q &= Q(**{f"{prefix}{column}__in": values})
    if not prefix:
        for name, column in (("externalIds", "external_id"), ("xmlIds", "xml_id")):
            if values := _strings(f, name):
                q &= Q(**{f"{column}__in": values})
    if (low := _number(f, "minPrice")) is not None:
        q &= Q(**{f"{prefix}price__gte": low})
    if (high := _number(f, "maxPrice")) is not None:
        q &= Q(**{f"{prefix}price__lte": high})
    return q


def _text_filter(f: dict[str, Any], name: str) -> str:
    value = f.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list) or "\x00" in str(value):
        raise InvalidParameters(name)
    return str(value).strip()[:255]


@api("GET", "store/products", scope="store_read", query=("filter", "limit", "page"))
def products(req: ApiRequest) -> dict[str, Any]:
    """Products with their offers, prices and stock."""
    f = req.filter
    rows: QuerySet = Product.objects.select_related("site", "category").order_by("id")
    codes = _site_codes(req, _strings(f, "sites"))
    if codes is not None:
        rows = rows.filter(site__code__in=codes)
    if ids := _ints(f, "ids"):
        rows = rows.filter(pk__in=ids)
    if external_id := _text_filter(f, "externalId"):
        rows = rows.filter(external_id=external_id)
    if name := _text_filter(f, "name"):
        rows = rows.filter(name__icontains=name)
    if manufacturer := _text_filter(f, "manufacturer"):
        rows = rows.filter(manufacturer=manufacturer)
    if groups := _ints(f, "groups"):
        rows = rows.filter(category__in=groups)
    if (active := _flag(f, "active")) is not None:
        rows = rows.filter(is_active=active)
    if (since := _int(f, "sinceId")) is not None:
        rows = rows.filter(pk__gt=since)
    offer_q = _offer_filters(f, prefix="offers__")
    if offer_q:
        rows = rows.filter(pk__in=Product.objects.filter(offer_q).values("pk"))
    page, pagination = req.paginate(rows)
    offers: dict[int, list[Offer]] = defaultdict(list)
    for offer in Offer.objects.filter(product__in=page).select_related("product__site").order_by("id"):
        offers[offer.product_id].append(offer)
    offer_json = OfferJson([o for group in offers.values() for o in group])
    out = []
    for product in page:
        entries = [offer_json(o) for o in offers[product.pk]]
        prices = [o.price for o in offers[product.pk]]
        out.append(
            formats.compact(
                {
                    "id": product.pk,
                    "externalId": product.external_id,
                    "catalogId": product.site_id,
                    "article": product.article,
                    "name": product.name,
                    "manufacturer": product.manufacturer,
                    "groups": [
                        formats.compact(
                            {"id": product.category_id, "externalId": product.category.external_id}
                        )
                    ]
                    if product.category is not None
                    else [],
                    "minPrice": formats.money(min(prices)) if prices else 0,
                    "maxPrice": formats.money(max(prices)) if prices else 0,
                    "active": product.is_active,
                    "quantity": formats.money(
                        sum(
                            (offer_json.quantity.get(o.pk) or Decimal(0) for o in offers[product.pk]),
                            Decimal(0),
                        )
                    ),
                    "markable": False,
                    "type": "product",
                    "offers": entries,
                }
            )
        )
    return {"products": out, "pagination": pagination}


@api("GET", "store/offers", scope="store_read", query=("filter", "limit", "page"))
def offers_list(req: ApiRequest) -> dict[str, Any]:
    """Offers with their prices and stock."""
    f = req.filter
    rows: QuerySet = Offer.objects.select_related("product__site").order_by("id")
    codes = _site_codes(req, _strings(f, "sites"))
    if codes is not None:
        rows = rows.filter(product__site__code__in=codes)
    rows = rows.filter(_offer_filters(f))
    if name := _text_filter(f, "name"):
        rows = rows.filter(name__icontains=name)
    if (active := _flag(f, "active")) is not None:
        rows = rows.filter(is_active=active)
    if (since := _int(f, "sinceId")) is not None:
        rows = rows.filter(pk__gt=since)
    page, pagination = req.paginate(rows)
    offer_json = OfferJson(page)
    return {
        "offers": [{**offer_json(o), "site": o.product.site.code, "productId": o.product_id} for o in page],
        "pagination": pagination,
    }
