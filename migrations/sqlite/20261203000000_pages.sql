-- Fewer pages written per commit and one ordered scan per timeline read (issue 10).
--
-- An event lived in three b-trees: the table, the index of its primary key and the index
-- of its dedupe key, which held every event although only scheduler events carry a key. A
-- note's commit wrote a page of each. Now an event lives in its primary key's b-tree alone
-- (a timeline read walks it in order instead of looking each row up in the table), and the
-- dedupe index holds only the events that have a key. Request keys, likewise, live in
-- their key's b-tree instead of a table plus an index on the key.

CREATE TABLE events_by_seq (
    incident_id    INTEGER NOT NULL REFERENCES incidents (id),
    seq            INTEGER NOT NULL,
    recorded_at    TEXT    NOT NULL,
    occurred_at    TEXT,
    actor_platform TEXT    NOT NULL,
    actor_id       TEXT    NOT NULL,
    actor_name     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    dedupe_key     TEXT,
    CONSTRAINT events_pkey PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;

INSERT INTO events_by_seq
SELECT incident_id, seq, recorded_at, occurred_at, actor_platform, actor_id, actor_name,
       kind, data, dedupe_key
FROM events;

DROP TABLE events;
ALTER TABLE events_by_seq RENAME TO events;

CREATE UNIQUE INDEX events_dedupe_key ON events (incident_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

CREATE TABLE requests_by_key (
    request_key TEXT    PRIMARY KEY,
    incident_id INTEGER,
    received_at TEXT    NOT NULL
) WITHOUT ROWID;

INSERT INTO requests_by_key SELECT request_key, incident_id, received_at FROM requests;

DROP TABLE requests;
ALTER TABLE requests_by_key RENAME TO requests;

CREATE INDEX requests_received ON requests (received_at);
