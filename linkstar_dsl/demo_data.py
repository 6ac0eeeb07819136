"""The demo data set: a realistic, seeded order history for the example flows to run on.

`generate(con, orders=…, seed=…)` fills an opened store (`linkstar_dsl.store.open_store`) with:

* **customers** in Japan (about 35%, `ja`, Asia/Tokyo), the US (states with their time zones and
  area codes), Canada (`en`/`fr`, Toronto, Vancouver, …), Germany, France, Italy, Spain, the
  Netherlands, the UK, Australia, Korea, Taiwan and Singapore; names in the buyer's language;
  emails for nearly all (Amazon buyers often only through Amazon's relay address); phones in E.164
  with the country's calling code; WhatsApp numbers for many Europeans; LINE user ids for most
  Japanese buyers; tags (`vip`, `wholesale`, `newsletter`, `replenishable`, `gift_buyer`,
  `do_not_market`); birthdays for about 60%.  About 8% are prospects who never ordered.
* **orders**, 2–3 per buying customer on average, on Amazon (FBA or FBM, about 60/40), Rakuten
  (Japan only), Shopify and the own web shop, priced in the market's currency (JPY in whole yen,
  USD/CAD/EUR/GBP/AUD in cents; Korea, Taiwan and Singapore buy cross-border in USD).
* **order events**: ordered, paid, shipped, out_for_delivery, delivered, with realistic delays per
  country and fulfilment; a few percent of failed deliveries (delivered later, or returned to the
  sender), cancellations, return requests, returns, refunds, A-to-z claims (Amazon only), reviews
  (`reviewed`, with a `reviews` row; ratings skewed to 4–5, low for troubled orders) and negative
  seller feedback.
* **customer events**: cart_abandoned (with a `carts` row), signed_up, opened, clicked,
  unsubscribed (email, or an SMS STOP), complained, bounced, line_followed, line_unfollowed, and
  the two anchors flows trigger on: `last_order` (at the customer's latest order) and `birthday`
  (midnight local time on each birthday inside the period).
* **consents** per channel and purpose with their evidence: email marketing for about half of all
  customers (65–80% of those from our own shops depending on the market, few Amazon buyers;
  confirmed double opt-in for German and most EU sign-ups, implied consent from a purchase for
  part of Canada), SMS for transactional and service messages, written SMS
  marketing consent for a minority of US buyers, WhatsApp opt-ins, LINE friendship (channel `line`,
  purpose `any`) for every LINE user; revoked when the buyer unsubscribes, complains, replies STOP
  or blocks the LINE account.
* **suppressions**, one for each unsubscribe, complaint, hard bounce, STOP and LINE unfollow event.

Everything happens inside `[start, start + days]` (`start` defaults to 2026-07-01 00:00 UTC, not
today, so the data is the same whenever it is made); an order still on its way at the end is
simply not delivered yet.  Derived columns agree with the rows they come from: an order's status,
`shipped_at` and `delivered_at` with its events; a customer's `source` (the marketplace of the first
order), `first_order_at`, `last_order_at`, `order_count` (every order placed) and `lifetime_value`
(orders not canceled, refunded or returned) with the orders.

Addresses are synthetic: email domains are reserved example domains (`example.jp`, `example.com`,
`marketplace.amazon.example`), URLs point at `example.com`, and consent evidence uses the IP ranges
reserved for documentation.

Method: every value is a pure function of the seed, a name for the value (the "salt") and
the row's number, drawn with DuckDB's `hash()`.  Rows are produced with `range()` and `INSERT …
SELECT`, one chunk of customers at a time, so no Python code runs per row, the generator's working
tables are bounded by the chunk, and the same seed gives the same tables whatever the chunk size or
number of threads (for a given DuckDB version, whose `hash()` it relies on).  Ids grow as rows
are written, so the primary keys take each chunk cheaply; the events' `(event, occurred_at)`
indexes are dropped for the load and rebuilt once at the end.  While the chunks are written,
DuckDB's memory is capped (`WRITE_MEMORY`), so the blocks already written leave memory instead of
piling up in its cache; what still grows with the data is that final rebuild, as DuckDB builds an
index whole in memory.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import click

if TYPE_CHECKING:
    import duckdb

DEFAULT_ORDERS = 20_000
DEFAULT_SEED = 42
DEFAULT_DAYS = 120
DEFAULT_START = datetime(2026, 7, 1, tzinfo=UTC)
#: Order ids embed the order's number (at most 8 digits; Amazon numbers stay within 14).
MAX_ORDERS = 100_000_000
#: Customers generated per round; bounds the memory of the work tables, not the result.
CUSTOMERS_PER_CHUNK = 200_000
#: DuckDB's memory while the chunks are written: enough for one chunk's work tables, so the blocks
#: already written leave memory instead of piling up in DuckDB's cache as the data grows.
WRITE_MEMORY = "1GB"

#: Memory to allow per order for the primary keys' indexes, which stay in memory while the chunks
#: are written and grow with the store (writing 10M orders peaked at 5.1 GB resident).
KEY_INDEX_BYTES_PER_ORDER = 600


def write_memory(orders: int) -> str:
    """DuckDB's memory limit while `orders` orders are written: `WRITE_MEMORY`, or what the key
    indexes of that many orders need (6 GB at 10M) when that is more."""
    need = orders * KEY_INDEX_BYTES_PER_ORDER
    return WRITE_MEMORY if need <= _bytes(WRITE_MEMORY) else f"{need // 2**20}MiB"


#: Tables `generate` fills (the store's data tables), and the ledger it refuses to write next to.
FILLED_TABLES = ("customers", "orders", "reviews", "carts", "order_events", "customer_events",
                 "consents", "suppressions")
CHECKED_TABLES = FILLED_TABLES + ("ledger",)

DAY = 86_400
HOUR = 3_600

Progress = Callable[[str, int], None]


class StoreNotEmpty(Exception):
    """The store already holds data; `clear_store` first (the CLI's `--force`)."""


# ============================================================================ reference data


class Country(NamedTuple):
    code: str
    weight: int  # share of customers, per mille
    currency: str
    unit_price: float  # median price of one item, in the currency
    free_shipping_from: float
    shipping_fee: float
    vip_from: float  # lifetime value that earns the `vip` tag
    calling_code: str
    mobile_prefixes: tuple[str, ...]  # empty: the region's area codes (US, CA)
    subscriber_digits: int
    transit_days: float  # median days from shipping to delivery
    line_share: float  # buyers from our own shops who follow the LINE account
    line_share_amazon: float
    whatsapp_share: float
    email_marketing_share: float  # buyers from our own shops with email marketing consent
    double_opt_in_share: float
    sms_marketing_share: float
    sms_marketing_level: str
    amazon_prefixes: tuple[int, ...]
    carriers: tuple[str, ...]
    email_domains: tuple[str, ...]


_COM = ("example.com", "example.net", "example.org")
_EU_AMAZON = (302, 303, 304, 305, 306)

COUNTRIES = (
    Country("JP", 350, "JPY", 3480, 3980, 550, 60000, "81", ("90", "80", "70"), 8, 1.4, 0.80, 0.45, 0.02,
            0.78, 0.0, 0.05, "express", (249, 250, 503), ("yamato", "sagawa", "japan-post"),
            ("example.jp", "example.co.jp", "example.ne.jp")),
    Country("US", 250, "USD", 32, 35, 5.99, 500, "1", (), 7, 3.2, 0.01, 0.005, 0.06,
            0.80, 0.0, 0.16, "written", (111, 112, 113, 114), ("usps", "ups", "fedex"), _COM),
    Country("CA", 60, "CAD", 42, 50, 8.99, 650, "1", (), 7, 3.8, 0.01, 0.005, 0.08,
            0.75, 0.0, 0.06, "express", (701, 702), ("canada-post", "purolator", "ups"), _COM),
    Country("DE", 90, "EUR", 30, 29, 4.90, 450, "49",
            ("151", "152", "157", "160", "170", "171", "172", "175", "176", "177", "178", "179"), 8, 1.6,
            0.01, 0.005, 0.45, 0.68, 1.0, 0.03, "express", _EU_AMAZON, ("dhl", "dpd", "hermes"), _COM),
    Country("FR", 55, "EUR", 30, 29, 4.90, 450, "33", ("6", "7"), 8, 2.2, 0.01, 0.005, 0.35,
            0.70, 0.7, 0.03, "express", _EU_AMAZON, ("colissimo", "chronopost", "mondial-relay"), _COM),
    Country("IT", 40, "EUR", 30, 29, 4.90, 450, "39",
            ("320", "328", "333", "338", "340", "347", "349", "366", "380", "392"), 7, 2.8,
            0.01, 0.005, 0.65, 0.70, 0.7, 0.03, "express", _EU_AMAZON, ("poste-italiane", "brt", "gls"),
            _COM),
    Country("ES", 40, "EUR", 30, 29, 4.90, 450, "34", ("6", "7"), 8, 2.4, 0.01, 0.005, 0.70,
            0.70, 0.7, 0.03, "express", _EU_AMAZON, ("correos", "seur", "mrw"), _COM),
    Country("NL", 20, "EUR", 30, 29, 4.90, 450, "31", ("6",), 8, 1.3, 0.01, 0.005, 0.55,
            0.70, 0.7, 0.03, "express", _EU_AMAZON, ("postnl", "dhl"), _COM),
    Country("GB", 45, "GBP", 27, 25, 3.99, 400, "44", ("74", "75", "77", "78", "79"), 8, 1.8,
            0.01, 0.005, 0.35, 0.76, 0.3, 0.04, "express", (202, 203, 204, 205, 206),
            ("royal-mail", "evri", "dpd"), _COM),
    Country("AU", 20, "AUD", 48, 60, 9.95, 700, "61", ("4",), 8, 4.5, 0.01, 0.005, 0.15,
            0.72, 0.0, 0.04, "express", (250,), ("auspost", "startrack"), _COM),
    Country("KR", 10, "USD", 32, 35, 5.99, 500, "82", ("10",), 8, 7.0, 0.02, 0.01, 0.03,
            0.70, 0.0, 0.03, "express", (111,), ("dhl-express", "fedex"), _COM),
    Country("TW", 10, "USD", 32, 35, 5.99, 500, "886", ("9",), 8, 6.0, 0.55, 0.30, 0.05,
            0.70, 0.0, 0.03, "express", (111,), ("dhl-express", "fedex"), _COM),
    Country("SG", 10, "USD", 32, 35, 5.99, 500, "65", ("8", "9"), 7, 5.0, 0.02, 0.01, 0.60,
            0.70, 0.0, 0.03, "express", (111,), ("dhl-express", "fedex"), _COM),
)


class Region(NamedTuple):
    country: str
    code: str | None  # state or province; stored as the order's `state`
    weight: float  # within the country
    timezone: str
    area_codes: tuple[int, ...]  # US and Canadian phone numbers
    locale: str
    other_locale: str
    other_share: float


def _us(code: str, weight: float, zone: str, areas: tuple[int, ...], spanish: float = 0.05) -> Region:
    return Region("US", code, weight, f"America/{zone}", areas, "en", "es", spanish)


def _ca(code: str, weight: float, zone: str, areas: tuple[int, ...], french: float = 0.03) -> Region:
    if french > 0.5:
        return Region("CA", code, weight, f"America/{zone}", areas, "fr", "en", 1 - french)
    return Region("CA", code, weight, f"America/{zone}", areas, "en", "fr", french)


def _single(country: str, zone: str, locale: str, other: str = "en", share: float = 0.03) -> Region:
    return Region(country, None, 1, zone, (), locale, other, share)


REGIONS = (
    _single("JP", "Asia/Tokyo", "ja"),
    _us("CA", 118, "Los_Angeles", (213, 310, 415, 510, 619, 714, 818, 909), 0.15),
    _us("TX", 90, "Chicago", (214, 281, 512, 713, 817, 972), 0.18),
    _us("FL", 66, "New_York", (305, 407, 561, 727, 813, 904), 0.15),
    _us("NY", 60, "New_York", (212, 315, 516, 518, 585, 646, 718, 917), 0.08),
    _us("PA", 40, "New_York", (215, 267, 412, 610, 717)),
    _us("IL", 38, "Chicago", (312, 630, 708, 773, 847), 0.08),
    _us("OH", 36, "New_York", (216, 330, 513, 614)),
    _us("GA", 33, "New_York", (404, 470, 678, 770)),
    _us("NC", 32, "New_York", (336, 704, 910, 919)),
    _us("MI", 30, "Detroit", (248, 313, 517, 616)),
    _us("NJ", 28, "New_York", (201, 732, 908, 973), 0.08),
    _us("VA", 26, "New_York", (703, 757, 804)),
    _us("WA", 24, "Los_Angeles", (206, 253, 425, 509)),
    _us("AZ", 22, "Phoenix", (480, 520, 602), 0.12),
    _us("MA", 21, "New_York", (508, 617, 781, 978)),
    _us("TN", 21, "Chicago", (423, 615, 901)),
    _us("MD", 19, "New_York", (301, 410, 443)),
    _us("CO", 18, "Denver", (303, 719, 720, 970), 0.08),
    _us("MO", 18, "Chicago", (314, 417, 816)),
    _us("MN", 17, "Chicago", (612, 651, 763, 952)),
    _us("WI", 17, "Chicago", (262, 414, 608)),
    _us("OR", 13, "Los_Angeles", (503, 541, 971)),
    _us("OK", 12, "Chicago", (405, 918)),
    _us("CT", 11, "New_York", (203, 860)),
    _us("UT", 10, "Denver", (385, 801)),
    _us("NV", 10, "Los_Angeles", (702, 775), 0.12),
    _us("MS", 9, "Chicago", (601, 662)),
    _us("NM", 6, "Denver", (505, 575), 0.2),
    _us("RI", 3, "New_York", (401,)),
    _ca("ON", 39, "Toronto", (416, 519, 613, 647, 905), 0.04),
    _ca("QC", 23, "Toronto", (418, 438, 450, 514, 819), 0.8),
    _ca("BC", 14, "Vancouver", (236, 250, 604, 778), 0.02),
    _ca("AB", 12, "Edmonton", (403, 587, 780), 0.02),
    _ca("MB", 4, "Winnipeg", (204, 431), 0.03),
    _ca("NS", 3, "Halifax", (782, 902), 0.02),
    _single("DE", "Europe/Berlin", "de", "en", 0.05),
    _single("FR", "Europe/Paris", "fr", "en", 0.02),
    _single("IT", "Europe/Rome", "it", "en", 0.02),
    _single("ES", "Europe/Madrid", "es", "en", 0.02),
    _single("NL", "Europe/Amsterdam", "en", "de", 0.05),
    _single("GB", "Europe/London", "en", "en", 0.0),
    Region("AU", "NSW", 32, "Australia/Sydney", (), "en", "zh", 0.04),
    Region("AU", "VIC", 26, "Australia/Melbourne", (), "en", "zh", 0.04),
    Region("AU", "QLD", 20, "Australia/Brisbane", (), "en", "zh", 0.02),
    Region("AU", "WA", 11, "Australia/Perth", (), "en", "zh", 0.02),
    Region("AU", "SA", 7, "Australia/Adelaide", (), "en", "zh", 0.02),
    _single("KR", "Asia/Seoul", "ko", "en", 0.05),
    _single("TW", "Asia/Taipei", "zh", "en", 0.05),
    _single("SG", "Asia/Singapore", "en", "zh", 0.35),
)

_OWN_SHOPS = (("shopify", 340), ("web", 100))
#: Where each country's buyers order, per mille.
MARKETPLACES = {
    "JP": (("amazon", 480), ("rakuten", 220), ("shopify", 200), ("web", 100)),
    "US": (("amazon", 580), ("shopify", 320), ("web", 100)),
    "CA": (("amazon", 520), ("shopify", 380), ("web", 100)),
    "AU": (("amazon", 350), ("shopify", 500), ("web", 150)),
    "KR": (("shopify", 750), ("web", 250)),
    "TW": (("shopify", 750), ("web", 250)),
    "SG": (("shopify", 750), ("web", 250)),
}
for _code in ("DE", "FR", "IT", "ES", "NL", "GB"):
    MARKETPLACES[_code] = (("amazon", 560),) + _OWN_SHOPS

#: When people order, by local hour (relative weights): evenings, little at night.
ORDER_HOURS = (3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 5, 5, 5, 6, 6, 7, 8, 9, 8, 5)

#: (given names, family names) per name group, each as "native/latin" (latin for email addresses).
NAMES = {
    "ja": (("陽翔/haruto 蓮/ren 湊/minato 大翔/hiroto 悠真/yuma 翔太/shota 結衣/yui 陽葵/himari 美咲/misaki "
            "さくら/sakura 葵/aoi 凛/rin"),
           ("佐藤/sato 鈴木/suzuki 高橋/takahashi 田中/tanaka 伊藤/ito 渡辺/watanabe 山本/yamamoto "
            "中村/nakamura 小林/kobayashi 加藤/kato 吉田/yoshida 山田/yamada")),
    "en": ("James Mary Michael Jennifer David Linda Emily Daniel Olivia Ethan Sophia Noah",
           "Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Taylor Anderson Thomas"),
    "de": ("Lukas Anna Leon Marie Felix Sophie Jonas Lea Paul Hannah Maximilian Katharina",
           "Müller/mueller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter"),
    "fr": ("Gabriel Louise Léo/leo Emma Raphaël/raphael Jade Hugo Chloé/chloe Lucas Manon Arthur Camille",
           "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Lefèvre/lefevre"),
    "it": ("Leonardo Sofia Francesco Giulia Alessandro Aurora Lorenzo Alice Mattia Ginevra Andrea Chiara",
           "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo"),
    "es": (("Hugo Lucía/lucia Martín/martin Sofía/sofia Pablo María/maria Alejandro Paula Daniel Valeria "
            "Mateo Carmen"),
           ("García/garcia Rodríguez/rodriguez González/gonzalez Fernández/fernandez López/lopez "
            "Martínez/martinez Sánchez/sanchez Pérez/perez Gómez/gomez Martín/martin Jiménez/jimenez Ruiz")),
    "ko": (("민준/minjun 서연/seoyeon 도윤/doyoon 지우/jiwoo 시우/siwoo 하은/haeun 예준/yejun 수아/sua "
            "주원/juwon 지민/jimin 하준/hajun 서윤/seoyun"),
           "김/kim 이/lee 박/park 최/choi 정/jung 강/kang 조/cho 윤/yoon 장/jang 임/lim 한/han 오/oh"),
    "zh": (("志明/chihming 淑芬/shufen 家豪/chiahao 雅婷/yating 冠宇/kuanyu 怡君/yichun 俊傑/chunchieh "
            "佳穎/chiaying 承恩/chengen 欣怡/hsinyi 宇軒/yuhsuan 詩涵/shihhan"),
           "陳/chen 林/lin 黃/huang 張/chang 李/lee 王/wang 吳/wu 劉/liu 蔡/tsai 楊/yang 許/hsu 鄭/cheng"),
    "nl": ("Daan Emma Sem Julia Lucas Mila Levi Tess Finn Sophie Milan Zoë/zoe",
           ("de_Jong/dejong Jansen de_Vries/devries van_den_Berg/vandenberg van_Dijk/vandijk Bakker Janssen "
            "Visser Smit Meijer de_Boer/deboer Mulder")),
}
#: Name groups written family name first.
FAMILY_FIRST = {"ja": " ", "ko": "", "zh": ""}
NAMES_PER_LIST = 12

#: Review texts per language: (good, middling, bad), two of each.
REVIEW_TEXTS = {
    "ja": (("とても良い商品でした。また購入したいです。", "梱包も丁寧で、すぐに届きました。"),
           ("普通です。値段相応だと思います。", "悪くはないですが、説明と少し違いました。"),
           ("届いた商品が破損していました。", "サイズが合わず、対応も遅かったです。")),
    "en": (("Great quality, exactly as described.", "Fast shipping and well packed. Would buy again."),
           ("It's okay for the price.", "Decent, but smaller than I expected."),
           ("Arrived damaged and support was slow.", "Stopped working after a week.")),
    "de": (("Super Qualität, genau wie beschrieben.", "Schnelle Lieferung, gut verpackt."),
           ("Für den Preis in Ordnung.", "Ganz okay, aber kleiner als erwartet."),
           ("Kam beschädigt an.", "Nach einer Woche kaputt, sehr enttäuscht.")),
    "fr": (("Très bonne qualité, conforme à la description.", "Livraison rapide et bien emballé."),
           ("Correct pour le prix.", "Pas mal, mais plus petit que prévu."),
           ("Reçu endommagé.", "Ne fonctionne plus après une semaine.")),
    "es": (("Muy buena calidad, tal como se describe.", "Envío rápido y bien embalado."),
           ("Está bien por el precio.", "Correcto, pero más pequeño de lo esperado."),
           ("Llegó dañado.", "Dejó de funcionar a la semana.")),
    "it": (("Ottima qualità, come descritto.", "Spedizione veloce e imballaggio curato."),
           ("Nella media per il prezzo.", "Discreto, ma più piccolo del previsto."),
           ("Arrivato danneggiato.", "Ha smesso di funzionare dopo una settimana.")),
    "zh": (("品質很好，和描述一樣。", "出貨很快，包裝完整。"),
           ("以這個價格來說還可以。", "還不錯，但比想像中小。"),
           ("收到時已經損壞。", "用了一個星期就壞了。")),
    "ko": (("품질이 아주 좋아요. 설명과 똑같아요.", "배송이 빠르고 포장도 꼼꼼해요."),
           ("가격 대비 괜찮아요.", "나쁘지 않지만 생각보다 작아요."),
           ("파손된 상태로 도착했어요.", "일주일 만에 고장 났어요.")),
}

#: Browsers recorded as consent evidence.
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 Chrome/137.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/137.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.5 Safari/605.1.15",
)
#: Consent wording shown at collection time, per source (kept as evidence).
CONSENT_TEXTS = {
    "checkout_checkbox": "Email me news and offers. I can unsubscribe at any time.",
    "signup_form": "Subscribe to our newsletter: news and offers by email, unsubscribe at any time.",
    "purchase": "Existing business relationship: purchase (CASL s. 10(9)(a)).",
    "checkout_phone": "Phone number given at checkout for order and delivery updates.",
    "checkout_sms_checkbox": ("By checking this box you agree to receive recurring automated marketing text "
                              "messages at this number. Consent is not a condition of purchase. Msg & data "
                              "rates may apply. Reply STOP to cancel."),
    "sms_keyword": ("Texted JOIN to our short code and confirmed with YES: recurring automated marketing "
                    "texts, consent not required to buy, reply STOP to cancel."),
    "checkout_whatsapp_optin": "Send me order updates on WhatsApp.",
    "whatsapp_marketing_optin": "Send me offers on WhatsApp. Reply STOP to opt out.",
    "line_follow": "Added the official LINE account as a friend.",
}


