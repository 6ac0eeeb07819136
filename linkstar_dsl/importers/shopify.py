"""Shopify orders (the REST Admin API `Order` shape) → orders, customers, events and consents.

Accepted files: `{"orders": [...]}` (an API page), `{"order": {...}}`, a list of orders, or JSON
Lines with one order per line.  Per order:

* **orders**: `id`; marketplace `shopify`, fulfillment `merchant`; `placed_at` = `processed_at`
  (else `created_at`); country and state from `shipping_address`, else `billing_address`, else the
  customer's `default_address`; `total_price` + `currency`; item count = the sum of the line
  items' quantities; `shipped_at` = the first fulfillment; `delivered_at` and `tracking_url` from
  the fulfillments.  Status: `canceled` (`cancelled_at`, or `financial_status` voided), `refunded`
  (`financial_status` refunded), `delivered` (a fulfillment's `shipment_status` delivered),
  `shipped` (any fulfillment), `paid`, else `pending`.
* **order_events**: `ordered` (placed_at), `paid` (processed_at, when the financial status says
  money was taken), `shipped` (first fulfillment), `out_for_delivery`, `delivered` and
  `delivery_failed` (a fulfillment's `updated_at` with that `shipment_status`), one `refunded` per
  refund (`created_at`), `canceled` (`cancelled_at`, with `cancel_reason` in the data).
* **customers**: `customer.id` (guest checkouts: `email:` + a hash of the address, else
  `order:` + the order id); source `shopify`; name, email, phone (E.164; a number that is not is
  left empty, with a warning); country; locale from the order's `customer_locale`, else the
  country's; `tags` (Shopify's comma-separated string).
* **consents**: `email_marketing_consent` and `sms_marketing_consent` with state `subscribed`
  grant marketing consent on email or sms at `consent_updated_at` (else the order's time); the
  level is `double_opt_in` for `confirmed_opt_in`, `express` for `single_opt_in`, `implied`
  otherwise; source `shopify_import`; the evidence is the consent object with the customer and
  order ids.  State `unsubscribed` revokes the open grants on that channel.  The older
  `accepts_marketing: true` counts as express email consent.
"""

from __future__ import annotations

import hashlib

from .dates import DateReader
from .markets import ZONE_OF_COUNTRY, locale_of
from .messages import Problem, RowError
from .records import MERGE, PRIMARY, ExportConverter, Record, Revocation
from .values import build_row, phone

DOCUMENT_PATHS = (("orders",), ("order",))
DOCUMENT_SHAPE = '{"orders": [...]}, a list of orders, or one order per line'
PAID_STATUSES = ("paid", "partially_paid", "partially_refunded", "refunded")
CONSENT_LEVELS = {"confirmed_opt_in": "double_opt_in", "single_opt_in": "express"}
SOURCE = "shopify_import"
EVENT_OF_SHIPMENT = {"out_for_delivery": "out_for_delivery", "delivered": "delivered",
                     "failure": "delivery_failed", "attempted_delivery": "delivery_failed"}


def looks_like_shopify(order: dict) -> bool:
    return "line_items" in order or "financial_status" in order or "total_price" in order


class ShopifyConverter(ExportConverter):
    def _record(self, order: dict, line: int) -> Record:
        return _OrderReader(order, line, self).record()


