"""Amazon SP-API `getOrders` results → orders, customers and order events.

Accepted files: `{"payload": {"Orders": [...]}}` (the API response), `{"Orders": [...]}`, a list
of orders, or JSON Lines with one order per line.  Per order:

* **orders**: `AmazonOrderId`; marketplace `amazon`; fulfillment `FBA` for `AFN`, `FBM` for `MFN`
  (and when absent); status from `OrderStatus` (Pending and PendingAvailability → pending,
  Unshipped → paid, PartiallyShipped, Shipped and InvoiceUnconfirmed → shipped, Canceled and
  Unfulfillable → canceled); country and state from `ShippingAddress`, else the marketplace's
  country (`MarketplaceId`); `OrderTotal` (pending orders have none: 0 in the marketplace's
  currency); item count = items shipped + unshipped; `placed_at` = `PurchaseDate`;
  `estimated_delivery_at` = `LatestDeliveryDate`.  getOrders gives no shipping or delivery time:
  for shipped orders `shipped_at` is `LastUpdateDate`, and the event says it is approximate.
* **order_events**: `ordered` (PurchaseDate); `shipped` and `canceled` at `LastUpdateDate`,
  with `{"approximate": true}` in the data.
* **customers**: id `amazon:` + a hash of `BuyerInfo.BuyerEmail` (Amazon's stable relay address),
  or `amazon:<AmazonOrderId>` when there is none; source `amazon` (no marketing to Amazon
  buyers); email, name (`BuyerName`), country, and the country's language and time zone.
"""

from __future__ import annotations

import hashlib

from .markets import CURRENCY_OF_COUNTRY, customer_market
from .messages import RowError
from .records import MERGE, PRIMARY, ExportConverter, Record
from .values import build_row

DOCUMENT_PATHS = (("payload", "Orders"), ("Orders",))
DOCUMENT_SHAPE = '{"payload": {"Orders": [...]}}, {"Orders": [...]}, a list of orders, or one order per line'

COUNTRY_OF_MARKETPLACE = {
    "A1VC38T7YXB528": "JP", "ATVPDKIKX0DER": "US", "A1PA6795UKMFR9": "DE", "A13V1IB3VIYZZH": "FR",
    "A1RKKUPIHCS9HS": "ES", "APJ6JRA9NG5V4": "IT", "A2EUQ1WTGCTBG2": "CA", "A1F83G8C2ARO7P": "GB",
}
FULFILLMENT = {"AFN": "FBA", "MFN": "FBM"}
STATUS = {"Pending": "pending", "PendingAvailability": "pending", "Unshipped": "paid",
          "PartiallyShipped": "shipped", "Shipped": "shipped", "InvoiceUnconfirmed": "shipped",
          "Canceled": "canceled", "Unfulfillable": "canceled"}
SOURCES = {"id": "AmazonOrderId", "status": "OrderStatus", "placed_at": "PurchaseDate",
           "total": "OrderTotal.Amount", "total_currency": "OrderTotal.CurrencyCode",
           "country": "ShippingAddress.CountryCode", "state": "ShippingAddress.StateOrRegion",
           "estimated_delivery_at": "LatestDeliveryDate", "shipped_at": "LastUpdateDate",
           "fulfillment": "FulfillmentChannel", "item_count": "NumberOfItemsShipped"}


def looks_like_amazon(order: dict) -> bool:
    return "AmazonOrderId" in order


class AmazonConverter(ExportConverter):

    def _record(self, order: dict, line: int) -> Record:
        if not order.get("AmazonOrderId"):
            raise RowError("missing-field", name="AmazonOrderId")
        order_row = build_row(self.tables["orders"], self._order_values(order), self.dates, SOURCES)
        record = Record(line)
        record.add("orders", PRIMARY, order_row)
        record.add("customers", MERGE, self._customer(order, order_row))
        for event, moment, data in self._events(order, order_row):
            record.add("order_events", MERGE, build_row(self.tables["order_events"], {
                "id": f"{order_row['id']}:{event}", "order_id": order_row["id"], "event": event,
                "occurred_at": moment, **({"data": data} if data else {})}, self.dates,
                {"occurred_at": "LastUpdateDate"}))
        return record

    def _order_values(self, order: dict) -> dict:
        address = order.get("ShippingAddress") or {}
        country = address.get("CountryCode") or COUNTRY_OF_MARKETPLACE.get(order.get("MarketplaceId"))
        if not country:
            raise RowError("no-country", where="ShippingAddress.CountryCode or MarketplaceId")
        status = _known(STATUS, order.get("OrderStatus"), "OrderStatus", "Amazon order status")
        total = order.get("OrderTotal") or {}
        currency = total.get("CurrencyCode") or CURRENCY_OF_COUNTRY.get(country.upper())
        if currency is None:
            raise RowError("no-currency", country=country)
        channel = order.get("FulfillmentChannel") or "MFN"
        items = _count(order, "NumberOfItemsShipped") + _count(order, "NumberOfItemsUnshipped")
        return {
            "id": order["AmazonOrderId"], "customer_id": _customer_id(order), "marketplace": "amazon",
            "fulfillment": _known(FULFILLMENT, channel, "FulfillmentChannel", "fulfillment channel"),
            "status": status, "country": country, "state": address.get("StateOrRegion"),
            "total": total.get("Amount", "0"), "total_currency": currency, "item_count": max(1, items),
            "placed_at": order.get("PurchaseDate"),
            "shipped_at": order.get("LastUpdateDate") if status == "shipped" else None,
            "estimated_delivery_at": order.get("LatestDeliveryDate"),
        }

    def _customer(self, order: dict, order_row: dict) -> dict:
        buyer = order.get("BuyerInfo") or {}
        values = {"id": order_row["customer_id"], "source": "amazon", "email": buyer.get("BuyerEmail"),
                  "name": buyer.get("BuyerName"), "country": order_row["country"],
                  **customer_market(order_row["country"])}
        return build_row(self.tables["customers"], values, self.dates, {"email": "BuyerInfo.BuyerEmail"})

    def _events(self, order: dict, order_row: dict):
        yield "ordered", order_row["placed_at"], None
        updated = order.get("LastUpdateDate")
        approximate = {"approximate": True, "from": "LastUpdateDate"}
        if order_row["status"] == "shipped" and updated:
            yield "shipped", updated, approximate
        if order_row["status"] == "canceled" and updated:
            yield "canceled", updated, approximate


def _customer_id(order: dict) -> str:
    email = (order.get("BuyerInfo") or {}).get("BuyerEmail")
    if email:
        return "amazon:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]
    return f"amazon:{order['AmazonOrderId']}"


def _count(order: dict, field: str) -> int:
    value = order.get(field) or 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise RowError("not-an-integer", field=field, value=value)


def _known(table: dict, value, field: str, what: str) -> str:
    if value not in table:
        raise RowError("unknown-value", field=field, value=value, what=what)
    return table[value]