# ========================================================================== random values in SQL


class Dice:
    """SQL expressions for pseudo-random values: pure functions of (seed, salt, key).

    `salt` names the value (so different values of one row are independent) and `key` is a SQL
    expression for the row's number.  Salts are written in this module, never taken from input.

    Each (seed, salt) pair becomes one 64-bit stream constant, computed here; a value is DuckDB's
    `hash()` of the key XOR that constant.  (DuckDB's several-argument `hash(a, b, c)` combines the
    arguments' hashes so that values for different salts come out correlated.)
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def stream(self, salt: str) -> int:
        digest = hashlib.sha256(f"{self.seed}/{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def bits(self, salt: str, key: str) -> str:
        return f"hash(xor(({key})::BIGINT, {self.stream(salt)}))"

    def unit(self, salt: str, key: str) -> str:
        """Uniform in [0, 1), from 53 random bits."""
        return f"(({self.bits(salt, key)} >> 11)::DOUBLE / 9007199254740992.0)"

    def below(self, salt: str, key: str, n: int | str) -> str:
        """Uniform integer in [0, n)."""
        return f"({self.bits(salt, key)} % ({n})::UBIGINT)::BIGINT"

    def chance(self, salt: str, key: str, share: float | str) -> str:
        return f"({self.unit(salt, key)} < {share})"

    def normal(self, salt: str, key: str) -> str:
        """Standard normal (Box–Muller)."""
        radius = f"sqrt(-2.0 * ln(1.0 - {self.unit(salt + '.r', key)}))"
        return f"({radius} * cos(2.0 * pi() * {self.unit(salt + '.a', key)}))"

    def lognormal(self, salt: str, key: str, median: float | str, sigma: float) -> str:
        return f"(({median}) * exp({sigma} * {self.normal(salt, key)}))"

    def weighted(self, salt: str, key: str, choices: tuple[tuple[str | int, float], ...],
                 rest: str | int) -> str:
        """One of `choices` (value, share), else `rest`; values are SQL literals or numbers."""
        draw = self.unit(salt, key)
        cases, upto = [], 0.0
        for value, share in choices:
            upto += share
            cases.append(f"WHEN {draw} < {upto:.6f} THEN {_literal(value)}")
        return f"(CASE {' '.join(cases)} ELSE {_literal(rest)} END)"

    def element(self, salt: str, key: str, items: str) -> str:
        """An element of the SQL list `items`."""
        return f"{items}[1 + {self.below(salt, key, f'greatest(len({items}), 1)')}]"


def _literal(value: str | float) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


# ============================================================================ parameters


class Plan(NamedTuple):
    """What to generate, validated; times as epoch seconds."""

    orders: int
    seed: int
    start: int
    end: int
    days: int


def make_plan(orders: int, seed: int, start: datetime | None, days: int) -> Plan:
    if isinstance(orders, bool) or not isinstance(orders, int) or not 1 <= orders <= MAX_ORDERS:
        raise ValueError(f"orders must be a whole number from 1 to {MAX_ORDERS:,}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -2**63 <= seed < 2**63:
        raise ValueError("seed must be a whole number that fits in 64 bits")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise ValueError("days must be a whole number from 1 to 3660")
    start = DEFAULT_START if start is None else start
    if not isinstance(start, datetime):
        raise TypeError("start must be a datetime")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    first = int(start.timestamp())
    return Plan(orders, seed, first, first + days * DAY, days)


# ================================================================================ public API


def generate(con: duckdb.DuckDBPyConnection, *, orders: int = DEFAULT_ORDERS, seed: int = DEFAULT_SEED,
             start: datetime | None = None, days: int = DEFAULT_DAYS,
             progress: Progress | None = None) -> dict[str, int]:
    """Fill an empty store with the demo data set; return the number of rows per table.

    `progress(stage, count)`, when given, is called as the work advances: ("orders", orders
    written so far) after each chunk of customers, and ("indexes", 0) before the store's event
    indexes are rebuilt.  Raises `StoreNotEmpty` when the store already holds data, `ValueError`
    for arguments out of range.  Each chunk is committed as it is written: a run that is
    interrupted leaves the chunks done so far, and `clear_store` starts over.
    """
    plan = make_plan(orders, seed, start, days)
    counts = row_counts(con)
    if any(counts.values()):
        raise StoreNotEmpty(_describe(counts))
    report = progress or _no_progress
    dice = Dice(plan.seed)
    indexes = _secondary_indexes(con)
    memory = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    try:
        _create_reference_tables(con, plan)
        _drop_indexes(con, indexes)
        _cap_memory(con, write_memory(plan.orders))
        written = first_customer = 0
        while written < plan.orders:
            written = _write_chunk(con, plan, dice, first_customer, written, ceiling=memory)
            first_customer += CUSTOMERS_PER_CHUNK
            report("orders", written)
    finally:
        # Building an index needs it whole in memory: the store's own limit applies again.
        con.execute(f"SET memory_limit = {_literal(memory)}")
        report("indexes", 0)
        _restore_indexes(con, indexes)
        _drop_work_tables(con)
    counts = row_counts(con)
    return {table: counts[table] for table in FILLED_TABLES}


def _no_progress(stage: str, count: int) -> None:
    pass


def _write_chunk(con: duckdb.DuckDBPyConnection, plan: Plan, dice: Dice, first_customer: int,
                 orders_before: int, *, ceiling: str) -> int:
    """`_generate_chunk`, written again with twice the memory when DuckDB runs out.

    The primary keys' indexes stay in memory and grow with the store (at 10M orders they outgrow
    `WRITE_MEMORY`), so the cap rises as they need it, never above the store's own limit
    (`ceiling`).  A chunk is one transaction and its values are pure functions of the seed and
    the row numbers, so writing it again writes the same rows.
    """
    import duckdb

    while True:
        try:
            return _generate_chunk(con, plan, dice, first_customer, orders_before)
        except duckdb.OutOfMemoryException:
            # Only a statement that ran out is written again: running out at COMMIT (a
            # TransactionException) may leave part of the chunk behind, so that stops the run.
            now = _bytes(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
            if now >= _bytes(ceiling):
                raise
            raised = min(now * 2, _bytes(ceiling))
            con.execute(f"SET memory_limit = {_literal(f'{int(raised // 2**20)}MiB')}")


def _cap_memory(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Lower DuckDB's memory limit to `limit`, unless it is lower already."""
    import duckdb

    now = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    if _bytes(limit) < _bytes(now):
        try:
            con.execute(f"SET memory_limit = {_literal(limit)}")
        except duckdb.OutOfMemoryException:
            pass  # more than `limit` is in use already (a large store's key indexes): keep the limit


