-- Chat requests that changed something, keyed by the platform's own id (Slack trigger_id or
-- action, Discord interaction id): a redelivered request is recognised instead of re-done.
CREATE TABLE requests (
    request_key TEXT    PRIMARY KEY,
    incident_id BIGINT,
    received_at TEXT COLLATE "C" NOT NULL
);

CREATE INDEX requests_received ON requests (received_at);

-- The platform's id of the pinned status message the bot edits in place.
ALTER TABLE incidents ADD COLUMN status_message TEXT;
