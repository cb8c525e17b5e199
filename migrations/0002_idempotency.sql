-- Idempotency keys of stock requests (deduct, batch deduct, restock). A key belongs to the
-- client (the token's subject) that sent it. The stored response is replayed for a retry
-- with the same request; `fingerprint` (SHA-256 of method, path and canonical JSON body)
-- tells a retry from another request reusing the key. Rows older than 24 hours are deleted
-- by the writes themselves, a few at a time.

CREATE TABLE IF NOT EXISTS idempotency_keys (
    subject     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (subject, key)
);

CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0002_idempotency.sql`), it
-- counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (2, '0002_idempotency', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