def _bytes(size: str) -> float:
    """'1GB', '18.6 GiB' → bytes."""
    number, unit = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?i?B)\s*", size).groups()
    power = " KMGT".index(unit[0] if unit[0] != "B" else " ")
    return float(number) * (1024 if "i" in unit else 1000) ** power


def row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per data table and in the ledger."""
    return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in CHECKED_TABLES}


def clear_store(con: duckdb.DuckDBPyConnection) -> None:
    """Delete every row of the data tables and the ledger (the schema stays)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in CHECKED_TABLES:
            con.execute(f"DELETE FROM {table}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")


def _describe(counts: dict[str, int]) -> str:
    filled = [f"{rows:,} {table}" for table, rows in counts.items() if rows]
    return "the store already holds data (" + ", ".join(filled) + ")"


# ============================================================================ store indexes

#: Rows are written customer by customer and order by order, with ids that grow as they go, so
#: indexes led by these columns take new rows cheaply.  Any other index (the events' `(event,
#: occurred_at)`) is dropped for the load and rebuilt once at the end, which is much faster than
#: maintaining it chunk by chunk.
ROW_ORDER_COLUMNS = ("id", "order_id", "customer_id")


def _secondary_indexes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the indexes on the tables we fill that the load should skip."""
    placeholders = ", ".join("?" for _ in FILLED_TABLES)
    rows = con.execute(
        f"SELECT index_name, expressions, sql FROM duckdb_indexes() WHERE schema_name = 'main' "
        f"AND table_name IN ({placeholders}) AND sql IS NOT NULL ORDER BY index_name",
        list(FILLED_TABLES)).fetchall()
    return [(name, sql) for name, expressions, sql in rows
            if _leading_column(expressions) not in ROW_ORDER_COLUMNS]


def _leading_column(expressions: str) -> str:
    """The first key of an index, from `duckdb_indexes().expressions` (e.g. `['"event"', occurred_at]`)."""
    return expressions.strip("[]").split(",")[0].strip().strip("'\"")


def _drop_indexes(con: duckdb.DuckDBPyConnection, indexes: list[tuple[str, str]]) -> None:
    for name, _ in indexes:
        con.execute(f'DROP INDEX IF EXISTS "{name}"')


def _restore_indexes(con: duckdb.DuckDBPyConnection, indexes: list[tuple[str, str]]) -> None:
    """Recreate the dropped indexes, on one thread: DuckDB builds an index faster that way than by
    merging the trees of several threads."""
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        for name, sql in indexes:
            exists = con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?",
                                 [name]).fetchone()[0]
            if not exists:
                con.execute(sql)
    finally:
        con.execute(f"SET threads = {int(threads)}")


# ========================================================================= reference tables


def _create_reference_tables(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    _create_table(con, "_demo_country",
                  "code VARCHAR, ord INT, weight DOUBLE, currency VARCHAR, unit_price DOUBLE, "
                  "free_shipping_from DOUBLE, shipping_fee DOUBLE, vip_from DOUBLE, calling_code VARCHAR, "
                  "mobile_prefixes VARCHAR[], subscriber_digits INT, transit_days DOUBLE, line_share DOUBLE, "
                  "line_share_amazon DOUBLE, whatsapp_share DOUBLE, email_marketing_share DOUBLE, "
                  "double_opt_in_share DOUBLE, sms_marketing_share DOUBLE, sms_marketing_level VARCHAR, "
                  "amazon_prefixes INT[], carriers VARCHAR[], email_domains VARCHAR[]",
                  [(c.code, n, *c[1:8], list(c.mobile_prefixes), *c[9:18], list(c.amazon_prefixes),
                    list(c.carriers), list(c.email_domains)) for n, c in enumerate(COUNTRIES)])
    _create_table(con, "_demo_region",
                  "country VARCHAR, ord INT, region VARCHAR, weight DOUBLE, tz VARCHAR, area_codes INT[], "
                  "locale VARCHAR, other_locale VARCHAR, other_share DOUBLE",
                  [(r.country, n, r.code, r.weight, r.timezone, list(r.area_codes), r.locale, r.other_locale,
                    r.other_share) for n, r in enumerate(REGIONS)])
    _create_table(con, "_demo_marketplace", "country VARCHAR, ord INT, marketplace VARCHAR, weight DOUBLE",
                  [(country, n, name, weight) for country, choices in MARKETPLACES.items()
                   for n, (name, weight) in enumerate(choices)])
    _create_table(con, "_demo_hour", "grp VARCHAR, ord INT, hour INT, weight DOUBLE",
                  [("all", hour, hour, weight) for hour, weight in enumerate(ORDER_HOURS)])
    _create_table(con, "_demo_name", "grp VARCHAR, kind VARCHAR, idx INT, native VARCHAR, latin VARCHAR",
                  list(_name_rows()))
    _create_table(con, "_demo_review_text", "locale VARCHAR, band INT, idx INT, text VARCHAR",
                  [(locale, band, idx, text) for locale, bands in REVIEW_TEXTS.items()
                   for band, texts in enumerate(bands) for idx, text in enumerate(texts)])
    _create_table(con, "_demo_consent_text", "source VARCHAR, text VARCHAR", list(CONSENT_TEXTS.items()))
    _expand_to_slots(con, "_demo_country_slot", "_demo_country", "'all'")
    _expand_to_slots(con, "_demo_region_slot", "_demo_region", "country")
    _expand_to_slots(con, "_demo_marketplace_slot", "_demo_marketplace", "country")
    _expand_to_slots(con, "_demo_hour_slot", "_demo_hour", "grp")
    _create_local_days(con, plan)


def _name_rows():
    for group, lists in NAMES.items():
        for kind, names in zip(("given", "family"), lists, strict=True):
            entries = names.split()
            assert len(entries) == NAMES_PER_LIST, (group, kind)
            for idx, entry in enumerate(entries):
                native, _, latin = entry.partition("/")
                native = native.replace("_", " ")
                yield group, kind, idx, native, (latin or native.replace(" ", "")).lower()


def _create_table(con: duckdb.DuckDBPyConnection, name: str, columns: str, rows: list[tuple]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
    width = len(rows[0])
    values = ", ".join("(" + ", ".join("?" for _ in range(width)) + ")" for _ in rows)
    con.execute(f"INSERT INTO {name} VALUES {values}", [value for row in rows for value in row])


def _expand_to_slots(con: duckdb.DuckDBPyConnection, name: str, source: str, group: str) -> None:
    """One row per mille of each group's weight: a weighted choice becomes an equi-join on `slot`."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        WITH shares AS (
            SELECT *, {group} AS slot_group,
                   sum(weight) OVER (PARTITION BY {group} ORDER BY ord) AS upto,
                   sum(weight) OVER (PARTITION BY {group}) AS total
            FROM {source})
        SELECT * EXCLUDE (upto, total, slot_group),
               unnest(range(floor((upto - weight) * 1000 / total)::BIGINT,
                            floor(upto * 1000 / total)::BIGINT)) AS slot
        FROM shares""")


def _create_local_days(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Local midnight (epoch seconds) per time zone and day of the period: local times without
    converting time zones row by row (slow), correct across daylight-saving changes."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _demo_local_day AS
        WITH zones AS (
            SELECT DISTINCT tz, CAST(timezone(tz, to_timestamp({plan.start})) AS DATE) AS first_date
            FROM _demo_region)
        SELECT tz, day, first_date + day::INT AS local_date,
               epoch(timezone(tz, (first_date + day::INT)::TIMESTAMP))::BIGINT AS midnight
        FROM zones, range(-2, {plan.days + 400}) r(day)""")


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    names = con.execute("SELECT table_name FROM duckdb_tables() "
                        "WHERE temporary AND table_name LIKE '\\_demo\\_%' ESCAPE '\\'").fetchall()
    for (name,) in names:
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")


