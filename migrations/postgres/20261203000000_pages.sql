-- Fewer index entries written per event (issue 10): the dedupe key's unique index held every
-- event although only scheduler events carry a key; now it holds only those.

ALTER TABLE events DROP CONSTRAINT events_dedupe_key;

CREATE UNIQUE INDEX events_dedupe_key ON events (incident_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
