-- Times are RFC 3339 text in UTC with milliseconds (2026-01-01T10:00:00.000Z): fixed width,
-- so text order is time order on both backends. Flags are INTEGER 0/1: the Any driver cannot
-- read columns declared BOOLEAN.

CREATE TABLE incidents (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    channel              TEXT    NOT NULL,
    platform             TEXT    NOT NULL,
    severity             TEXT    NOT NULL,
    incident_type        TEXT,
    title                TEXT    NOT NULL,
    drill                INTEGER NOT NULL DEFAULT 0,
    declared_at          TEXT    NOT NULL,
    resolved_at          TEXT,
    final_summary_posted INTEGER NOT NULL DEFAULT 0,
    last_seq             INTEGER NOT NULL DEFAULT 0
);

-- One open incident per channel, enforced here as well as in the engine.
CREATE UNIQUE INDEX incidents_open_channel ON incidents (channel) WHERE resolved_at IS NULL;
CREATE INDEX incidents_channel ON incidents (channel, id);

CREATE TABLE events (
    incident_id    INTEGER NOT NULL REFERENCES incidents (id),
    seq            INTEGER NOT NULL,
    recorded_at    TEXT    NOT NULL,
    occurred_at    TEXT,
    actor_platform TEXT    NOT NULL,
    actor_id       TEXT    NOT NULL,
    actor_name     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    -- JSON of the whole event kind, tag included.
    data           TEXT    NOT NULL,
    dedupe_key     TEXT,
    CONSTRAINT events_pkey PRIMARY KEY (incident_id, seq),
    CONSTRAINT events_dedupe_key UNIQUE (incident_id, dedupe_key)
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER REFERENCES incidents (id),
    channel         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    next_attempt_at TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TEXT,
    receipt         TEXT,
    last_error      TEXT
);

-- Only undelivered rows are indexed: the worker's scan stays small however long the history.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;

CREATE TABLE operations (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    operation   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    object_name TEXT    NOT NULL,
    backend     TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('queued', 'launched', 'finished')),
    launched_at TEXT,
    finished_at TEXT,
    CONSTRAINT operations_pkey PRIMARY KEY (incident_id, operation),
    -- A deterministic object name can be created once per backend, whatever retries happen.
    CONSTRAINT operations_object_name UNIQUE (backend, object_name)
);

CREATE INDEX operations_unfinished ON operations (incident_id, operation) WHERE status <> 'finished';
