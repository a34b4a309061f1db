-- Background jobs claimed with a lease, so each runs once across replicas and a crashed replica's jobs
-- are taken over when their lease expires.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    -- Enqueueing the same (kind, dedupe_key) twice keeps one job; NULL never collides.
    dedupe_key     TEXT,
    payload        TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    run_at_ms      INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    last_error     TEXT,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    UNIQUE (kind, dedupe_key)
);
CREATE INDEX jobs_due ON jobs (kind, state, run_at_ms);
