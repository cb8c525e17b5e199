-- The app's clock (README "Time-driven work"), a table of its own. Until this file, the
-- release's 0004 added these as columns of `notifier_state` with ALTER TABLE, which fails
-- when applied a second time; databases that ran it keep those columns, unused.
--
-- `wake_at`: when the notifier should next be woken for events, NULL when nothing is
-- pending. A change that writes events sets it to now; the notifier sets it to now when it
-- takes the active role (so a notifier that dies leaves work due) and, when it stands down,
-- to the moment the next line of events comes due. Every request that opens the database
-- reads it, with the holds that expired but are not yet announced, in one cheap query.
-- `watched_until`: a request that finds work due while a notifier holds the role watches it
-- (one request at a time, until this): if its heartbeat runs out (the notifier died with
-- its process), the watcher calls another.
CREATE TABLE IF NOT EXISTS notifier_clock (
    name          TEXT    PRIMARY KEY,
    wake_at       INTEGER,
    watched_until INTEGER NOT NULL DEFAULT 0
);

-- Events already pending (a database from an earlier release) are due at once; a second
-- run finds the row and moves nothing.
INSERT INTO notifier_clock (name, wake_at)
SELECT 'delivery', CASE WHEN EXISTS (SELECT 1 FROM outbox WHERE status = 'pending') THEN 0 END
WHERE NOT EXISTS (SELECT 1 FROM notifier_clock WHERE name = 'delivery');

-- Recorded last, by the file itself: applied by hand (`spin up --sqlite @0005_notifier_clock.sql`),
-- it counts as applied once it has run whole.
INSERT OR IGNORE INTO schema_migrations (version, name, applied_at)
VALUES (5, '0005_notifier_clock', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
