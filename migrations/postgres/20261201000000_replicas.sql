-- Several replicas on one database: outbox rows and operations are claimed with a token and a
-- lease before anyone works on them, and a delivery that keeps failing is given up.

-- Posts of a channel leave in commit order; status edits are a lane of their own, coalesced,
-- so a failing edit never holds back progress posts.
ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT 'post';
UPDATE outbox SET lane = 'status' WHERE body LIKE '{"kind":"status"%';
-- The claim: only the holder of claim_token may record the result, until lease_until.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT COLLATE "C";
-- Claims so far. A claim is recorded before the send starts, so sends > attempts means a
-- send whose result was never recorded: it may have been delivered, look before posting.
ALTER TABLE outbox ADD COLUMN sends BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN gave_up_at TEXT COLLATE "C";

DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (channel, lane, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Status posts claimed while the incident had no status message yet: a second one must look
-- for the first in the channel before creating a status message.
ALTER TABLE incidents ADD COLUMN status_claims BIGINT NOT NULL DEFAULT 0;

-- One replica launches and watches an operation at a time.
ALTER TABLE operations ADD COLUMN claim_token TEXT;
-- The holder before the last claim: a claim that replaces another holder is a takeover.
ALTER TABLE operations ADD COLUMN previous_claim TEXT;
ALTER TABLE operations ADD COLUMN lease_until TEXT COLLATE "C";
