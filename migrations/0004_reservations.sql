-- Checkout holds (README "Reservations"): a hold takes units out of a product's `available`
-- (`stock` minus the units of active holds that have not expired) until it is committed
-- (the units are deducted), released, or it expires. Expiry needs no job: a line counts
-- only while `holds_until` (its hold's `expires_at`) is in the future, by the database's
-- clock, in the same write transaction that checks what is available.

CREATE TABLE IF NOT EXISTS reservations (
    -- `res_...`
    id            TEXT    PRIMARY KEY,
    order_id      TEXT    NOT NULL,
    -- `active` until it is committed, released, or its expiry is announced (`expired`); an
    -- `active` hold whose `expires_at` has passed is expired already, whatever this says.
    status        TEXT    NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    -- Unix milliseconds, by the database's clock.
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    -- When it was committed, released or its expiry announced: finished holds are removed
    -- seven days later, a few at a time, by the holds' own writes.
    finished_at   INTEGER,
    -- The body of the commit's answer, given again to a second commit.
    commit_answer TEXT
);

CREATE INDEX IF NOT EXISTS reservations_order ON reservations (order_id, created_at);
CREATE INDEX IF NOT EXISTS reservations_created ON reservations (created_at);
-- Active holds by expiry: what has expired but is not yet announced.
CREATE INDEX IF NOT EXISTS reservations_expiring ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS reservations_finished ON reservations (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS reservation_lines (
    reservation_id TEXT    NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    -- While the hold is active: its `expires_at`; NULL once it has ended.
    holds_until    INTEGER,
    -- What its commit deducted.
    committed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (reservation_id, product_id)
);

-- A product's `reserved`: the lines still holding it, by expiry.
CREATE INDEX IF NOT EXISTS reservation_lines_holding ON reservation_lines (product_id, holds_until)
    WHERE holds_until IS NOT NULL;

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0004_reservations.sql`),
-- it counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (4, '0004_reservations', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
