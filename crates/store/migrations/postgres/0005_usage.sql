-- Pay-per-use metering: events from the merchant's app (each counted once), one record per instance,
-- window and package (the ledger), the pushes that carried records to KooGallery, and package quotas.
CREATE TABLE usage_events (
    event_id            TEXT    PRIMARY KEY,
    instance_id         TEXT    NOT NULL,
    package_instance_id TEXT,
    units               BIGINT  NOT NULL,
    occurred_at_ms      BIGINT  NOT NULL,
    -- The window the event was counted in (the next open one if its own was already pushed).
    window_start_ms     BIGINT  NOT NULL,
    received_at_ms      BIGINT  NOT NULL
);
CREATE INDEX usage_events_instance ON usage_events (instance_id);

CREATE TABLE usage_records (
    id                  BIGSERIAL PRIMARY KEY,
    instance_id         TEXT    NOT NULL,
    -- '' when no package is involved (a unique key cannot use NULL).
    package_instance_id TEXT    NOT NULL,
    window_start_ms     BIGINT  NOT NULL,
    window_end_ms       BIGINT  NOT NULL,
    units               BIGINT  NOT NULL,
    metering_sn         TEXT    NOT NULL UNIQUE,
    -- open, sealed, batched, pushed, rejected or expired.
    state               TEXT    NOT NULL,
    push_id             BIGINT,
    reject_code         TEXT,
    reject_message      TEXT,
    updated_at_ms       BIGINT  NOT NULL,
    -- One record per instance and period: KooGallery counts only the first record with the same
    -- instance, begin and end time, so usage under another package goes to a later window.
    UNIQUE (instance_id, window_start_ms)
);
CREATE INDEX usage_records_state ON usage_records (state, window_end_ms);
CREATE INDEX usage_records_push ON usage_records (push_id);

CREATE TABLE usage_pushes (
    id             BIGSERIAL PRIMARY KEY,
    -- new (ts/nonce/signature) or old (AK/SK).
    api            TEXT    NOT NULL,
    -- The exact bytes sent on every attempt.
    body           TEXT    NOT NULL,
    record_count   BIGINT  NOT NULL,
    -- pending, accepted or rejected.
    state          TEXT    NOT NULL,
    result_code    TEXT,
    result_message TEXT,
    created_at_ms  BIGINT  NOT NULL,
    settled_at_ms  BIGINT
);

CREATE TABLE package_usage (
    package_instance_id TEXT    PRIMARY KEY,
    used_units          BIGINT  NOT NULL,
    quota_units         BIGINT  NOT NULL,
    exhausted_at_ms     BIGINT
);
