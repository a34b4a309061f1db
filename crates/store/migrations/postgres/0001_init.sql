-- koogate schema, PostgreSQL dialect. Times are UNIX milliseconds (BIGINT).

CREATE TABLE instances (
    instance_id      TEXT    PRIMARY KEY,
    order_id         TEXT    NOT NULL,
    order_line_id    TEXT    NOT NULL,
    test             BOOLEAN NOT NULL,
    status           TEXT    NOT NULL,
    expire_time_ms   BIGINT,
    last_scene       TEXT,
    product_id       TEXT,
    front_end_url    TEXT,
    admin_url        TEXT,
    user_name        TEXT,
    password_enc     BYTEA,
    memo             TEXT,
    provision_error  TEXT,
    release_order_id TEXT,
    purge_after_ms   BIGINT,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    -- One instance per order line, kept apart for debug (test) calls.
    UNIQUE (order_id, order_line_id, test)
);
CREATE INDEX instances_purge ON instances (purge_after_ms) WHERE purge_after_ms IS NOT NULL;

-- Each applied change that carries an order (refresh, upgrade, release by refund), keyed so that a
-- redelivery is recognised and not applied twice.
CREATE TABLE instance_changes (
    instance_id    TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    order_id       TEXT    NOT NULL,
    order_line_id  TEXT    NOT NULL,
    scene          TEXT    NOT NULL,
    expire_time_ms BIGINT,
    product_id     TEXT,
    applied_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, kind, order_id, order_line_id, scene)
);

CREATE TABLE callbacks (
    id             BIGSERIAL PRIMARY KEY,
    received_at_ms BIGINT NOT NULL,
    interface      TEXT    NOT NULL,
    activity       TEXT,
    instance_id    TEXT,
    order_id       TEXT,
    test           BOOLEAN NOT NULL,
    raw_query      TEXT    NOT NULL,
    raw_body       BYTEA    NOT NULL,
    verification   TEXT    NOT NULL,
    nonce          TEXT,
    result_code    TEXT    NOT NULL,
    result_msg     TEXT    NOT NULL,
    response_body  BYTEA    NOT NULL,
    latency_us     BIGINT NOT NULL
);
CREATE INDEX callbacks_instance ON callbacks (instance_id);
CREATE INDEX callbacks_received ON callbacks (received_at_ms);

CREATE TABLE nonces (
    scope         TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at_ms);
