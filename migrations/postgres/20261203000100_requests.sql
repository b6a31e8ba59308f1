-- A request key is looked up by the key and pruned by age once an hour. The index on its
-- age cost a page written with every keyed command's commit (issue 10); the hourly prune
-- scans the table instead, which holds only the last day's keys.
DROP INDEX requests_received;