# ============================================================================ one chunk


def _generate_chunk(con: duckdb.DuckDBPyConnection, plan: Plan, dice: Dice, first_customer: int,
                    orders_before: int) -> int:
    """Generate customers [first_customer, first_customer + CUSTOMERS_PER_CHUNK) with their orders
    (numbered from `orders_before`) and everything about them; return the orders written so far."""
    _plan_people(con, plan, dice, first_customer, orders_before)
    written = con.execute(f"SELECT {orders_before} + coalesce(sum(k), 0) FROM _demo_people").fetchone()[0]
    _plan_profiles(con, plan, dice)
    _plan_orders(con, plan, dice)
    _plan_customers(con, plan, dice)
    _plan_carts(con, plan, dice)
    con.execute("BEGIN TRANSACTION")
    try:
        _insert_customers(con, plan, dice)
        _insert_orders(con, plan)
        _insert_reviews(con, plan, dice)
        _insert_order_events(con, plan)
        _insert_carts(con, plan)
        _insert_customer_events(con, plan, dice)
        _insert_consents(con, plan, dice)
        _insert_suppressions(con, plan, dice)
        con.execute("COMMIT")
    except Exception:
        import duckdb

        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass  # a COMMIT that failed has ended the transaction already
        raise
    return written


# --------------------------------------------------------------------------- who and how many


#: Orders per buying customer: (count, share); the rest order 20 times.  Mean about 2.65.
ORDERS_PER_CUSTOMER = ((1, 0.35), (2, 0.25), (3, 0.17), (4, 0.10), (5, 0.06), (6, 0.035), (8, 0.02),
                       (12, 0.01))
PROSPECT_SHARE = 0.08


def _plan_people(con, plan: Plan, dice: Dice, first_customer: int, orders_before: int) -> None:
    """Customer numbers, each with its order count `k` and the number of its first order."""
    c = "c"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _demo_people AS
        WITH drawn AS (
            SELECT c, CASE WHEN {dice.chance('prospect', c, PROSPECT_SHARE)} THEN 0
                           ELSE {dice.weighted('orders', c, ORDERS_PER_CUSTOMER, 20)} END AS wanted
            FROM range({first_customer}, {first_customer + CUSTOMERS_PER_CHUNK}) r(c)),
        numbered AS (
            SELECT c, wanted,
                   ({orders_before} + sum(wanted) OVER (ORDER BY c ROWS UNBOUNDED PRECEDING) - wanted)::BIGINT
                       AS first_order
            FROM drawn)
        SELECT c, first_order, least(wanted, {plan.orders} - first_order)::BIGINT AS k
        FROM numbered WHERE first_order < {plan.orders}""")


def _plan_profiles(con, plan: Plan, dice: Dice) -> None:
    """Where each customer lives, their language, home marketplace and ordering rhythm."""
    c = "p.c"
    gap = f"least({dice.lognormal('gap', c, 18, 0.6)}, {plan.days} * 0.95 / greatest(p.k - 1, 1))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _demo_profile AS
        WITH located AS (
            SELECT p.*, 'cus_' || lpad(p.c::VARCHAR, 9, '0') AS customer_id,
                   cs.code AS country, rs.region, rs.tz, rs.area_codes,
                   CASE WHEN {dice.chance('locale', c, 'rs.other_share')} THEN rs.other_locale
                       ELSE rs.locale END
                       AS locale,
                   ms.marketplace AS home_marketplace,
                   {dice.chance('wholesale', c, 0.01)} AS wholesale,
                   {gap} AS gap
            FROM _demo_people p
            JOIN _demo_country_slot cs ON cs.slot = {dice.below('country', c, 1000)}
            JOIN _demo_region_slot rs ON rs.country = cs.code AND rs.slot = {dice.below('region', c, 1000)}
            JOIN _demo_marketplace_slot ms ON ms.country = cs.code
                AND ms.slot = {dice.below('home', c, 1000)})
        SELECT *, {dice.unit('first_day', 'c')} * ({plan.days} - gap * greatest(k - 1, 0)) AS first_day
        FROM located""")


# ------------------------------------------------------------------------------------ orders


#: Amazon order numbers grow with the order's number (cheap to index) with random-looking low digits.
AMAZON_NUMBERS_FROM = 40_000_000_000_000
AMAZON_NUMBER_STRIDE = 7_919


def _plan_orders(con, plan: Plan, dice: Dice) -> None:
    """Every order of the chunk with the instant of each thing that happens to it (epoch seconds,
    possibly after the end of the period: those events are left out when the rows are written)."""
    stages = (_order_timing(plan, dice), _order_pricing(plan, dice), _order_fate(dice),
              _order_delivery(plan, dice), _order_aftermath(dice))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _demo_order AS WITH {', '.join(stages)}\n{_order_rows(dice)}")


def _order_timing(plan: Plan, dice: Dice) -> str:
    """When each order is placed: the day follows the customer's rhythm, the hour follows ORDER_HOURS in
    local time."""
    i = "i"
    u, below, chance = dice.unit, dice.below, dice.chance
    return f"""
        base AS (
            SELECT p.c, p.customer_id, p.country, p.region, p.tz, p.locale, p.home_marketplace, p.wholesale,
                   p.first_order + r.j AS i, r.j, p.gap, p.first_day
            FROM _demo_profile p, range(p.k) r(j)),
        drawn AS (
            SELECT b.*,
                   CASE WHEN b.j = 0 OR {chance('stay', i, 0.8)} THEN b.home_marketplace
                       ELSE ms.marketplace END
                       AS marketplace,
                   greatest(0, least({plan.days}, floor(b.first_day + b.j * b.gap
                       + ({u('jitter', i)} - 0.5) * 0.6 * b.gap)))::BIGINT AS placed_day,
                   hs.hour * {HOUR} + {below('second', i, HOUR)} AS placed_second
            FROM base b
            JOIN _demo_marketplace_slot ms ON ms.country = b.country
                AND ms.slot = {below('marketplace', i, 1000)}
            JOIN _demo_hour_slot hs ON hs.slot = {below('hour', i, 1000)}),
        placed AS (
            SELECT d.*, ld.midnight + d.placed_second AS wall,
                   CASE WHEN ld.midnight + d.placed_second < {plan.start} THEN 1
                        WHEN ld.midnight + d.placed_second > {plan.end} THEN -1 ELSE 0 END AS shift,
                   ld.local_date
            FROM drawn d JOIN _demo_local_day ld ON ld.tz = d.tz AND ld.day = d.placed_day)
"""


#: Items per order (count, share); the rest buy 6.  Wholesale buyers order 12 to 60.
ITEMS_PER_ORDER = ((1, 0.62), (2, 0.22), (3, 0.09), (4, 0.04), (5, 0.02))


def _order_pricing(plan: Plan, dice: Dice) -> str:
    """Fulfilment, items and unit price, in the market's currency."""
    i = "i"
    below, chance = dice.below, dice.chance
    return f"""
        priced AS (
            SELECT pl.* EXCLUDE (wall, local_date),
                   greatest({plan.start}, least({plan.end} - 60, pl.wall + pl.shift * {DAY})) AS placed_at,
                   pl.placed_day + pl.shift AS order_day, pl.local_date + pl.shift::INT AS placed_date,
                   co.currency, co.transit_days, co.carriers, co.amazon_prefixes,
                   CASE WHEN pl.marketplace <> 'amazon' THEN 'merchant'
                        WHEN {chance('fba', i, 0.6)} THEN 'FBA' ELSE 'FBM' END AS fulfillment,
                   CASE WHEN pl.wholesale THEN 12 + {below('items', i, 49)}
                        ELSE {dice.weighted('items', i, ITEMS_PER_ORDER, 6)}
                   END AS item_count,
                   CASE WHEN co.currency = 'JPY'
                        THEN greatest(480, round({dice.lognormal('price', i, 'co.unit_price', 0.55)}
                                                 * CASE WHEN pl.wholesale THEN 0.6 ELSE 1 END / 100)
                                           * 100 - 20)
                        ELSE greatest(4.99, round({dice.lognormal('price', i, 'co.unit_price', 0.55)}
                                                  * CASE WHEN pl.wholesale THEN 0.6 ELSE 1 END) - 0.01)
                   END::DECIMAL(18, 2) AS unit_price,
                   co.free_shipping_from, co.shipping_fee::DECIMAL(18, 2) AS shipping_fee
            FROM placed pl JOIN _demo_country co ON co.code = pl.country)
"""


