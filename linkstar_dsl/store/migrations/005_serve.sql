-- The service (`linkstar serve`): webhooks it acknowledged, what buyers chose through our links,
-- and the erasure requests it carried out.

-- One row per webhook delivery acknowledged, by the sender's own id (Shopify's
-- X-Shopify-Webhook-Id): a redelivery finds its row and changes nothing.  Provider feedback
-- keeps using `feedback_seen`; canonical events are kept once by their own `id`.
CREATE TABLE inbound_seen (
    source       VARCHAR NOT NULL,               -- shopify, …
    event_id     VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,               -- the topic (orders/paid, refunds/create, …)
    received_at  TIMESTAMPTZ NOT NULL,
    detail       JSON,
    PRIMARY KEY (source, event_id)
);

-- What a buyer chose through a link of ours (one-click unsubscribe, the preference page) or an
-- operator recorded (consent commands and endpoint), with the evidence: the message the link came
-- from, the time, the user agent and the address it came from.  The suppression or consent row
-- it led to is written alongside; this is the record of the request itself.
CREATE TABLE preference_changes (
    customer_id  VARCHAR NOT NULL,
    channel      VARCHAR,                        -- NULL: every channel
    purpose      VARCHAR,                        -- NULL: every purpose on the channel
    choice       VARCHAR NOT NULL,               -- opt_out | opt_in
    occurred_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR NOT NULL,               -- one_click, preferences, api, cli
    message_key  VARCHAR,
    evidence     JSON
);
CREATE INDEX preference_changes_by_customer ON preference_changes (customer_id);

-- Erasure requests carried out (GDPR Art. 17, CCPA deletion): who, when, why, and how many rows
-- of each table were cleared.  The customer id stays, as the key the ledger's evidence and the
-- `erasure` suppression hang on; everything else that identified the person is gone.
CREATE TABLE erasures (
    customer_id  VARCHAR PRIMARY KEY,
    pseudonym    VARCHAR NOT NULL,
    erased_at    TIMESTAMPTZ NOT NULL,
    reason       VARCHAR,
    source       VARCHAR NOT NULL,               -- cli, api, shopify
    cleared      JSON NOT NULL
);
