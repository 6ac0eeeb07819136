"""`linkstar import`: order data into the store, from canonical files and marketplace exports.

    linkstar import PATH... [--db FILE] [--table T] [--format csv|parquet|jsonl|shopify|amazon|auto]
        [--map SOURCE=COLUMN ...] [--map-value COLUMN:TEXT=VALUE ...] [--map-event EVENT=SOURCE ...]
        [--default COLUMN=VALUE ...] [--date-format FMT ...] [--timezone TZ] [--dry-run]
        [--on-conflict update|skip|error] [--format-report text|json]

Canonical layout
================

One file per table, named after the table (`customers.csv`, `orders.parquet`,
`order_events.jsonl`, `order_events.2024-05.jsonl`: the name before the first dot), or any name
with `--table NAME`.  A folder stands for every `.csv`, `.tsv`, `.parquet`, `.jsonl`, `.ndjson`
and `.json` file inside it (recursively, hidden files aside); tables load in the order customers,
orders, reviews, carts, order_events, customer_events, consents, suppressions.

* **Formats**: CSV with a header line (UTF-8, comma, semicolon or tab, told apart by the header);
  Parquet; JSON Lines (one object per line).
* **Columns** are the table's columns in the store (`linkstar_dsl/store/migrations/`).  A column
  may be left out when it is optional or has a default: new rows take the default, stored rows
  keep their value.  An empty CSV cell, a missing JSON key and `null` all mean "no value".
  Columns the table does not have are reported and ignored.
* **Timestamps**: ISO 8601 with an offset (`2024-05-01T09:30:00+09:00`, `2024-05-01T00:30:00Z`).
  Also read: ISO without an offset and `YYYY-MM-DD HH:MM[:SS]`; `YYYY/M/D [H:MM]`; `D.M.YYYY
  [H:MM]` (a dot means day first); `M/D/YYYY [H:MM]` and `D/M/YYYY`, only when a number above
  12 tells which is which (`3/4/2024` is refused as ambiguous, with a hint); epoch seconds.
  `--date-format` (strptime codes, e.g. `%d/%m/%Y %H:%M`; repeatable, tried in order) replaces
  detection.  Times without an offset are wall-clock times in `--timezone` (default UTC); a time
  in a daylight-saving gap is read with the offset before the change, a repeated one takes its
  first occurrence.  Dates (`customers.birthday`): `YYYY-MM-DD` and the forms above.
* **Money**: an amount column and its `<name>_currency` column, ISO 4217 (`total`,
  `total_currency`: `1980`, `JPY`); a dot as the decimal separator, at most two decimals.
* **Lists** (`customers.tags`): `vip|newsletter` in CSV, an array in JSON Lines and Parquet.
* **JSON columns** (`data`, `evidence`): an object (in CSV, its JSON text).
* **Checked values**: order status, marketplace, fulfillment, country (ISO 3166-1 alpha-2),
  locale (`pt-BR` is read as `pt`) and consent level against `stdlib/schema.flow`, channel and
  purpose against the engine's lists (case does not matter); phone numbers in E.164 (spaces,
  dashes, dots and brackets are dropped); IANA time zones.
* **Keys**: each table's primary key (`id`; `order_id` for reviews); consents are matched on
  (customer_id, channel, purpose, granted_at) and suppressions on (customer_id, channel, reason,
  occurred_at).  Re-importing a file changes nothing.  A row whose key is stored with other
  values is updated (`--on-conflict update`, the default), kept as stored (`skip`; the rows it
  implies are dropped too) or rejected (`error`).  Two rows of one file with the same key: the
  second is rejected.

**Derived rows.**  Orders whose customer is not in the store create one: id, country, `source` =
the order's marketplace (`web` when not a marketplace), the country's language and, where the
country has a single time zone, that zone; `--default customers.COLUMN=VALUE` sets the rest.
After orders or customers are imported, the `first_order_at`, `last_order_at`, `order_count`
(orders not canceled) and `lifetime_value` (orders neither canceled, refunded nor returned, in
the customer's most used currency) of every customer the file touched are recomputed from the
orders in the store, in one statement; customers without any order keep the figures imported
with them.

Marketplace exports
===================

Detected from the content (or `--format shopify|amazon`); a page of the API's response, a list of
orders, or JSON Lines with one order per line.  One order is one row of the summary.

* **Shopify** (REST Admin API orders) → orders (marketplace `shopify`, fulfillment `merchant`,
  status from `cancelled_at`, `financial_status` and the fulfillments' `shipment_status`),
  customers (`customer.id`; a guest's id is `email:` + a hash of the address), order_events
  (`ordered`, `paid`, `shipped`, `out_for_delivery`, `delivered`, `delivery_failed`, one
  `refunded` per refund, `canceled`), consents from `email_marketing_consent` and
  `sms_marketing_consent` (state `subscribed`: a marketing grant, level `double_opt_in` for
  `confirmed_opt_in`, `express` for `single_opt_in`, else `implied`, source `shopify_import`, the
  consent object as evidence; state `unsubscribed` revokes the open grants on that channel).
* **Amazon** (SP-API getOrders) → orders (marketplace `amazon`, `AFN` → FBA, `MFN` → FBM, country
  from the shipping address or `MarketplaceId`, pending orders without `OrderTotal`: 0 in the
  marketplace's currency), customers (`amazon:` + a hash of `BuyerEmail`, else
  `amazon:<AmazonOrderId>`; source `amazon`), order_events (`ordered`; `shipped` and `canceled`
  at `LastUpdateDate`, marked approximate: getOrders has no shipping time).

The details are in `shopify.py` and `amazon.py`.

Foreign files
=============

`--map SOURCE=COLUMN` renames a column; `--map-value COLUMN:TEXT=VALUE` replaces a value before
it is read; `--default COLUMN=VALUE` fills missing and empty values; `--map-event EVENT=SOURCE`
records EVENT (a standard order event for an orders file, a customer event for a customers file)
at the time in column SOURCE, with the id `<order id>:<event>`.  With events mapped, an order
whose status is canceled, refunded or returned but has no time for that event gets the event at
the latest time known for the order, marked `"approximate": true` (with a warning), so that
`where not canceled` sees it.  A file that gives no value for a required column is refused before
anything is written, with the option that would fix it.

The Olist sample (`../shared/data/olist_orders_sample.csv`: one row per order, statuses of its
own, `M/D/YYYY H:MM` times in São Paulo, empty delivery dates, no totals) imports with::

    linkstar import ../shared/data/olist_orders_sample.csv --db linkstar.duckdb --table orders \\
        --map order_id=id --map order_status=status --map order_purchase_timestamp=placed_at \\
        --map order_delivered_carrier_date=shipped_at --map order_delivered_customer_date=delivered_at \\
        --map order_estimated_delivery_date=estimated_delivery_at \\
        --map-value status:invoiced=paid --map-value status:processing=paid \\
        --map-value status:unavailable=canceled \\
        --map-event ordered=order_purchase_timestamp --map-event paid=order_approved_at \\
        --map-event shipped=order_delivered_carrier_date --map-event delivered=order_delivered_customer_date \\
        --default total=0 --default total_currency=BRL --default marketplace=web --default country=BR \\
        --default customers.locale=pt --date-format "%m/%d/%Y %H:%M" --timezone America/Sao_Paulo

Rows, errors and safety
=======================

A row that cannot be imported is reported with its file, line and reason
(`orders.csv:17: placed_at: "31/31/2024" is not a date`; for Parquet the row number, for JSON
documents the line where the order starts) and the rest imports.  The summary, one line per file
on standard error, accounts for every row read: imported, updated, skipped (already stored
unchanged, or kept under `--on-conflict skip`), rejected.  `--format-report json` prints the
same figures, every rejected row (line, code, field, message) and the warnings on standard output.
Exit codes: 0 nothing rejected, 1 some rows rejected, 2 a usage or I/O error (one line; options,
files and headers are checked before anything is written).

Each file is staged in bulk (DuckDB `read_json` over a temporary file, in batches) and merged in
set-based SQL inside one transaction: a crash or an interrupt mid-file leaves nothing of it in the
store, and `--dry-run` does all the work, reports it, then rolls back (a missing `--db` is not
created).  Table and column names in the SQL come only from the store's schema; values travel as
parameters or in the staged data, never as SQL text.
"""

__all__ = ["FORMATS", "TABLES", "ImportOptions", "import_file", "import_paths"]

#: Values of `--format`.
FORMATS = ("auto", "csv", "parquet", "jsonl", "shopify", "amazon")
#: The tables a file can fill, in load order (`store.DATA_TABLES`, kept here so that the command
#: line can list them without loading DuckDB; a test keeps the two equal).
TABLES = ("customers", "orders", "reviews", "carts", "order_events", "customer_events", "consents",
          "suppressions")
DEFAULT_DB = "linkstar.duckdb"


def __getattr__(name: str):
    """The API, imported on first use: registering the command must not load DuckDB."""
    if name == "ImportOptions":
        from .options import ImportOptions

        return ImportOptions
    if name in ("import_file", "import_paths"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
