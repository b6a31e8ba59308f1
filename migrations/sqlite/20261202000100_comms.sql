-- Customer communication: publications to the status page travel the outbox on the
-- `statuspage` channel; the receipt of an incident's first delivered one is the Statuspage
-- incident id later publications update, read back through this index.
CREATE INDEX outbox_statuspage ON outbox (incident_id, id) WHERE channel = 'statuspage';
