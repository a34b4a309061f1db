-- What Query Order returned for the order lines that created, upgraded or changed an instance.
CREATE TABLE orders (
    order_id              TEXT    NOT NULL,
    order_line_id         TEXT    NOT NULL,
    instance_id           TEXT    NOT NULL,
    -- Why it was fetched: new, upgrade or renewal_change.
    reason                TEXT    NOT NULL,
    order_type            TEXT,
    -- When the order was placed: a late fetch of an older order must not undo a newer one.
    create_time_ms        INTEGER,
    charging_mode         TEXT,
    product_id            TEXT,
    sku_code              TEXT,
    product_name          TEXT,
    linear_value          INTEGER,
    period_type           TEXT,
    period_number         INTEGER,
    expire_time_ms        INTEGER,
    amount                TEXT,
    amount_after_discount TEXT,
    customer_id           TEXT,
    buyer_json            TEXT,
    extend_params_json    TEXT    NOT NULL,
    raw_json              TEXT    NOT NULL,
    fetched_at_ms         INTEGER NOT NULL,
    PRIMARY KEY (order_id, order_line_id)
);
CREATE INDEX orders_instance ON orders (instance_id, fetched_at_ms);

-- The instance's current specification, from its latest fetched order.
ALTER TABLE instances ADD COLUMN sku_code TEXT;
ALTER TABLE instances ADD COLUMN charging_mode TEXT;
ALTER TABLE instances ADD COLUMN linear_value INTEGER;
