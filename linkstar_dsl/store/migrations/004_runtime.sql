-- The runner's bookkeeping: who claimed a send and how often it was tried, where the clock of
-- `linkstar run` stands, and the pauses (kill switch) for flows and channels.

ALTER TABLE ledger ADD COLUMN claimed_by VARCHAR;
ALTER TABLE ledger ADD COLUMN attempts BIGINT DEFAULT 0;

-- The end of the last tick each named runner completed (the next tick starts there), and where
-- its first tick started (no tick looks further back).
CREATE TABLE runner_state (
    runner     VARCHAR PRIMARY KEY,
    origin     TIMESTAMPTZ NOT NULL,
    last_tick  TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- A paused flow or channel sends nothing until resumed (or until `until`, when set).  Rows are
-- kept after a resume (resumed_at set) as the record of who stopped what, when and why.
CREATE TABLE pauses (
    scope       VARCHAR NOT NULL,                -- flow | channel
    name        VARCHAR NOT NULL,
    paused_at   TIMESTAMPTZ NOT NULL,
    until       TIMESTAMPTZ,
    reason      VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,                -- cli | api | policy
    resumed_at  TIMESTAMPTZ
);
