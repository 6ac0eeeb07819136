"""Short explanations shown on hover and beside completions: keywords, purposes, channels, options.

One sentence or two each, in the words of SPEC.md; the specification stays the authority.
"""

from __future__ import annotations

KEYWORDS = {
    "flow": "`flow NAME \"title\"` starts a named flow; its clauses follow, one of them the `on` trigger.",
    "on": "`on EVENT [+|- DURATION] [at TIME local] [unless CONDITION]`: when the flow becomes due. "
          "A flow without a header starts with it. In `event NAME on RECORD`, the record the event "
          "happens to.",
    "unless": "`unless CONDITION` cancels the flow for this event when the condition becomes true "
              "between the event and the moment the flow is due.",
    "at": "`at TIME [local]` moves the due moment to the first time the clock shows TIME.",
    "local": "The times are read in the recipient's own time zone.",
    "purpose": "`purpose NAME`: what kind of message the flow sends: transactional, service, review "
               "or marketing. Without it the flow is held to the rules for marketing.",
    "market": "`market NAME, …`: only buyers in these markets enter, and their policies apply. "
              "In a policy, `policy market NAME` holds the law of one market.",
    "where": "`where CONDITION`: a guard, evaluated when the flow is due and again right before "
             "every send. Several `where` clauses must all hold.",
    "via": "`via CHANNEL, …`: the channels in fallback order; each message goes out on the first "
           "channel that can reach the recipient.",
    "send": "`send \"TEMPLATE\" (NAME = VALUE, …)`: the message, by template name, with optional "
            "parameters.",
    "split": "`split P% send …, P% send …`: an A/B test; each customer always gets the same arm. "
             "The shares add up to 100%.",
    "between": "`between TIME and TIME [local]`: the send window. A message due outside it waits for "
               "the next opening.",
    "and": "Both conditions must hold. In `between 10:00 and 18:00`, the end of the window.",
    "or": "At least one of the conditions must hold.",
    "not": "The condition must not hold; `not in` is negated membership.",
    "cooldown": "`cooldown DURATION [per customer|order] [across flows]`: the flow does not start "
                "again for a customer (or order) that got a message from it within the duration.",
    "cap": "`cap N per DURATION`: at most N messages in any period of that length.",
    "per": "`per customer` or `per order`: what a cooldown, cap or `once` counts by.",
    "across": "`across flows`: messages of the same purpose from every flow count, not only this "
              "flow's.",
    "expire": "`expire after DURATION`: a message that could not go out within the duration after it "
              "became due is dropped, and the drop is recorded.",
    "after": "`expire after DURATION`; in a review window, the event the window counts from.",
    "exit": "`exit when CONDITION` ends the flow for this order or customer as soon as the condition "
            "holds, even between steps.",
    "when": "The condition of an `exit` or of a `pause` rule.",
    "holdout": "`holdout P%`: a control group that never gets a message from this flow, to measure "
               "what the flow is worth.",
    "once": "`once per customer|order`: the flow runs at most once per customer, or per order, ever.",
    "step": "`step [+|- DURATION]`: one message of a sequence, due at the offset from the trigger. "
            "The `via`, `send` and `split` after it belong to it.",
    "policy": "`policy market|channel|platform NAME` or `policy NAME`: compliance rules as code, "
              "applied to every flow they concern.",
    "channel": "`policy channel NAME`: rules for every flow that sends through the channel.",
    "platform": "`policy platform NAME`: rules for every flow that can reach orders of the marketplace.",
    "requires": "`SCOPE requires REQ and …`: flows in scope must meet every requirement.",
    "window": "`SCOPE window DURATION..DURATION after EVENT`: flows in scope must send within the "
              "period after the event.",
    "template": "`SCOPE template forbids NAME, …`: templates of flows in scope must not contain these "
                "kinds of content.",
    "forbids": "The kinds of content a template in scope must not contain.",
    "forbid": "`forbid purpose NAME [in market NAME]`: no flow of the purpose may reach the subject.",
    "keep": "`keep NAME DURATION`: keep the named records (consent evidence) at least this long.",
    "pause": "`pause flow when METRIC > VALUE over DURATION`: stop a flow automatically when a health "
             "metric crosses the threshold.",
    "over": "The period a `pause` rule measures its metric over.",
    "in": "Membership in a list: `order.country in [JP, KR]`. In a policy, `in market` and "
          "`in states` narrow a rule.",
    "states": "`in states NAME, …`: the window binds only recipients whose shipping state is one of "
              "these.",
    "is": "`is missing` / `is present`: whether a field has a value.",
    "missing": "True when the field has no value (only fields marked `?` can be missing).",
    "present": "True when the field has a value.",
    "within": "`EVENT within DURATION`: the event happened within the last duration.",
    "true": "The truth value true.",
    "false": "The truth value false.",
    "import": "`import \"file.flow\"` brings another file's policies and declarations (not its "
              "flows); the path is relative to this file.",
    "entity": "`entity NAME` followed by `field: type` lines: a record flows can read.",
    "enum": "`enum NAME: VALUE, …`: a closed set of values, written bare in expressions.",
    "event": "`event NAME on RECORD`: something that happens to an order or a customer.",
}

