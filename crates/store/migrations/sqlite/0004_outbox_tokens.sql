-- Events for the merchant's app, written in the same transaction as the change they describe and
-- delivered in order per instance.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stable across attempts and replays: the webhook-id.
    event_id           TEXT    NOT NULL UNIQUE,
    event_type         TEXT    NOT NULL,
    instance_id        TEXT    NOT NULL,
    test               INTEGER NOT NULL,
    -- The event's own facts, fixed when it is written.
    data               TEXT    NOT NULL,
    -- The exact body sent, fixed at the first attempt (it may add facts known by then, such as the order).
    body               TEXT,
    -- pending, delivered or dead.
    state              TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    lease_owner        TEXT,
    lease_until_ms     INTEGER,
    last_status        INTEGER,
    last_error         TEXT,
    created_at_ms      INTEGER NOT NULL,
    delivered_at_ms    INTEGER,
    updated_at_ms      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at_ms);
CREATE INDEX outbox_instance ON outbox (instance_id, state, id);

-- Bearer tokens of the merchant-app API, stored as SHA-256 hashes.
CREATE TABLE api_tokens (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    token_hash       TEXT    NOT NULL UNIQUE,
    created_at_ms    INTEGER NOT NULL,
    revoked_at_ms    INTEGER,
    last_used_at_ms  INTEGER
);
