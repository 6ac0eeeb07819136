"""A deterministic generator of realistic .flow text, for benchmarks and load tests.

`generate(lines)` returns roughly `lines` lines of named flows, one-liners and policies mixed the
way a large seller's repository would hold them: comments, multi-line guards, steps and splits.
"""

from __future__ import annotations

import random

EVENTS = ["delivered", "shipped", "ordered", "paid", "delivery_failed", "cart_abandoned", "reviewed"]
CHANNELS = ["line", "email", "sms", "whatsapp", "amazon"]
PURPOSES = ["transactional", "service", "review", "marketing"]
MARKETS = ["JP", "US", "EU", "DE", "CA"]
COUNTRIES = ["JP", "US", "DE", "FR", "CA", "KR"]


def _named_flow(rng: random.Random, i: int) -> list[str]:
    event = rng.choice(EVENTS)
    purpose = rng.choice(PURPOSES)
    lines = [
        f"# Flow {i}: follow-up after {event}.",
        f'flow generated_{i} "Generated flow number {i}"',
        f"  purpose {purpose}",
        f"  market {', '.join(rng.sample(MARKETS, rng.randint(1, 3)))}",
        f"  on {event} + {rng.randint(1, 96)}h unless refunded",
        "  where not refunded",
        "    and not returned",
        "    and not a_to_z_claim",
        "    and order.fulfillment != FBA",
        "    and order.marketplace != amazon",
        f"    and order.total >= {rng.randint(10, 9000)} JPY   # small orders are skipped",
        f"    and customer.country in [{', '.join(rng.sample(COUNTRIES, 2))}]",
        f"  via {', '.join(rng.sample(CHANNELS[:3], rng.randint(1, 3)))}",
        f'  send "template_{i}" (coupon = "C{i:05d}", percent = {rng.randint(5, 30)}%)',
        f"  between {rng.randint(8, 11):02d}:00 and {rng.randint(17, 20)}:00 local",
        f"  cooldown {rng.randint(1, 30)}d per customer",
        "  expire after 3d",
        "  once per order",
    ]
    return lines


def _stepped_flow(rng: random.Random, i: int) -> list[str]:
    return [
        f"flow steps_{i}",
        "  purpose marketing",
        "  on cart_abandoned",
        "  where customer.source != amazon",
        "  between 09:00 and 20:00 local",
        '  step + 1h via email send "cart_reminder"',
        '  step + 24h via line, sms send "cart_reminder_2"',
        f'  step + 7d via email split 50% send "coupon_a", 50% send "coupon_b" (code = "X{i}")',
        "  exit when ordered or unsubscribed",
        f"  holdout {rng.randint(5, 15)}%",
    ]


def _one_liner(rng: random.Random, i: int) -> list[str]:
    return [f"on {rng.choice(EVENTS)} + {rng.randint(1, 72)}h where not refunded and order.marketplace == shopify "
            f"via {', '.join(rng.sample(CHANNELS[:4], 2))} purpose service"]


def _policy(rng: random.Random, i: int) -> list[str]:
    return [
        f'policy house "house rules {i}"',
        f"  cap marketing {rng.randint(2, 6)} per 30d per customer across flows",
        "  cap review 2 per 30d per customer across flows",
        "  marketing via sms between 08:00 and 21:00 local",
        "  marketing via email requires unsubscribe_link and sender_address",
        "  pause flow when unsubscribe_rate > 0.5% over 7d",
    ]


def generate(lines: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    makers = [_named_flow, _named_flow, _stepped_flow, _one_liner]
    out: list[str] = _policy(rng, 0) + [""]
    i = 0
    while len(out) < lines:
        out.extend(rng.choice(makers)(rng, i))
        out.append("")
        i += 1
    return "\n".join(out) + "\n"