def _order_fate(dice: Dice) -> str:
    """What will happen to the order: total, cancellation, payment delay, handling, transit time,
    a failed delivery, and the draw that decides returns, refunds and claims."""
    failure_rate = "CASE WHEN pr.fulfillment = 'FBA' THEN 0.02 ELSE 0.05 END"
    i = "i"
    u, below, chance = dice.unit, dice.below, dice.chance
    return f"""
        drawn_life AS (
            SELECT pr.* EXCLUDE (free_shipping_from, shipping_fee, unit_price),
                   pr.unit_price * pr.item_count
                     + CASE WHEN pr.marketplace <> 'amazon'
                             AND pr.unit_price * pr.item_count < pr.free_shipping_from
                            THEN pr.shipping_fee ELSE 0 END AS total,
                   {chance('canceled', i, 0.03)} AS canceled,
                   {chance('canceled_unpaid', i, 0.5)} AS canceled_unpaid,
                   CASE WHEN pr.country = 'JP' AND pr.marketplace <> 'amazon' AND {chance('konbini', i, 0.12)}
                        THEN 3 * {HOUR} + {below('pay', i, 57 * HOUR)} ELSE 30 + {below('pay', i, 600)}
                   END AS pay_delay,
                   CASE WHEN pr.fulfillment = 'FBA' THEN 4 * {HOUR} + {below('handling', i, 20 * HOUR)}
                        WHEN pr.country = 'JP' THEN 3 * {HOUR} + {below('handling', i, 30 * HOUR)}
                        ELSE 8 * {HOUR} + least(6 * {DAY}, {dice.lognormal('handling', i, DAY, 0.5)})::BIGINT
                   END AS handling,
                   greatest(1, round({dice.lognormal('transit', i, 'pr.transit_days', 0.35)}
                                     * CASE WHEN pr.fulfillment = 'FBA' THEN 0.75 ELSE 1 END))::BIGINT
                     + CASE WHEN {chance('late', i, 0.03)} THEN 4 + {below('late_days', i, 9)} ELSE 0 END
                       AS transit,
                   {chance('failed', i, failure_rate)} AS failed,
                   {chance('sent_back', i, 0.22)} AS sent_back,
                   {u('outcome', i)} AS outcome_draw,
                   {chance('gift', i, 0.04)} AS gift
            FROM priced pr)
"""


def _order_delivery(plan: Plan, dice: Dice) -> str:
    """Payment, shipping, the delivery attempt (daytime, local), redelivery or return to sender."""
    i = "i"
    u, below = dice.unit, dice.below
    return f"""
        shipped AS (
            SELECT dl.*,
                   CASE WHEN NOT (dl.canceled AND dl.canceled_unpaid)
                        THEN dl.placed_at + dl.pay_delay END AS paid_at,
                   CASE WHEN NOT dl.canceled THEN dl.placed_at + dl.pay_delay + dl.handling END AS shipped_at,
                   CASE WHEN NOT dl.canceled
                        THEN least(dl.order_day + (dl.placed_second + dl.pay_delay + dl.handling) // {DAY}
                            + dl.transit,
                                   {plan.days + 390}) END AS attempt_day
            FROM drawn_life dl),
        attempted AS (
            SELECT s.*,
                   greatest(s.shipped_at + 3 * {HOUR}, ld.midnight + 9 * {HOUR}
                       + {below('attempt', i, 11 * HOUR)})
                       AS attempt_at,
                   CASE WHEN s.canceled THEN NULL
                        WHEN s.failed AND s.sent_back THEN NULL
                        WHEN s.outcome_draw < CASE WHEN s.marketplace = 'amazon' THEN 0.07 ELSE 0.045 END
                             THEN 'return'
                        WHEN s.outcome_draw < CASE WHEN s.marketplace = 'amazon' THEN 0.09 ELSE 0.065 END
                             THEN 'partial_refund'
                        WHEN s.marketplace = 'amazon' AND s.outcome_draw < 0.099 THEN 'a_to_z'
                   END AS outcome
            FROM shipped s LEFT JOIN _demo_local_day ld ON ld.tz = s.tz AND ld.day = s.attempt_day),
        delivered AS (
            SELECT a.*,
                   CASE WHEN a.attempt_at - 3 * {HOUR} > a.shipped_at
                        THEN a.attempt_at - {HOUR} - {below('out_for_delivery', i, 2 * HOUR)}
                        ELSE a.shipped_at + (a.attempt_at - a.shipped_at) // 2 END AS out_for_delivery_at,
                   CASE WHEN a.failed THEN a.attempt_at END AS failed_at,
                   CASE WHEN a.canceled OR (a.failed AND a.sent_back) THEN NULL
                        WHEN a.failed THEN a.attempt_at + {DAY} * (1 + {below('redelivery', i, 3)})
                                           + {below('redelivery_time', i, 4 * HOUR)} - 2 * {HOUR}
                        ELSE a.attempt_at END AS delivered_at,
                   CASE WHEN a.canceled THEN a.placed_at + CASE WHEN a.canceled_unpaid THEN 0
                       ELSE a.pay_delay END
                                             + 600 + {below('cancel_at', i, 20 * HOUR)} END AS canceled_at,
                   {u('return_path', i)} AS return_path
            FROM attempted a)
"""


def _order_aftermath(dice: Dice) -> str:
    """After delivery: return requests, returns, refunds, A-to-z claims and reviews (ratings lean low
    for troubled orders)."""
    review_rate = "CASE d.marketplace WHEN 'amazon' THEN 0.08 WHEN 'rakuten' THEN 0.12 ELSE 0.15 END"
    i = "i"
    below, chance = dice.below, dice.chance
    good_ratings = ((5, 0.60), (4, 0.20), (3, 0.08), (2, 0.04))
    troubled_ratings = ((1, 0.45), (2, 0.20), (3, 0.15), (4, 0.10))
    return f"""
        after_delivery AS (
            SELECT d.*,
                   CASE WHEN d.outcome = 'return'
                        THEN d.delivered_at + 6 * {HOUR}
                             + least(25 * {DAY},
                                     {dice.lognormal('return_requested', i, 4 * DAY, 0.7)})::BIGINT
                   END AS return_requested_at,
                   CASE WHEN d.outcome = 'a_to_z' THEN d.delivered_at + 3 * {DAY}
                       + {below('claim', i, 22 * DAY)}
                   END AS claim_at,
                   CASE WHEN d.delivered_at IS NOT NULL
                         AND {chance('review', i, review_rate)}
                        THEN d.delivered_at + 2 * {HOUR}
                             + least(60 * {DAY}, {dice.lognormal('review_at', i, 5 * DAY, 0.8)})::BIGINT
                   END AS reviewed_at
            FROM delivered d),
        settled AS (
            SELECT ad.*,
                   CASE WHEN ad.failed AND ad.sent_back AND NOT ad.canceled
                        THEN ad.attempt_at + {DAY} * (8 + {below('sent_back_days', i, 8)})
                            + {below('sent_back_time', i, DAY)}
                        WHEN ad.outcome = 'return' AND ad.return_path < 0.72
                        THEN ad.return_requested_at + {DAY} * (3 + {below('return_days', i, 8)})
                             + {below('return_time', i, DAY)}
                   END AS returned_at
            FROM after_delivery ad),
        refunded AS (
            SELECT st.*,
                   CASE WHEN st.canceled AND NOT st.canceled_unpaid
                        THEN st.canceled_at + {HOUR} + {below('refund', i, 47 * HOUR)}
                        WHEN st.returned_at IS NOT NULL
                        THEN st.returned_at + 12 * {HOUR} + {below('refund', i, 60 * HOUR)}
                        WHEN st.outcome = 'return' AND st.return_path < 0.87
                        THEN st.return_requested_at + {DAY} + {below('refund', i, 2 * DAY)}
                        WHEN st.outcome = 'partial_refund'
                        THEN st.delivered_at + {DAY} + {below('refund', i, 9 * DAY)}
                        WHEN st.outcome = 'a_to_z' AND {chance('claim_refund', i, 0.6)}
                        THEN st.claim_at + 2 * {DAY} + {below('refund', i, 5 * DAY)}
                   END AS refunded_at,
                   CASE WHEN st.reviewed_at IS NULL THEN NULL
                        WHEN st.failed OR st.outcome IS NOT NULL
                        THEN {dice.weighted('rating', i, troubled_ratings, 5)}
                        ELSE {dice.weighted('rating', i, good_ratings, 1)} END AS rating
            FROM settled st)
"""


def _order_rows(dice: Dice) -> str:
    """The columns kept for writing orders, events and reviews, with marketplace-shaped order ids."""
    i = "i"
    u, below, chance = dice.unit, dice.below, dice.chance
    fail_reasons = (("no_one_home", 0.55), ("address_problem", 0.30), ("refused", 0.05))
    return_reasons = (("wrong_size", 0.30), ("damaged", 0.20), ("not_as_described", 0.20))
    return f"""
        SELECT r.c, r.i, r.customer_id, r.country, r.region, r.tz, r.locale, r.currency, r.marketplace,
               r.fulfillment, r.item_count, r.total, r.gift, r.canceled_unpaid,
               CASE r.marketplace
                    WHEN 'amazon' THEN printf('%03d-%07d-%07d',
                        {dice.element('amazon_prefix', i, 'r.amazon_prefixes')},
                                              amazon_number // 10000000, amazon_number % 10000000)
                    WHEN 'rakuten'
                        THEN '391734-' || strftime(r.placed_date, '%Y%m%d') || '-'
                             || lpad(r.i::VARCHAR, 10, '0')
                    WHEN 'shopify' THEN (6100000000000 + r.i)::VARCHAR
                    ELSE 'WEB-' || (100000000 + r.i)::VARCHAR END AS order_id,
               r.placed_at, r.paid_at, r.shipped_at, r.out_for_delivery_at, r.failed_at, r.delivered_at,
               r.canceled_at, r.return_requested_at, r.returned_at, r.refunded_at, r.claim_at, r.reviewed_at,
               r.rating,
               CASE WHEN r.marketplace = 'amazon' AND r.rating <= 2 AND {chance('feedback', i, 0.4)}
                    THEN r.reviewed_at + {below('feedback_at', i, 2 * DAY)} END AS feedback_at,
               CASE WHEN NOT r.canceled
                    THEN r.placed_at + {DAY} * (1 + ceil(r.transit_days
                         * CASE WHEN r.fulfillment = 'FBA' THEN 0.75 ELSE 1 END))::BIGINT END AS estimated_at,
               CASE WHEN r.fulfillment = 'FBA' THEN 'amazon-logistics'
                    ELSE {dice.element('carrier', i, 'r.carriers')} END AS carrier,
               lpad({below('tracking', i, 10**12)}::VARCHAR, 12, '0') AS tracking_number,
               {dice.weighted('fail_reason', i, fail_reasons, 'access_problem')} AS fail_reason,
               {dice.weighted('return_reason', i, return_reasons, 'changed_mind')} AS return_reason,
               r.outcome = 'partial_refund' AS partial_refund,
               CASE WHEN r.outcome = 'partial_refund'
                    THEN round(r.total * (0.1 + 0.4 * {u('refund_share', i)}),
                               CASE WHEN r.currency = 'JPY' THEN 0 ELSE 2 END)
                    ELSE r.total END::DECIMAL(18, 2) AS refund_amount,
               CASE WHEN {chance('claim_reason', i, 0.6)} THEN 'not_as_described'
                   ELSE 'damaged' END AS claim_reason
        FROM (SELECT *, {AMAZON_NUMBERS_FROM} + i * {AMAZON_NUMBER_STRIDE}
            + {below('amazon_number', i, AMAZON_NUMBER_STRIDE)}
                  AS amazon_number FROM refunded) r
"""


