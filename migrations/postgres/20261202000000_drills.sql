-- Posts drbot makes outside any incident (a drill due reminder), each once per key: the
-- notice row and its outbox row commit in one transaction, so however many replicas and
-- restarts, the second writer finds the key taken and posts nothing.
CREATE TABLE notices (
    notice_key TEXT PRIMARY KEY,
    created_at TEXT COLLATE "C" NOT NULL
);
