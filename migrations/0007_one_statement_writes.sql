-- Writes that took several statements, each a call from the component into its host, made
-- one: SQLite runs the rest as triggers, inside the statement (README "Performance").
--
-- Nothing here holds data: a view with no rows, and triggers. A trigger's body is SQL, so
-- applied by hand (`spin up --sqlite @0007_one_statement_writes.sql`), this file creates
-- them whole or not at all, and again it changes nothing.

-- A stock write (a deduct, a batch, a hold, its commit or release, a restock) as rows of
-- one INSERT: one row per level it changes, and one that also carries each product's new
-- `stock` (the sum of its active levels after, computed by the writer from the levels it
-- read inside the same transaction). Each row moves its level's stock by `delta` and its
-- version on (a hold's level too, its stock unmoved); a row that moves stock, of a write
-- whose `reason` is given, is the ledger's row too; a row with `product_stock` sets the
-- product's stock and moves its version on. A row without `location_id` changes no level.
CREATE VIEW IF NOT EXISTS stock_writes (product_id, location_id, delta, stock_after,
                                        product_stock, reason, order_id, idempotency_key,
                                        transfer_id) AS
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER IF NOT EXISTS stock_writes_apply INSTEAD OF INSERT ON stock_writes
BEGIN
    UPDATE stock_levels SET stock = stock + NEW.delta, version = version + 1
    WHERE product_id = NEW.product_id AND location_id = NEW.location_id;
    INSERT INTO stock_ledger (product_id, location_id, delta, stock_after, reason, order_id,
                              idempotency_key, transfer_id, at)
    SELECT NEW.product_id, NEW.location_id, NEW.delta, NEW.stock_after, NEW.reason,
           NEW.order_id, NEW.idempotency_key, NEW.transfer_id,
           strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    WHERE NEW.delta <> 0 AND NEW.reason IS NOT NULL;
    UPDATE products SET stock = NEW.product_stock, version = version + 1,
                        updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    WHERE id = NEW.product_id AND NEW.product_stock IS NOT NULL;
END;

-- A kept answer's insert deletes a few keys past their retention (24 hours, 32 at a time),
-- so clean-up never makes one request slow and takes no statement of its own.
CREATE TRIGGER IF NOT EXISTS idempotency_keys_sweep AFTER INSERT ON idempotency_keys
BEGIN
    DELETE FROM idempotency_keys WHERE rowid IN (
        SELECT rowid FROM idempotency_keys
        WHERE created_at < CAST(strftime('%s', 'now') AS INTEGER) - 86400
        LIMIT 32);
END;

-- Recorded last, by the file itself: applied by hand, it counts as applied once it has run
-- whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (7, '0007_one_statement_writes', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