def _status_sql(plan: Plan) -> str:
    """The order's status at the end of the period, from the events that happened by then."""
    end = plan.end
    return (f"CASE WHEN canceled_at <= {end} THEN 'canceled' "
            f"WHEN returned_at <= {end} THEN 'returned' "
            f"WHEN refunded_at <= {end} AND NOT partial_refund THEN 'refunded' "
            f"WHEN delivered_at <= {end} THEN 'delivered' "
            f"WHEN shipped_at <= {end} THEN 'shipped' "
            f"WHEN paid_at <= {end} THEN 'paid' ELSE 'pending' END")


def _seen(column: str, plan: Plan) -> str:
    """`column` as a timestamp when it happened inside the period, else NULL."""
    return f"CASE WHEN {column} <= {plan.end} THEN to_timestamp({column}) END"


# --------------------------------------------------------------------------------- customers


def _plan_customers(con, plan: Plan, dice: Dice) -> None:
    """Each customer's derived figures, contact details, consents and opt-outs (epoch seconds)."""
    stages = (_customer_figures(plan, dice), _customer_contacts(dice), _customer_consents(plan, dice))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _demo_customer AS WITH {', '.join(stages)}\n"
                f"{_customer_rows(plan, dice)}")


def _customer_figures(plan: Plan, dice: Dice) -> str:
    """Figures derived from the customer's orders: first and last order, count, lifetime value, source."""
    below, chance = dice.below, dice.chance
    return f"""
        bought AS (
            SELECT c, min(placed_at) AS first_order_at, max(placed_at) AS last_order_at,
                   count(*) AS order_count,
                   coalesce(sum(total) FILTER (
                       WHERE NOT ({_status_sql(plan)} IN ('canceled', 'refunded', 'returned'))),
                            0) AS lifetime_value,
                   arg_min(marketplace, [placed_at, i]) AS source,
                   arg_max(order_id, [placed_at, i]) AS last_order_id,
                   bool_or(gift) AS gifted
            FROM _demo_order GROUP BY c),
        joined AS (
            SELECT p.c, p.k, p.first_order, p.customer_id, p.country, p.region, p.tz, p.area_codes,
                   p.locale, p.wholesale,
                   b.first_order_at, b.last_order_at, coalesce(b.order_count, 0) AS order_count,
                   coalesce(b.lifetime_value, 0)::DECIMAL(18, 2) AS lifetime_value, b.last_order_id,
                   coalesce(b.gifted, false) AS gifted,
                   coalesce(b.source, CASE WHEN {chance('prospect_source', 'p.c', 0.7)} THEN 'shopify'
                       ELSE 'web' END)
                       AS source,
                   coalesce(b.first_order_at, {plan.start}
                       + {below('signed_up', 'p.c', plan.days * DAY)}) AS anchor
            FROM _demo_profile p LEFT JOIN bought b ON b.c = p.c)
"""


def _customer_contacts(dice: Dice) -> str:
    """Name, email (Amazon buyers mostly through the relay), phone, WhatsApp, LINE and birthday."""
    line_share = "CASE WHEN x.source = 'amazon' THEN co.line_share_amazon ELSE co.line_share END"
    c = "x.c"
    u, below, chance = dice.unit, dice.below, dice.chance
    phone = (f"CASE WHEN co.calling_code = '1' "
             f"THEN '+1' || {dice.element('area_code', c, 'x.area_codes')}::VARCHAR "
             f"|| (200 + {below('exchange', c, 800)})::VARCHAR "
             f"|| lpad({below('line_number', c, 10000)}::VARCHAR, 4, '0') "
             f"ELSE '+' || co.calling_code || {dice.element('mobile_prefix', c, 'co.mobile_prefixes')} "
             f"|| lpad({below('subscriber', c, '10 ** co.subscriber_digits')}::VARCHAR, "
             f"co.subscriber_digits, '0') END")
    birthday = (f"DATE '1960-01-01' + (({u('birth_a', c)} + {u('birth_b', c)}) / 2 * 16800)::INT")
    return f"""
        contact AS (
            SELECT x.*, co.currency, co.vip_from, co.email_marketing_share, co.double_opt_in_share,
                   co.sms_marketing_share, co.sms_marketing_level,
                   x.source = 'amazon' AS amazon_buyer,
                   CASE WHEN {chance('no_email', c, "CASE WHEN x.source = 'amazon' THEN 0.03 ELSE 0.01 END")}
                       THEN NULL
                        WHEN x.source = 'amazon' AND NOT {chance('own_email', c, 0.25)} THEN 'relay'
                        ELSE 'own' END AS email_kind,
                   {chance('phone', c, "CASE WHEN x.source = 'amazon' THEN 0.25 ELSE 0.80 END")} AS has_phone,
                   {phone} AS phone_number,
                   {chance('whatsapp', c, 'co.whatsapp_share')} AS on_whatsapp,
                   {chance('line', c, line_share)}
                       AS on_line,
                   x.anchor + CASE WHEN {chance('line_at_checkout', c, 0.6)}
                       THEN {below('line_follow', c, 3 * HOUR)}
                                   ELSE {DAY} + {below('line_follow', c, 7 * DAY)} END AS line_follow_at,
                   CASE WHEN {chance('birthday', c, 0.6)} THEN {birthday} END AS birthday,
                   {_name_columns(dice)}
            FROM joined x JOIN _demo_country co ON co.code = x.country),
        named AS (
            SELECT ct.* EXCLUDE (given_idx, family_idx, name_group),
                   CASE WHEN ct.name_group IN ('ja', 'ko', 'zh')
                        THEN fam.native || CASE WHEN ct.name_group = 'ja' THEN ' ' ELSE '' END || giv.native
                        ELSE giv.native || ' ' || fam.native END AS name,
                   CASE ct.email_kind
                        WHEN 'own' THEN giv.latin || '.' || fam.latin || ct.c::VARCHAR || '@'
                                        || {dice.element('email_domain', 'ct.c', 'co.email_domains')}
                        WHEN 'relay' THEN substr(md5('relay:{dice.seed}:' || ct.c::VARCHAR), 1, 16)
                                          || '@marketplace.amazon.example' END AS email
            FROM contact ct
            JOIN _demo_country co ON co.code = ct.country
            JOIN _demo_name giv ON giv.grp = ct.name_group AND giv.kind = 'given' AND giv.idx = ct.given_idx
            JOIN _demo_name fam ON fam.grp = ct.name_group AND fam.kind = 'family'
                AND fam.idx = ct.family_idx)
"""


def _customer_consents(plan: Plan, dice: Dice) -> str:
    """Which consents each customer gives, when, and when they opt out again."""
    email_share = "CASE WHEN n.k = 0 THEN 0.9 WHEN n.amazon_buyer THEN 0.8 ELSE n.email_marketing_share END"
    below, chance = dice.below, dice.chance
    end = plan.end
    return f"""
        consented AS (
            SELECT n.*,
                   CASE WHEN n.has_phone THEN n.phone_number END AS phone,
                   CASE WHEN n.has_phone AND n.on_whatsapp THEN n.phone_number END AS whatsapp,
                   CASE WHEN n.on_line AND n.line_follow_at <= {end}
                       THEN n.line_follow_at END AS line_followed_at,
                   CASE WHEN n.email_kind <> 'own' THEN NULL
                        WHEN n.k = 0 OR n.amazon_buyer THEN 'signup_form'
                        WHEN n.country = 'CA' AND {chance('casl_implied', 'n.c', 0.45)} THEN 'purchase'
                        WHEN {chance('email_source', 'n.c', 0.75)} THEN 'checkout_checkbox'
                        ELSE 'signup_form' END AS email_source,
                   n.email_kind = 'own' AND {chance('email_consent', 'n.c', email_share)}
                       AS wants_email,
                   n.has_phone AND {chance('sms_service', 'n.c', 0.7)} AS sms_service,
                   n.has_phone AND NOT n.amazon_buyer
                       AND {chance('sms_marketing', 'n.c', 'n.sms_marketing_share')}
                       AS wants_sms_marketing,
                   CASE WHEN {chance('sms_keyword', 'n.c', 0.3)} THEN 'sms_keyword'
                       ELSE 'checkout_sms_checkbox' END
                       AS sms_source,
                   n.has_phone AND n.on_whatsapp
                       AND {chance('whatsapp_optin', 'n.c', 0.85)} AS whatsapp_service,
                   {chance('whatsapp_marketing', 'n.c', 0.3)} AS whatsapp_marketing_draw
            FROM named n),
        granted AS (
            SELECT g.*,
                   CASE WHEN g.wants_email THEN
                        CASE WHEN g.amazon_buyer THEN g.anchor + 2 * {DAY}
                            + {below('email_granted', 'g.c', 12 * DAY)}
                             WHEN g.k > 0 AND g.email_source = 'signup_form'
                             THEN greatest({plan.start}, g.anchor - {below('email_granted', 'g.c', 20 * DAY)})
                             ELSE g.anchor END END AS email_granted_raw,
                   CASE WHEN g.wants_sms_marketing THEN
                        g.anchor + CASE WHEN g.sms_source = 'sms_keyword'
                            THEN {below('sms_granted', 'g.c', 30 * DAY)}
                                        ELSE 0 END END AS sms_granted_raw,
                   CASE WHEN g.line_followed_at IS NOT NULL AND {chance('line_unfollow', 'g.c', 0.06)}
                        THEN g.line_followed_at + {DAY} + {below('line_unfollow_at', 'g.c', 60 * DAY)} END
                       AS line_unfollow_raw
            FROM consented g),
        dated AS (
            SELECT d.*,
                   CASE WHEN d.email_granted_raw <= {end} THEN d.email_granted_raw END AS email_granted_at,
                   CASE WHEN d.sms_granted_raw <= {end} THEN d.sms_granted_raw END AS sms_granted_at,
                   CASE WHEN d.line_unfollow_raw <= {end} THEN d.line_unfollow_raw END AS line_unfollowed_at
            FROM granted d),
        opted AS (
            SELECT o.*,
                   CASE WHEN o.email_granted_at IS NOT NULL AND o.email_source <> 'purchase'
                         AND {chance('double_opt_in', 'o.c', 'o.double_opt_in_share')}
                         AND {chance('confirmed', 'o.c', 0.95)}
                        THEN o.email_granted_at + 60
                             + least(2 * {DAY}, {dice.lognormal('confirm_after', 'o.c', 600, 1.2)})::BIGINT
                   END AS confirm_raw,
                   CASE WHEN o.email_granted_at IS NOT NULL AND {chance('unsubscribe', 'o.c', 0.04)}
                        THEN o.email_granted_at + {DAY}
                            + {below('unsubscribe_at', 'o.c', 90 * DAY)} END AS unsubscribe_raw,
                   CASE WHEN o.email_granted_at IS NOT NULL AND {chance('complain', 'o.c', 0.005)}
                        THEN o.email_granted_at + {DAY}
                            + {below('complain_at', 'o.c', 90 * DAY)} END AS complain_raw,
                   CASE WHEN o.email_kind = 'own' AND {chance('bounce', 'o.c', 0.012)}
                        THEN o.anchor + {below('bounce_at', 'o.c', plan.days * DAY)} END AS bounce_raw,
                   CASE WHEN o.sms_granted_at IS NOT NULL AND {chance('sms_stop', 'o.c', 0.06)}
                        THEN o.sms_granted_at + {DAY}
                            + {below('sms_stop_at', 'o.c', 60 * DAY)} END AS sms_stop_raw
            FROM dated o)
"""


