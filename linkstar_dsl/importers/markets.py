"""Facts about countries the exports leave out: the buyer's likely language, zone and currency.

Used to fill customers created from orders (Shopify, Amazon, placeholder customers of foreign
order files) when the export says nothing better.  Countries spanning several time zones get none:
the runtime then falls back to the country's rules rather than guessing a zone.
"""

from __future__ import annotations

LOCALE_OF_COUNTRY = {
    "JP": "ja", "US": "en", "CA": "en", "GB": "en", "IE": "en", "AU": "en", "NZ": "en", "SG": "en",
    "DE": "de", "AT": "de", "FR": "fr", "BE": "fr", "IT": "it", "ES": "es", "MX": "es", "PT": "pt",
    "BR": "pt", "KR": "ko", "CN": "zh", "TW": "zh", "HK": "zh",
}

ZONE_OF_COUNTRY = {
    "JP": "Asia/Tokyo", "GB": "Europe/London", "IE": "Europe/Dublin", "DE": "Europe/Berlin",
    "AT": "Europe/Vienna", "FR": "Europe/Paris", "BE": "Europe/Brussels", "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam", "PL": "Europe/Warsaw", "SE": "Europe/Stockholm", "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki", "CZ": "Europe/Prague", "KR": "Asia/Seoul", "TW": "Asia/Taipei",
    "HK": "Asia/Hong_Kong", "CN": "Asia/Shanghai", "SG": "Asia/Singapore", "NZ": "Pacific/Auckland",
}

EURO_COUNTRIES = ("DE", "AT", "FR", "BE", "IT", "ES", "NL", "IE", "FI", "PT")
CURRENCY_OF_COUNTRY = {
    "JP": "JPY", "US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD", "NZ": "NZD", "SG": "SGD",
    "KR": "KRW", "CN": "CNY", "TW": "TWD", "HK": "HKD", "BR": "BRL", "MX": "MXN", "PL": "PLN",
    "SE": "SEK", "DK": "DKK", "CZ": "CZK", **{country: "EUR" for country in EURO_COUNTRIES},
}


def locale_of(country: str | None, given: str | None = None) -> str:
    """The language part of `given` (`pt-BR` → `pt`) if any, else the country's main language."""
    if given:
        return given.replace("_", "-").split("-")[0].lower()
    return LOCALE_OF_COUNTRY.get(country or "", "en")


def customer_market(country: str | None) -> dict:
    """`locale` and, for single-zone countries, `timezone` of a buyer in `country`."""
    values = {"locale": locale_of(country)}
    if country in ZONE_OF_COUNTRY:
        values["timezone"] = ZONE_OF_COUNTRY[country]
    return values
