-- Delivery feedback from the providers (linkstar_dsl.feedback): which provider events were
-- applied, the suppressions a later opt-in lifted, and each sent message's delivery state.

-- One row per provider event applied: a redelivered event finds its row and changes nothing.
-- No address is kept: customer_ids lists the customers it matched (empty when none did).
CREATE TABLE feedback_seen (
    provider     VARCHAR NOT NULL,
    event_id     VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    channel      VARCHAR NOT NULL,
    customer_ids VARCHAR[] NOT NULL,
    ledger_key   VARCHAR,
    occurred_at  TIMESTAMPTZ,
    received_at  TIMESTAMPTZ NOT NULL,
    detail       JSON,
    PRIMARY KEY (provider, event_id)
);

-- Suppressions an opt-in lifted (SMS START, LINE follow): the row as it was, moved here so the
-- gates stop seeing it while its history stays.
CREATE TABLE suppression_lifts (
    customer_id  VARCHAR NOT NULL,
    channel      VARCHAR,
    reason       VARCHAR NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR,
    lifted_at    TIMESTAMPTZ NOT NULL,
    lifted_by    VARCHAR NOT NULL                -- provider:event id of the opt-in
);

-- What the provider reported after accepting a send: delivered | failed | bounced.
ALTER TABLE ledger ADD COLUMN delivery VARCHAR;
ALTER TABLE ledger ADD COLUMN delivery_at TIMESTAMPTZ;
