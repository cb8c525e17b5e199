-- Events to order services (README "Events to order services"): a transactional outbox.
-- Every change writes its events here in its own transaction, one row per event and
-- receiver (`order_events_urls` at the time of the change), so a receiver that fails never
-- holds up another. The notifier component claims due rows under a lease, delivers them
-- signed (Standard Webhooks), and records the outcome. Per receiver and product, rows are
-- delivered in id (commit) order. Delivered rows are kept a day, then swept.

CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `evt_...`: the webhook-id, the same for every receiver and every retry of the event.
    event_id        TEXT    NOT NULL,
    receiver        TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    product_id      INTEGER NOT NULL,
    -- The exact JSON body sent and signed.
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds.
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    -- Which claim holds the lease: outcomes are recorded only by the claim that holds it.
    lease_token     TEXT,
    -- Unix milliseconds after which a failing row is given up as dead (72 hours).
    expires_at      INTEGER NOT NULL,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    -- Unix milliseconds.
    delivered_at    INTEGER,
    UNIQUE (event_id, receiver)
);

-- A receiver's line of a product, in order: its head is the first pending row.
CREATE INDEX IF NOT EXISTS outbox_line ON outbox (status, receiver, product_id, id);
-- Rows by status, oldest first (operators' listing).
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, id);
-- Delivered rows by age, for the sweep.
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered_at) WHERE status = 'delivered';

-- Which notifier, if any, is active (delivering, or waiting for retries): while one is,
-- changes do not call another. `active_until` is a heartbeat it keeps renewing.
CREATE TABLE IF NOT EXISTS notifier_state (
    name         TEXT    PRIMARY KEY,
    active_until INTEGER NOT NULL
);

INSERT OR IGNORE INTO notifier_state (name, active_until) VALUES ('delivery', 0);

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0003_outbox.sql`), it
-- counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (3, '0003_outbox', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
