-- Stock per location (README "Locations"): warehouses and stores, a stock level per product
-- and location, holds and ledger rows that name their location. A product's `stock` is the
-- sum of its levels at active locations (`products.stock` keeps that sum, recomputed from the
-- levels by every write that changes one).
--
-- An installation from before this file gets the `default` location with every product's
-- stock, every hold and every ledger row at it, so a client that never names a location
-- sees no change. The rows move once: only while this file is not yet recorded, and only
-- those not moved already, so applying it again, by hand or at every start, changes nothing.
-- `reservation_lines` and `stock_movements` are kept as they were, and no longer written:
-- `hold_allocations` and `stock_ledger` take their place (no ALTER: README "Migrations").

CREATE TABLE IF NOT EXISTS locations (
    -- Case-sensitive, never changes.
    id         TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Lower is chosen first.
    priority   INTEGER NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000000),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version    INTEGER NOT NULL DEFAULT 1,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS locations_order ON locations (priority, id);

-- Always there: renamed or re-prioritized, never deactivated or deleted.
INSERT OR IGNORE INTO locations (id, name, priority, active, version, created_at, updated_at)
VALUES ('default', 'Default location', 100, 1, 1,
        strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- A product's stock at one location; `version` grows with every change to the level.
CREATE TABLE IF NOT EXISTS stock_levels (
    product_id  INTEGER NOT NULL,
    location_id TEXT    NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    version     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (product_id, location_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS stock_levels_location ON stock_levels (location_id, product_id);

INSERT INTO stock_levels (product_id, location_id, stock, version)
SELECT id, 'default', stock, 1 FROM products
WHERE NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 6)
  AND NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = products.id);

-- Where a hold's units are held: one row per product and location, in the order taken
-- (rowid). It holds while `holds_until` (its hold's `expires_at`) is in the future, by the
-- database's clock, and counts in `reserved` at that level only.
CREATE TABLE IF NOT EXISTS hold_allocations (
    reservation_id TEXT    NOT NULL,
    product_id     INTEGER NOT NULL,
    location_id    TEXT    NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    -- While the hold is active: its `expires_at`; NULL once it has ended.
    holds_until    INTEGER,
    -- What its commit deducted here.
    committed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (reservation_id, product_id, location_id)
);

-- A level's `reserved`: the allocations still holding it, by expiry.
CREATE INDEX IF NOT EXISTS hold_allocations_holding
    ON hold_allocations (product_id, location_id, holds_until) WHERE holds_until IS NOT NULL;

INSERT INTO hold_allocations (reservation_id, product_id, location_id, quantity, holds_until, committed)
SELECT reservation_id, product_id, 'default', quantity, holds_until, committed
FROM reservation_lines
WHERE NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 6)
  AND NOT EXISTS (SELECT 1 FROM hold_allocations a
                  WHERE a.reservation_id = reservation_lines.reservation_id
                    AND a.product_id = reservation_lines.product_id)
ORDER BY rowid;

-- Append-only: every change of a level's stock, so per level the deltas always sum to its
-- stock. A transfer writes two rows with the same `transfer_id`.
CREATE TABLE IF NOT EXISTS stock_ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id      INTEGER NOT NULL,
    location_id     TEXT    NOT NULL,
    delta           INTEGER NOT NULL,
    -- The level's stock after the change.
    stock_after     INTEGER NOT NULL CHECK (stock_after >= 0),
    reason          TEXT    NOT NULL,
    order_id        TEXT,
    idempotency_key TEXT,
    transfer_id     TEXT,
    at              TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS stock_ledger_product ON stock_ledger (product_id, id);
CREATE INDEX IF NOT EXISTS stock_ledger_level ON stock_ledger (product_id, location_id, id);

-- The earlier ledger, with its ids, at `default`.
INSERT INTO stock_ledger (id, product_id, location_id, delta, stock_after, reason, order_id,
                          idempotency_key, transfer_id, at)
SELECT id, product_id, 'default', delta, stock_after, reason, order_id, idempotency_key, NULL, at
FROM stock_movements
WHERE NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 6)
  AND NOT EXISTS (SELECT 1 FROM stock_ledger l WHERE l.id = stock_movements.id);

-- Stock moved between two locations of a product (`trf_...`): its two ledger rows carry its
-- id.
CREATE TABLE IF NOT EXISTS transfers (
    id            TEXT    PRIMARY KEY,
    product_id    INTEGER NOT NULL,
    from_location TEXT    NOT NULL,
    to_location   TEXT    NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    reason        TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS transfers_product ON transfers (product_id, created_at);

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0006_locations.sql`),
-- it counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (6, '0006_locations', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