def _customer_rows(plan: Plan, dice: Dice) -> str:
    """Opt-outs and confirmations that happened inside the period, and the LINE user id."""
    end = plan.end
    return f"""
        SELECT f.* EXCLUDE (confirm_raw, unsubscribe_raw, complain_raw, bounce_raw, sms_stop_raw,
                            email_granted_raw,
                            sms_granted_raw, line_unfollow_raw),
               CASE WHEN f.confirm_raw <= {end} THEN f.confirm_raw END AS double_opt_in_at,
               CASE WHEN f.unsubscribe_raw <= {end} THEN f.unsubscribe_raw END AS unsubscribed_at,
               CASE WHEN f.complain_raw <= {end} AND NOT coalesce(f.unsubscribe_raw <= {end}, false)
                    THEN f.complain_raw END AS complained_at,
               CASE WHEN f.bounce_raw <= {end} THEN f.bounce_raw END AS bounced_at,
               CASE WHEN f.sms_stop_raw <= {end} THEN f.sms_stop_raw END AS sms_stopped_at,
               CASE WHEN f.line_followed_at IS NOT NULL
                    THEN 'U' || md5('line:{dice.seed}:' || f.c::VARCHAR) END
                   AS line_user_id
        FROM opted f
"""


def _name_columns(dice: Dice) -> str:
    """Columns choosing the customer's name: the name group follows the language (Dutch names in
    the Netherlands)."""
    groups = ", ".join(_literal(group) for group in NAMES)
    return (f"CASE WHEN x.country = 'NL' THEN 'nl' WHEN x.locale IN ({groups}) THEN x.locale ELSE 'en' END "
            f"AS name_group, "
            f"{dice.below('given_name', 'x.c', NAMES_PER_LIST)} AS given_idx, "
            f"{dice.below('family_name', 'x.c', NAMES_PER_LIST)} AS family_idx")


# ------------------------------------------------------------------------------------- carts


def _plan_carts(con, plan: Plan, dice: Dice) -> None:
    """Abandoned carts: many shortly before an order (the buyer came back), the rest anywhere."""
    key = "(x.c * 8 + r.n)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _demo_cart AS
        WITH counted AS (
            SELECT c, k, first_order, customer_id, country, currency, source,
                   CASE WHEN k = 0 THEN {dice.weighted('carts', 'c', ((1, 0.7), (2, 0.25)), 3)}
                        WHEN source = 'amazon' THEN {dice.weighted('carts', 'c', ((0, 0.9),), 1)}
                        ELSE {dice.weighted('carts', 'c', ((0, 0.55), (1, 0.30), (2, 0.11)), 3)} END AS carts
            FROM _demo_customer),
        drawn AS (
            SELECT x.c, x.customer_id, x.currency, r.n, x.k, x.first_order,
                   x.k > 0 AND {dice.chance('cart_recovered', key, 0.35)} AS recovered,
                   x.first_order + {dice.below('cart_order', key, 'greatest(x.k, 1)')} AS before_order,
                   {plan.start} + {dice.below('cart_at', key, plan.days * DAY)} AS anytime,
                   {HOUR} + {dice.below('cart_lead', key, 71 * HOUR)} AS lead,
                   {dice.lognormal('cart_total', key, 'co.unit_price * 1.3', 0.6)} AS value,
                   1 + {dice.below('cart_items', key, 4)} AS item_count,
                   md5('cart:{dice.seed}:' || {key}::VARCHAR) AS token
            FROM counted x JOIN _demo_country co ON co.code = x.country CROSS JOIN range(x.carts) r(n))
        SELECT d.c, d.customer_id, d.n, 'cart_' || lpad(d.c::VARCHAR, 9, '0') || '_'
            || d.n::VARCHAR AS cart_id,
               CASE WHEN d.recovered THEN o.placed_at - d.lead ELSE d.anytime END AS abandoned_at,
               CASE WHEN d.currency = 'JPY' THEN round(d.value / 10) * 10
                    ELSE round(d.value, 2) END::DECIMAL(18, 2)
                   AS total,
               d.currency, d.item_count, 'https://shop.example.com/cart/' || d.token AS url
        FROM drawn d LEFT JOIN _demo_order o ON o.i = d.before_order""")


# ============================================================================ writing rows


def _insert_customers(con, plan: Plan, dice: Dice) -> None:
    tags = ", ".join((
        "CASE WHEN order_count >= 6 OR lifetime_value >= vip_from THEN 'vip' END",
        "CASE WHEN wholesale THEN 'wholesale' END",
        "CASE WHEN email_granted_at IS NOT NULL AND email_source = 'signup_form' THEN 'newsletter' END",
        f"CASE WHEN {dice.chance('replenishable', 'c', 0.18)} THEN 'replenishable' END",
        "CASE WHEN gifted THEN 'gift_buyer' END",
        f"CASE WHEN {dice.chance('do_not_market', 'c', 0.008)} THEN 'do_not_market' END",
    ))
    con.execute(f"""
        INSERT INTO customers
        SELECT customer_id, source, name, email, phone, line_user_id, whatsapp, locale, tz, country,
               list_filter([{tags}], tag -> tag IS NOT NULL), birthday,
               to_timestamp(first_order_at), to_timestamp(last_order_at), order_count, lifetime_value,
               currency
        FROM _demo_customer ORDER BY c""")


def _insert_orders(con, plan: Plan) -> None:
    con.execute(f"""
        INSERT INTO orders
        SELECT order_id, customer_id, marketplace, fulfillment, {_status_sql(plan)}, country, region, total,
               currency, item_count, to_timestamp(placed_at), {_seen('shipped_at', plan)},
               {_seen('delivered_at', plan)}, to_timestamp(estimated_at),
               CASE WHEN shipped_at <= {plan.end} THEN 'https://track.example.com/' || carrier || '/'
                   || tracking_number END,
               gift
        FROM _demo_order ORDER BY order_id""")


def _insert_reviews(con, plan: Plan, dice: Dice) -> None:
    band = "CASE WHEN o.rating >= 4 THEN 0 WHEN o.rating = 3 THEN 1 ELSE 2 END"
    con.execute(f"""
        INSERT INTO reviews
        SELECT o.order_id, o.rating,
               CASE WHEN {dice.chance('review_text', 'o.i', 0.7)} THEN t.text END,
               to_timestamp(o.reviewed_at)
        FROM _demo_order o
        LEFT JOIN _demo_review_text t ON t.locale = o.locale AND t.band = {band}
                                     AND t.idx = {dice.below('review_text_idx', 'o.i', 2)}
        WHERE o.reviewed_at <= {plan.end} ORDER BY o.order_id""")


#: Order events: (event, time column, JSON data or NULL).
ORDER_EVENTS = (
    ("ordered", "placed_at", "NULL"),
    ("paid", "paid_at", "NULL"),
    ("shipped", "shipped_at", "json_object('carrier', carrier, 'tracking_number', tracking_number)"),
    ("out_for_delivery", "out_for_delivery_at", "NULL"),
    ("delivery_failed", "failed_at", "json_object('reason', fail_reason)"),
    ("delivered", "delivered_at", "NULL"),
    ("canceled", "canceled_at",
     "json_object('by', CASE WHEN canceled_unpaid THEN 'payment_timeout' ELSE 'buyer' END)"),
    ("return_requested", "return_requested_at", "json_object('reason', return_reason)"),
    ("returned", "returned_at", "NULL"),
    ("refunded", "refunded_at",
     "json_object('amount', refund_amount, 'currency', currency, 'partial', partial_refund)"),
    ("a_to_z_claim", "claim_at", "json_object('reason', claim_reason)"),
    ("reviewed", "reviewed_at", "json_object('rating', rating)"),
    ("feedback_negative", "feedback_at", "json_object('rating', rating)"),
)


def _insert_order_events(con, plan: Plan) -> None:
    parts = [f"SELECT i, order_id, '{event}' AS event, {column} AS happened_at, ({data})::JSON AS data "
             f"FROM _demo_order WHERE {column} <= {plan.end}"
             for event, column, data in ORDER_EVENTS]
    con.execute(f"""
        INSERT INTO order_events
        SELECT 'oe_' || lpad(i::VARCHAR, 9, '0') || '_' || event, order_id, event,
               to_timestamp(happened_at), data
        FROM ({' UNION ALL '.join(parts)}) ORDER BY i, event""")


def _insert_carts(con, plan: Plan) -> None:
    con.execute(f"""
        INSERT INTO carts
        SELECT cart_id, customer_id, total, currency, item_count, url
        FROM _demo_cart WHERE abandoned_at BETWEEN {plan.start} AND {plan.end} ORDER BY cart_id""")


#: Email engagement: opens per consenting customer (count, share), the rest open 6 times.
OPENS_PER_CUSTOMER = ((0, 0.30), (1, 0.25), (2, 0.20), (3, 0.12), (4, 0.08))


def _customer_event(event: str, number: str, at: str, source: str = "_demo_customer", *, where: str,
                    cart_id: str = "NULL", order_id: str = "NULL", data: str = "NULL") -> str:
    """One kind of customer event as a SELECT of (c, customer_id, event, n, at, cart_id, order_id, data);
    `n` tells apart several events of one kind for one customer (and goes into the event id)."""
    return (f"SELECT c, customer_id, '{event}' AS event, {number} AS n, {at} AS happened_at, "
            f"{cart_id} AS cart_id, {order_id} AS order_id, ({data})::JSON AS data "
            f"FROM {source} WHERE {where}")


def _insert_customer_events(con, plan: Plan, dice: Dice) -> None:
    start, end = plan.start, plan.end
    campaign = ("json_object('channel', 'email', "
                "'campaign', 'newsletter-' || strftime(to_timestamp(happened_at), '%Y-%m'))")
    lead = dice.below("signup_lead", "c", 600)
    signed_up = f"greatest({start}, anchor - CASE WHEN k > 0 THEN 60 + {lead} ELSE 0 END)"
    opens = f"({_email_opens(plan, dice)})"
    kinds = [
        _customer_event("cart_abandoned", "n", "abandoned_at", "_demo_cart", cart_id="cart_id",
                        where=f"abandoned_at BETWEEN {start} AND {end}"),
        _customer_event("signed_up", "0", signed_up, where="source IN ('shopify', 'web')"),
        _customer_event("last_order", "0", "last_order_at", order_id="last_order_id",
                        where="last_order_at IS NOT NULL"),
        _customer_event("birthday", "n", "happened_at", f"({_birthdays(plan)})", where="TRUE"),
        _customer_event("opened", "n", "happened_at", opens, data=campaign, where="TRUE"),
        _customer_event("clicked", "n", f"least({end}, happened_at + click_after)", opens, data=campaign,
                        where="clicked"),
        _customer_event("unsubscribed", "0", "unsubscribed_at", where="unsubscribed_at IS NOT NULL",
                        data=f"json_object('channel', 'email', 'method', {_unsubscribe_method(dice)})"),
        _customer_event("unsubscribed", "1", "sms_stopped_at", where="sms_stopped_at IS NOT NULL",
                        data="json_object('channel', 'sms', 'keyword', 'STOP')"),
        _customer_event("complained", "0", "complained_at", where="complained_at IS NOT NULL",
                        data="json_object('channel', 'email')"),
        _customer_event("bounced", "0", "bounced_at", where="bounced_at IS NOT NULL",
                        data="json_object('channel', 'email', 'type', 'hard')"),
        _customer_event("line_followed", "0", "line_followed_at", where="line_followed_at IS NOT NULL"),
        _customer_event("line_unfollowed", "0", "line_unfollowed_at", where="line_unfollowed_at IS NOT NULL"),
    ]
    con.execute(f"""
        INSERT INTO customer_events
        SELECT customer_id || ':' || event || ':' || n::VARCHAR, customer_id, event,
               to_timestamp(happened_at), cart_id, order_id, data
        FROM ({' UNION ALL '.join(kinds)}) ORDER BY 1""")


def _email_opens(plan: Plan, dice: Dice) -> str:
    """Opens of our newsletters while subscribed (and the address works); a quarter lead to a click."""
    end = plan.end
    key = "(cu.c * 8 + r.n)"
    stop = (f"least({end}, coalesce(cu.unsubscribed_at, {end}), coalesce(cu.complained_at, {end}), "
            f"coalesce(cu.bounced_at, {end}))")
    return (f"SELECT cu.c, cu.customer_id, r.n, "
            f"cu.email_granted_at + ({dice.unit('open_at', key)} * ({stop} - cu.email_granted_at))::BIGINT "
            f"AS happened_at, {dice.chance('clicked', key, 0.25)} AS clicked, "
            f"{dice.below('click_after', key, 600)} + 5 AS click_after "
            f"FROM _demo_customer cu, range({dice.weighted('opens', 'cu.c', OPENS_PER_CUSTOMER, 6)}) r(n) "
            f"WHERE cu.email_granted_at IS NOT NULL AND {stop} > cu.email_granted_at")


def _birthdays(plan: Plan) -> str:
    """Each birthday inside the period, at local midnight (`n` is the year)."""
    first_year = datetime.fromtimestamp(plan.start, UTC).year - 1
    last_year = datetime.fromtimestamp(plan.end, UTC).year + 1
    anniversaries = (f"SELECT c, customer_id, tz, year, "
                     f"CAST(birthday + to_years((year - year(birthday))::INT) AS DATE) AS anniversary "
                     f"FROM _demo_customer CROSS JOIN range({first_year}, {last_year + 1}) y(year) "
                     f"WHERE birthday IS NOT NULL")
    return (f"SELECT b.c, b.customer_id, b.year AS n, ld.midnight AS happened_at FROM ({anniversaries}) b "
            f"JOIN _demo_local_day ld ON ld.tz = b.tz AND ld.local_date = b.anniversary "
            f"WHERE ld.midnight BETWEEN {plan.start} AND {plan.end}")


def _unsubscribe_method(dice: Dice) -> str:
    return dice.weighted("unsubscribe_method", "c", (("list_unsubscribe", 0.55), ("footer_link", 0.30)),
                         "preference_center")


class ConsentRule(NamedTuple):
    """Which customers hold a consent, for what, since when, until when (SQL over `_demo_customer`)."""

    channel: str
    purposes: tuple[str, ...]
    level: str
    granted: str
    revoked: str
    source: str
    holds: str
    double_opt_in: str = "NULL"


EMAIL_LEVEL = ("CASE WHEN email_source = 'purchase' THEN 'implied' "
               "WHEN double_opt_in_at IS NOT NULL THEN 'double_opt_in' ELSE 'express' END")
CONSENT_RULES = (
    ConsentRule("email", ("marketing",), EMAIL_LEVEL, "email_granted_at",
                "coalesce(unsubscribed_at, complained_at)", "email_source", "email_granted_at IS NOT NULL",
                "double_opt_in_at"),
    ConsentRule("sms", ("transactional", "service"), "'express'", "anchor", "sms_stopped_at",
                "'checkout_phone'", "sms_service"),
    ConsentRule("sms", ("marketing",), "sms_marketing_level", "sms_granted_at", "sms_stopped_at",
                "sms_source", "sms_granted_at IS NOT NULL"),
    ConsentRule("whatsapp", ("transactional", "service"), "'express'", "anchor", "NULL",
                "'checkout_whatsapp_optin'", "whatsapp_service"),
    ConsentRule("whatsapp", ("marketing",), "'express'", "anchor", "NULL", "'whatsapp_marketing_optin'",
                "whatsapp_service AND whatsapp_marketing_draw AND NOT amazon_buyer"),
    ConsentRule("line", ("any",), "'express'", "line_followed_at", "line_unfollowed_at", "'line_follow'",
                "line_followed_at IS NOT NULL"),
)


def _insert_consents(con, plan: Plan, dice: Dice) -> None:
    parts = [f"SELECT c, {seq} AS seq, customer_id, '{rule.channel}' AS channel, "
             f"unnest({_sql_list(rule.purposes)}) AS purpose, {rule.level} AS level, "
             f"{rule.granted} AS granted_at, {rule.revoked} AS revoked_at, {rule.source} AS source, "
             f"{rule.double_opt_in} AS double_opt_in_at, line_user_id FROM _demo_customer WHERE {rule.holds}"
             for seq, rule in enumerate(CONSENT_RULES)]
    con.execute(f"""
        INSERT INTO consents
        SELECT customer_id, channel, purpose, level, to_timestamp(granted_at), to_timestamp(revoked_at),
               rows.source, to_timestamp(double_opt_in_at),
               CASE WHEN channel = 'line'
                    THEN json_object('line_user_id', line_user_id, 'webhook_event', 'follow')
                    ELSE {_consent_evidence(dice)} END
        FROM ({' UNION ALL '.join(parts)}) rows LEFT JOIN _demo_consent_text t ON t.source = rows.source
        ORDER BY c, seq, purpose""")


def _consent_evidence(dice: Dice) -> str:
    """The form, its wording, the IP address (a documentation range) and browser, and the
    confirmation message of a double opt-in."""
    ip = f"'203.0.113.' || (1 + {dice.below('consent_ip', 'c', 254)})::VARCHAR"
    browser = dice.element("consent_ua", "c", _sql_list(USER_AGENTS))
    confirmation = (f"CASE WHEN double_opt_in_at IS NOT NULL "
                    f"THEN 'doi-' || substr(md5('doi:{dice.seed}:' || c::VARCHAR), 1, 20) END")
    return (f"json_object('form', rows.source || '_v3', 'text', t.text, 'ip', {ip}, 'user_agent', {browser}, "
            f"'double_opt_in_message_id', {confirmation})")


def _insert_suppressions(con, plan: Plan, dice: Dice) -> None:
    """One suppression per opt-out event, on its channel, at the same instant."""
    opt_outs = (
        ("email", "unsubscribed", "unsubscribed_at", _unsubscribe_method(dice)),
        ("email", "complaint", "complained_at", "'feedback_loop'"),
        ("email", "hard_bounce", "bounced_at", "'esp_webhook'"),
        ("sms", "sms_stop", "sms_stopped_at", "'sms_keyword'"),
        ("line", "line_unfollow", "line_unfollowed_at", "'line_webhook'"),
    )
    parts = [f"SELECT c, {seq} AS seq, customer_id, '{channel}' AS channel, '{reason}' AS reason, "
             f"{column} AS happened_at, {source} AS source FROM _demo_customer WHERE {column} IS NOT NULL"
             for seq, (channel, reason, column, source) in enumerate(opt_outs)]
    con.execute(f"""
        INSERT INTO suppressions
        SELECT customer_id, channel, reason, to_timestamp(happened_at), source
        FROM ({' UNION ALL '.join(parts)}) ORDER BY c, seq""")


def _sql_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_literal(item) for item in items) + "]"


# ============================================================================ the command


def parse_start(text: str | None) -> datetime | None:
    """`--start`: a date (midnight UTC) or an ISO 8601 date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"`{text}` is not a date such as 2026-07-01 or a date-time such as "
                                 "2026-07-01T00:00Z", param_hint="--start") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.command("generate")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The store to fill (created when missing).")
