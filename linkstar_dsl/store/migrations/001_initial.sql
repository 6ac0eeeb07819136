-- Version 1 of the store: the standard schema (stdlib/schema.flow) as tables, plus events,
-- consents, suppressions and the send ledger.  Money is an amount column and a `<name>_currency`
-- column.  Timestamps are TIMESTAMPTZ (instants); dates are DATE.

CREATE TABLE customers (
    id                       VARCHAR PRIMARY KEY,
    source                   VARCHAR NOT NULL DEFAULT 'web',
    name                     VARCHAR,
    email                    VARCHAR,
    phone                    VARCHAR,
    line_user_id             VARCHAR,
    whatsapp                 VARCHAR,
    locale                   VARCHAR NOT NULL DEFAULT 'en',
    timezone                 VARCHAR,
    country                  VARCHAR NOT NULL,
    tags                     VARCHAR[] NOT NULL DEFAULT [],
    birthday                 DATE,
    first_order_at           TIMESTAMPTZ,
    last_order_at            TIMESTAMPTZ,
    order_count              BIGINT NOT NULL DEFAULT 0,
    lifetime_value           DECIMAL(18, 2) NOT NULL DEFAULT 0,
    lifetime_value_currency  VARCHAR
);

CREATE TABLE orders (
    id                     VARCHAR PRIMARY KEY,
    customer_id            VARCHAR NOT NULL,
    marketplace            VARCHAR NOT NULL,
    fulfillment            VARCHAR NOT NULL DEFAULT 'merchant',
    status                 VARCHAR NOT NULL,
    country                VARCHAR NOT NULL,
    state                  VARCHAR,
    total                  DECIMAL(18, 2) NOT NULL,
    total_currency         VARCHAR NOT NULL,
    item_count             BIGINT NOT NULL DEFAULT 1,
    placed_at              TIMESTAMPTZ NOT NULL,
    shipped_at             TIMESTAMPTZ,
    delivered_at           TIMESTAMPTZ,
    estimated_delivery_at  TIMESTAMPTZ,
    tracking_url           VARCHAR,
    gift                   BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE reviews (
    order_id     VARCHAR PRIMARY KEY,
    rating       BIGINT,
    text         VARCHAR,
    reviewed_at  TIMESTAMPTZ
);

CREATE TABLE carts (
    id              VARCHAR PRIMARY KEY,
    customer_id     VARCHAR NOT NULL,
    total           DECIMAL(18, 2) NOT NULL,
    total_currency  VARCHAR NOT NULL,
    item_count      BIGINT NOT NULL DEFAULT 1,
    url             VARCHAR
);

-- Something that happened to an order (`delivered`, `refunded`, …).
CREATE TABLE order_events (
    id        VARCHAR PRIMARY KEY,
    order_id  VARCHAR NOT NULL,
    event     VARCHAR NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    data      JSON
);

-- Something that happened to a customer (`cart_abandoned`, `unsubscribed`, …); `cart_id` and
-- `order_id` name the cart or order it is about, when there is one.
CREATE TABLE customer_events (
    id           VARCHAR PRIMARY KEY,
    customer_id  VARCHAR NOT NULL,
    event        VARCHAR NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    cart_id      VARCHAR,
    order_id     VARCHAR,
    data         JSON
);

-- Consent per customer, channel and purpose, with its evidence.  A row is in force from
-- granted_at until revoked_at (NULL: not revoked).
CREATE TABLE consents (
    customer_id       VARCHAR NOT NULL,
    channel           VARCHAR NOT NULL,
    purpose           VARCHAR NOT NULL,
    level             VARCHAR NOT NULL,          -- implied | express | written | double_opt_in
    granted_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ,
    source            VARCHAR NOT NULL,          -- checkout_checkbox, line_follow, sms_keyword, import, …
    double_opt_in_at  TIMESTAMPTZ,
    evidence          JSON                       -- form text/version, IP, user agent, message id
);

-- Recipients who must not be contacted: on one channel, or on every channel (channel NULL).
CREATE TABLE suppressions (
    customer_id  VARCHAR NOT NULL,
    channel      VARCHAR,
    reason       VARCHAR NOT NULL,               -- unsubscribed, hard_bounce, complaint, line_unfollow, sms_stop, erasure
    occurred_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR
);

-- One row per decision.  `key` is the idempotency key: flow, step and the trigger occurrence.
CREATE TABLE ledger (
    key           VARCHAR PRIMARY KEY,
    flow          VARCHAR NOT NULL,
    step          BIGINT NOT NULL,
    occurrence    VARCHAR NOT NULL,              -- the trigger event's id

    order_id      VARCHAR,
    customer_id   VARCHAR NOT NULL,
    channel       VARCHAR,
    template      VARCHAR,
    purpose       VARCHAR NOT NULL,
    decision      VARCHAR NOT NULL,              -- send | defer | skip
    reason        VARCHAR NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    send_at       TIMESTAMPTZ,
    status        VARCHAR NOT NULL DEFAULT 'decided',  -- decided | claimed | sent | failed
    claimed_at    TIMESTAMPTZ,
    completed_at  TIMESTAMPTZ,
    provider_id   VARCHAR,
    detail        JSON
);

CREATE INDEX order_events_by_event ON order_events (event, occurred_at);
CREATE INDEX order_events_by_order ON order_events (order_id, event);
CREATE INDEX customer_events_by_event ON customer_events (event, occurred_at);
CREATE INDEX customer_events_by_customer ON customer_events (customer_id, event);
CREATE INDEX ledger_by_customer ON ledger (customer_id, purpose, send_at);
CREATE INDEX ledger_by_step ON ledger (flow, step, decision);
