-- The product catalogue and its stock ledger.
-- Like every file here, idempotent as plain SQL (README "Migrations"): the app applies it
-- (crates/inventory/src/store/migrations.rs), and applying it again, by hand or at every
-- start with `--sqlite @`, changes nothing.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sku         TEXT    UNIQUE,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- Exact money: integer minor units (cents), never a float.
    price_cents INTEGER NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000000),
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    category_id INTEGER CHECK (category_id IS NULL OR category_id >= 1),
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS products_category ON products (category_id, id);

-- Append-only: every change of a product's stock, so the deltas always sum to the stock.
CREATE TABLE IF NOT EXISTS stock_movements (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id      INTEGER NOT NULL,
    delta           INTEGER NOT NULL,
    stock_after     INTEGER NOT NULL CHECK (stock_after >= 0),
    reason          TEXT    NOT NULL,
    order_id        TEXT,
    idempotency_key TEXT,
    at              TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS stock_movements_product ON stock_movements (product_id, id);

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0001_products.sql`), it
-- counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (1, '0001_products', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