@click.option("--orders", type=click.IntRange(1, MAX_ORDERS), default=DEFAULT_ORDERS, metavar="N",
              help=f"How many orders to generate [default: {DEFAULT_ORDERS:,}].")
@click.option("--seed", type=int, default=DEFAULT_SEED, metavar="S",
              help=f"The same seed always gives the same data [default: {DEFAULT_SEED}].")
@click.option("--start", "start_text", metavar="DATE", default=None,
              help=f"First day of the history [default: {DEFAULT_START:%Y-%m-%d}].")
@click.option("--days", type=click.IntRange(1, 3660), default=DEFAULT_DAYS, metavar="D",
              help=f"Length of the history, in days [default: {DEFAULT_DAYS}].")
@click.option("--force", is_flag=True, help="Replace the data (and ledger) of a store that already has some.")
def generate_command(db_path: str, orders: int, seed: int, start_text: str | None, days: int,
                     force: bool) -> None:
    """Fill a store with a realistic demo data set: customers, orders, events, consents.

    \b
    Example:
      linkstar generate --db demo.duckdb --orders 100000
    """
    from .store import StoreError, open_store

    start = parse_start(start_text)
    if not -2**63 <= seed < 2**63:
        raise click.BadParameter("the seed must fit in 64 bits", param_hint="--seed")
    try:
        con = open_store(db_path)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        existing = row_counts(con)
        if any(existing.values()):
            if not force:
                raise click.ClickException(f"{db_path}: {_describe(existing)}; pass --force to replace it")
            clear_store(con)
        began = time.perf_counter()
        counts = generate(con, orders=orders, seed=seed, start=start, days=days,
                          progress=_progress_printer(orders))
        elapsed = time.perf_counter() - began
    finally:
        con.close()
    _print_summary(db_path, counts, seed, start or DEFAULT_START, days, elapsed)


def _progress_printer(orders: int) -> Progress:
    """Progress on standard error, on one refreshed line, only when it is a terminal."""
    if not sys.stderr.isatty():
        return _no_progress

    def show(stage: str, count: int) -> None:
        text = f"orders {count:,} of {orders:,}" if stage == "orders" else "building indexes"
        click.echo(f"\r\x1b[K{text}", err=True, nl=False)
        if stage == "indexes":
            click.echo("", err=True)

    return show


def _print_summary(db_path: str, counts: dict[str, int], seed: int, start: datetime, days: int,
                   elapsed: float) -> None:
    first = start.astimezone(UTC)
    last = first + timedelta(days=days)
    rows = sum(counts.values())
    click.echo(f"{db_path}: demo data for {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC, seed {seed}")
    for table, count in counts.items():
        click.echo(f"  {table:<16} {count:>12,}")
    rate = rows / max(elapsed, 1e-9)
    click.echo(f"  {'total':<16} {rows:>12,} rows in {elapsed:.1f} s ({rate:,.0f} rows/s)")