class _OrderReader:
    """The rows of one Shopify order."""

    def __init__(self, order: dict, line: int, converter: ShopifyConverter) -> None:
        self.order = order
        self.tables = converter.tables
        self.dates = converter.dates
        self.result = Record(line)
        if order.get("id") in (None, ""):
            raise RowError("missing-field", name="id")
        self.order_id = str(order["id"])
        self.customer = order.get("customer") or {}

    def record(self) -> Record:
        order_row = self._order_row()
        self.result.add("orders", PRIMARY, order_row)
        self.result.add("customers", MERGE, self._customer_row(order_row))
        for event, moment, data in self._events(order_row):
            self._add_event(event, moment, data)
        self._consents(order_row)
        return self.result

    # ---------------------------------------------------------------------------- order

    def _order_row(self) -> dict:
        order = self.order
        address = self._address()
        fulfillments = [f for f in order.get("fulfillments") or [] if f.get("status") != "cancelled"]
        delivered = [f for f in fulfillments if f.get("shipment_status") == "delivered"]
        values = {
            "id": self.order_id, "customer_id": self._customer_id(), "marketplace": "shopify",
            "fulfillment": "merchant", "status": self._status(fulfillments, delivered),
            "country": address.get("country_code"), "state": address.get("province_code"),
            "total": order.get("total_price"), "total_currency": order.get("currency"),
            "item_count": max(1, sum(int(i.get("quantity") or 0) for i in order.get("line_items") or [])),
            "placed_at": order.get("processed_at") or order.get("created_at"),
            "shipped_at": _earliest(self.dates, fulfillments, "created_at"),
            "delivered_at": _earliest(self.dates, delivered, "updated_at"),
            "tracking_url": next((_tracking_url(f) for f in fulfillments if _tracking_url(f)), None),
        }
        if values["country"] is None:
            raise RowError("no-country", where="shipping_address, billing_address or customer.default_address")
        return build_row(self.tables["orders"], values, self.dates, ORDER_SOURCES)

    def _address(self) -> dict:
        for address in (self.order.get("shipping_address"), self.order.get("billing_address"),
                        self.customer.get("default_address")):
            if address and address.get("country_code"):
                return address
        return {}

    def _status(self, fulfillments: list, delivered: list) -> str:
        financial = self.order.get("financial_status")
        if self.order.get("cancelled_at") or financial == "voided":
            return "canceled"
        if financial == "refunded":
            return "refunded"
        if delivered:
            return "delivered"
        if fulfillments or self.order.get("fulfillment_status") in ("fulfilled", "partial"):
            return "shipped"
        return "paid" if financial in PAID_STATUSES else "pending"

    # ------------------------------------------------------------------------ customer

    def _customer_id(self) -> str:
        if self.customer.get("id") not in (None, ""):
            return str(self.customer["id"])
        email = self.order.get("email") or self.customer.get("email")
        if email:
            return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]
        return f"order:{self.order_id}"

    def _customer_row(self, order_row: dict) -> dict:
        customer, order = self.customer, self.order
        default_address = customer.get("default_address") or {}
        country = default_address.get("country_code") or order_row["country"]
        name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p) or None
        values = {
            "id": order_row["customer_id"], "source": "shopify", "name": name,
            "email": customer.get("email") or order.get("email"),
            "phone": self._phone("customer.phone", customer.get("phone") or order.get("phone")),
            "locale": locale_of(country, order.get("customer_locale")), "country": country,
            "timezone": ZONE_OF_COUNTRY.get(country),
            "tags": [t.strip() for t in (customer.get("tags") or "").split(",") if t.strip()],
        }
        return build_row(self.tables["customers"], values, self.dates, CUSTOMER_SOURCES)

    def _phone(self, field: str, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return phone(value)
        except RowError:
            self.result.warnings.append(Problem("phone-left-empty", None, {"field": field, "value": value}))
            return None

    # -------------------------------------------------------------------------- events

    def _events(self, order_row: dict):
        order = self.order
        yield "ordered", order_row["placed_at"], None
        if order.get("financial_status") in PAID_STATUSES:
            yield "paid", order.get("processed_at") or order.get("created_at"), None
        if order_row["shipped_at"] is not None:
            yield "shipped", order_row["shipped_at"], None
        for fulfillment in order.get("fulfillments") or []:
            event = EVENT_OF_SHIPMENT.get(fulfillment.get("shipment_status"))
            if event and fulfillment.get("updated_at"):
                yield event, fulfillment["updated_at"], {"fulfillment_id": fulfillment.get("id")}
        for index, refund in enumerate(order.get("refunds") or []):
            if refund.get("created_at"):
                refund_id = refund.get("id", index)
                yield f"refunded:{refund_id}", refund["created_at"], {"refund_id": refund.get("id")}
        if order.get("cancelled_at"):
            yield "canceled", order["cancelled_at"], {"reason": order.get("cancel_reason")}

    def _add_event(self, name: str, moment, data: dict | None) -> None:
        event = name.split(":")[0]
        if any(r.values.get("id") == f"{self.order_id}:{name}" for r in self.result.rows):
            return
        values = {"id": f"{self.order_id}:{name}", "order_id": self.order_id, "event": event,
                  "occurred_at": moment}
        if data is not None:
            values["data"] = data
        row = build_row(self.tables["order_events"], values, self.dates, {"occurred_at": f"{event} time"})
        self.result.add("order_events", MERGE, row)

    # ------------------------------------------------------------------------- consent

    def _consents(self, order_row: dict) -> None:
        customer = self.customer
        given = [("email", customer.get("email_marketing_consent")),
                 ("sms", customer.get("sms_marketing_consent"))]
        if not given[0][1] and customer.get("accepts_marketing") is True:
            given[0] = ("email", {"state": "subscribed", "opt_in_level": "single_opt_in",
                                  "consent_updated_at": customer.get("accepts_marketing_updated_at"),
                                  "from": "accepts_marketing"})
        for channel, consent in given:
            if consent:
                self._consent(channel, consent, order_row)

    def _consent(self, channel: str, consent: dict, order_row: dict) -> None:
        state = consent.get("state")
        moment = consent.get("consent_updated_at") or self.customer.get("created_at") or order_row["placed_at"]
        try:
            at = self.dates.timestamp(moment)
        except RowError as error:
            raise error.at(f"{channel}_marketing_consent.consent_updated_at") from None
        customer_id = order_row["customer_id"]
        if state == "unsubscribed":
            self.result.revocations.append(Revocation(customer_id, channel, "marketing", at))
            return
        if state != "subscribed":
            return
        level = CONSENT_LEVELS.get(consent.get("opt_in_level"), "implied")
        evidence = {"shopify_customer_id": self.customer.get("id"), "order_id": self.order_id,
                    f"{channel}_marketing_consent": consent}
        values = {"customer_id": customer_id, "channel": channel, "purpose": "marketing", "level": level,
                  "granted_at": at, "source": SOURCE, "evidence": evidence,
                  "double_opt_in_at": at if level == "double_opt_in" else None}
        sources = {"granted_at": f"{channel}_marketing_consent.consent_updated_at"}
        self.result.add("consents", MERGE, build_row(self.tables["consents"], values, self.dates, sources))


ORDER_SOURCES = {"total": "total_price", "total_currency": "currency", "placed_at": "processed_at",
                 "country": "shipping_address.country_code", "state": "shipping_address.province_code",
                 "shipped_at": "fulfillments.created_at", "delivered_at": "fulfillments.updated_at"}
CUSTOMER_SOURCES = {"id": "customer.id", "country": "customer.default_address.country_code",
                    "email": "customer.email", "locale": "customer_locale"}


def _earliest(dates: DateReader, fulfillments: list, field: str):
    """The earliest `field` time of the fulfillments, if any."""
    moments = []
    for fulfillment in fulfillments:
        if fulfillment.get(field):
            try:
                moments.append(dates.timestamp(fulfillment[field]))
            except RowError as error:
                raise error.at(f"fulfillments.{field}") from None
    return min(moments, default=None)


def _tracking_url(fulfillment: dict) -> str | None:
    return fulfillment.get("tracking_url") or next(iter(fulfillment.get("tracking_urls") or []), None)