PURPOSES = {
    "transactional": "facts about an order the buyer placed: receipts, shipping notices, delivery problems",
    "service": "customer care about an order: surveys, delay explanations, help after a bad review",
    "review": "asking for a product review or seller feedback",
    "marketing": "anything that promotes: coupons, cart reminders, win-back, cross-sell (the strictest rules)",
    "any": "every purpose (in a policy rule's scope)",
}

CHANNELS = {
    "line": "LINE Messaging API push, to buyers who added the official account as a friend",
    "email": "email, over an HTTP API or SMTP",
    "sms": "text messages (Twilio-style API)",
    "whatsapp": "WhatsApp Cloud API; outside the 24-hour window only approved templates",
    "amazon": "Amazon Buyer-Seller Messaging and its review request, for Amazon orders only",
    "webhook": "a signed HTTP call to a system of the seller's, such as a helpdesk",
}

OPTIONS = {
    "customer": "counted per customer",
    "order": "counted per order",
    "flows": "messages of the same purpose from every flow count",
}

REQUIREMENTS = {
    "excludes": "the flow's guards rule out orders with these events or values (checked now)",
    "cooldown_or_cap": "the flow has a cooldown, a `once per` or a cap (checked now)",
    "consent": "a consent record of at least this level for the channel and purpose (checked before each send)",
    "friend": "the recipient follows the LINE official account (checked before each send)",
    "approved_template": "a WhatsApp template approved by Meta (checked before each send)",
    "unsubscribe_link": "the message renders `unsubscribe_url`",
    "sender_identity": "the message renders `sender_name`",
    "sender_address": "the message renders `sender_address`",
    "ad_disclosure": "the message renders `ad_notice`",
}

FUNCTIONS = {
    "count": "`count(EVENT [within DURATION])`, an **int**: how many times the event happened to the "
             "customer, over all their orders; without `within`, ever",
}

#: The consent levels a `consent(…)` requirement may name.
REQUIREMENT_ARGUMENTS = {
    "implied": "consent level: implied (the weakest)",
    "express": "consent level: express, stronger than implied",
    "express_or_implied": "consent level (CASL): express, or implied for two years after it was given",
    "written": "consent level: written, stronger than express",
    "double_opt_in": "consent level: a confirmed double opt-in",
}

#: Plain words for the types of the data model.
TYPES = {
    "bool": "yes or no",
    "int": "a whole number",
    "decimal": "a number",
    "money": "an amount with its ISO 4217 currency, such as `5000 JPY`",
    "string": "a text",
    "timestamp": "an instant in time",
    "date": "a calendar date",
    "duration": "a length of time, such as `48h`",
    "time": "a time of day, such as `10:00`",
    "percent": "a percentage, such as `10%`",
    "event": "an event; true when it happened to the order or customer before now",
}
