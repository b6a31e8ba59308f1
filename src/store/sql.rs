//! The statements, one text for both backends (`$n` placeholders; SQLite's side turns them
//! into `?n`). Times are fixed-width RFC 3339 text, so text order is time order.

use std::sync::LazyLock;

pub const NEXT_INCIDENT_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 AS next FROM incidents";

pub const INCIDENT: &str = "SELECT id, channel, platform, severity, incident_type, title, drill, \
     declared_at, resolved_at, final_summary_posted, last_seq FROM incidents WHERE id = $1";

pub const INCIDENT_EXISTS: &str = "SELECT id FROM incidents WHERE id = $1";

pub const OPEN_INCIDENT_IN: &str =
    "SELECT id FROM incidents WHERE channel = $1 AND resolved_at IS NULL";

pub const LATEST_INCIDENT_IN: &str =
    "SELECT id FROM incidents WHERE channel = $1 ORDER BY id DESC LIMIT 1";

pub const DRILL_INCIDENTS: &str = "SELECT id FROM incidents WHERE drill ORDER BY id";

/// A notice key is taken once; the second writer inserts nothing (and posts nothing).
pub const INSERT_NOTICE: &str = "INSERT INTO notices (notice_key, created_at) VALUES ($1, $2) \
     ON CONFLICT (notice_key) DO NOTHING";

pub const LAST_SEQS: &str = "SELECT id, last_seq FROM incidents";

pub const ACTIVE_INCIDENTS: &str = "SELECT id, last_seq FROM incidents \
     WHERE resolved_at IS NULL OR NOT final_summary_posted ORDER BY id";

/// Every incident, newest first (the web view's list).
pub const ALL_INCIDENTS: &str = "SELECT id, last_seq FROM incidents ORDER BY id DESC";

/// Decoders read these by position.
const EVENT_SELECT: &str = "SELECT incident_id, seq, recorded_at, occurred_at, actor_platform, \
     actor_id, actor_name, data FROM events";
pub const EVENT_COLUMN_NAMES: [&str; 8] = [
    "incident_id",
    "seq",
    "recorded_at",
    "occurred_at",
    "actor_platform",
    "actor_id",
    "actor_name",
    "data",
];

pub static EVENTS: LazyLock<String> =
    LazyLock::new(|| format!("{EVENT_SELECT} WHERE incident_id = $1 ORDER BY seq"));

pub static EVENTS_AFTER: LazyLock<String> =
    LazyLock::new(|| format!("{EVENT_SELECT} WHERE incident_id = $1 AND seq > $2 ORDER BY seq"));

/// The latest events before a sequence number, newest first (one page of a timeline).
pub static EVENTS_BEFORE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{EVENT_SELECT} WHERE incident_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT CAST($3 AS BIGINT)"
    )
});

/// A `LIMIT` is written `CAST($n AS BIGINT)`: SQLite plans with the value bound to a bare
/// `LIMIT $n` and so prepares the statement again each time one is bound (about 350 000
/// instructions for an outbox claim); an expression keeps the plan. PostgreSQL reads both alike.
pub static EVENTS_CHUNK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{EVENT_SELECT} WHERE incident_id = $1 AND seq > $2 ORDER BY seq LIMIT CAST($3 AS BIGINT)"
    )
});

// Assignments read the row as it was, so previous_claim gets the earlier holder.
pub const CLAIM_OPERATIONS: &str = "UPDATE operations SET previous_claim = claim_token, \
     claim_token = $1, lease_until = $2 WHERE status IN ('queued', 'launched') \
     AND (claim_token = $1 OR lease_until IS NULL OR lease_until < $3) \
     RETURNING incident_id, operation, kind, object_name, backend, spec, status, \
     launched_at, claim_token, previous_claim";

pub const RELEASE_OPERATIONS: &str = "UPDATE operations SET lease_until = NULL \
     WHERE claim_token = $1 AND status <> 'finished'";

pub const UNFINISHED_OPERATIONS: &str = "SELECT incident_id, operation, kind, object_name, \
     backend, spec, status, launched_at FROM operations WHERE status IN ('queued', 'launched') \
     ORDER BY incident_id, operation";

/// Undelivered and not given up, for rows of `alias`.
fn pending(alias: &str) -> String {
    format!("{alias}.delivered_at IS NULL AND {alias}.gave_up_at IS NULL")
}

/// The claim of the due rows of `lane` that nothing holds back (`held_back`: conditions on the
/// candidate `o`, each starting with `AND`). `lock` is PostgreSQL's ` FOR UPDATE SKIP LOCKED`
/// (rows another worker holds are skipped, not waited for); SQLite has one writer, so its
/// UPDATE is atomic without it.
fn claim_text(lane: &str, held_back: &str, lock: &str) -> String {
    format!(
        "UPDATE outbox SET claim_token = $1, lease_until = $2, sends = sends + 1 \
         WHERE id IN (SELECT o.id FROM outbox o WHERE o.lane = '{lane}' AND {o} \
             AND o.next_attempt_at <= $3 AND (o.lease_until IS NULL OR o.lease_until < $3) \
             {held_back}AND o.channel = COALESCE($5, o.channel) \
             ORDER BY o.id LIMIT CAST($4 AS BIGINT){lock}) \
         RETURNING id, incident_id, channel, body, attempts, sends, created_at, lane, claim_token",
        o = pending("o"),
    )
}

/// A post of the candidate's channel committed before it is still pending (`alias` names
/// that post's row).
fn earlier_post_pending(alias: &str) -> String {
    format!(
        "AND NOT EXISTS (SELECT 1 FROM outbox {alias} WHERE {alias}.channel = o.channel \
         AND {alias}.lane = 'post' AND {pending} AND {alias}.id < o.id) ",
        pending = pending(alias),
    )
}

/// The head of each channel's post lane: nothing older of the channel is pending, so posts
/// leave in commit order however many workers claim.
fn claim_posts_text(lock: &str) -> String {
    claim_text("post", &earlier_post_pending("e"), lock)
}

/// The newest pending status post of each incident, unless one of its status posts is in
/// flight (one edit at a time per incident, always the latest content) or a post committed
/// before it is still pending (the status follows what it reports). Posts never wait for a
/// status post.
fn claim_status_text(lock: &str) -> String {
    let newer_or_in_flight = format!(
        "AND NOT EXISTS (SELECT 1 FROM outbox n WHERE n.incident_id = o.incident_id \
         AND n.lane = 'status' AND {n} AND (n.id > o.id OR n.lease_until >= $3)) ",
        n = pending("n"),
    );
    claim_text(
        "status",
        &(newer_or_in_flight + &earlier_post_pending("p")),
        lock,
    )
}

/// Post lane then status lane, for SQLite (`[0]`) and PostgreSQL (`[1]`).
pub static CLAIMS: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
    ["", " FOR UPDATE SKIP LOCKED"].map(|lock| [claim_posts_text(lock), claim_status_text(lock)])
});

/// The lane's failures carry over to the post that replaces them, so an edit that keeps
/// failing reaches the delivery bound however often the status changes.
pub const CARRIED_ATTEMPTS: &str = "SELECT COALESCE(MAX(attempts), 0) AS carried FROM outbox \
     WHERE lane = 'status' AND incident_id = $2 AND id < $3 \
     AND delivered_at IS NULL AND gave_up_at IS NULL \
     AND (lease_until IS NULL OR lease_until < $1)";

pub const CARRY_ATTEMPTS: &str =
    "UPDATE outbox SET attempts = attempts + $1, sends = sends + $1 WHERE id = $2";

pub const SUPERSEDE_STATUS: &str = "UPDATE outbox SET delivered_at = $1, receipt = 'superseded', \
     lease_until = NULL WHERE lane = 'status' AND incident_id = $2 AND id < $3 \
     AND delivered_at IS NULL AND gave_up_at IS NULL \
     AND (lease_until IS NULL OR lease_until < $1)";

pub const COUNT_STATUS_CLAIM: &str = "UPDATE incidents SET status_claims = status_claims + 1 \
     WHERE id = $1 AND status_message IS NULL RETURNING status_claims";

pub const RECORD_DELIVERY: &str = "UPDATE outbox SET delivered_at = $1, receipt = $2, \
     lease_until = NULL WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL \
     AND gave_up_at IS NULL";

pub const REMEMBER_STATUS_MESSAGE: &str = "UPDATE incidents SET status_message = $1 WHERE id = $2";

pub const RECORD_FAILURE: &str = "UPDATE outbox SET attempts = attempts + 1, \
     next_attempt_at = $1, last_error = $2, lease_until = NULL \
     WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL AND gave_up_at IS NULL";

pub const PENDING_ROWS: &str = "SELECT id, channel, lane, attempts, next_attempt_at FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL ORDER BY id";

pub const GIVEN_UP: &str =
    "SELECT channel, last_error FROM outbox WHERE gave_up_at IS NOT NULL ORDER BY id";

pub const REQUEST_SEEN: &str = "SELECT request_key FROM requests WHERE request_key = $1";

pub const FORGET_REQUESTS: &str = "DELETE FROM requests WHERE received_at < $1";

pub const STATUS_MESSAGE: &str = "SELECT status_message FROM incidents WHERE id = $1";

pub const STATUSPAGE_INCIDENT: &str = "SELECT receipt FROM outbox WHERE incident_id = $1 \
     AND channel = 'statuspage' AND delivered_at IS NOT NULL AND receipt IS NOT NULL \
     ORDER BY id LIMIT 1";

pub const OUTBOX_BACKLOG: &str = "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
     WHERE delivered_at IS NULL AND gave_up_at IS NULL";

pub const PENDING_POSTS: &str =
    "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL";

pub const RELEASE_OUTBOX_LEASES: &str =
    "UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL";

pub const RELEASE_OPERATION_LEASES: &str =
    "UPDATE operations SET lease_until = NULL WHERE lease_until IS NOT NULL";

pub const INSERT_INCIDENT: &str = "INSERT INTO incidents (id, channel, platform, severity, \
     incident_type, title, drill, declared_at, resolved_at, final_summary_posted, last_seq) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// PostgreSQL: a batch that changes several incidents locks their rows first, lowest id
/// first, as the outbox's claim does; taken in the batch's own order, they deadlocked with
/// it (each side held one row and waited a second for the other's).
pub const LOCK_INCIDENTS: &str =
    "SELECT id FROM incidents WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Claiming the new sequence numbers first both detects a concurrent writer and, on
/// PostgreSQL, takes the row lock that makes the next writer wait for us and then find
/// `last_seq` moved.
pub const CLAIM_SEQUENCE: &str =
    "UPDATE incidents SET last_seq = $1 WHERE id = $2 AND last_seq = $3 RETURNING channel";

/// Most commands (a note, a tick) change none of these: the row, and the index of open
/// incidents by channel that `resolved_at` belongs to, are then left unwritten.
pub const UPDATE_PROJECTION: &str = "UPDATE incidents SET severity = $1, incident_type = $2, \
     title = $3, drill = $4, declared_at = $5, resolved_at = $6, final_summary_posted = $7 \
     WHERE id = $8 AND (severity IS DISTINCT FROM $1 OR incident_type IS DISTINCT FROM $2 \
     OR title IS DISTINCT FROM $3 OR drill IS DISTINCT FROM $4 \
     OR declared_at IS DISTINCT FROM $5 OR resolved_at IS DISTINCT FROM $6 \
     OR final_summary_posted IS DISTINCT FROM $7)";

pub const INSERT_REQUEST: &str =
    "INSERT INTO requests (request_key, incident_id, received_at) VALUES ($1, $2, $3)";

pub const GIVE_UP: &str = "UPDATE outbox SET gave_up_at = $1, last_error = $2, \
     attempts = attempts + 1, lease_until = NULL \
     WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL AND gave_up_at IS NULL";

pub const INSERT_POST: &str = "INSERT INTO outbox (incident_id, channel, body, created_at, \
     next_attempt_at, attempts, lane) VALUES ($1, $2, $3, $4, $5, 0, $6)";

pub const QUEUE_OPERATION: &str = "INSERT INTO operations (incident_id, operation, kind, \
     object_name, backend, spec, status) VALUES ($1, $2, $3, $4, $5, $6, 'queued')";

pub const OPERATION_LAUNCHED: &str = "UPDATE operations SET status = $1, launched_at = $2 \
     WHERE incident_id = $3 AND operation = $4";

pub const OPERATION_FINISHED: &str = "UPDATE operations SET status = $1, finished_at = $2 \
     WHERE incident_id = $3 AND operation = $4";

/// Multi-row insert sizes: any count is a sum of a few of them, so a long commit costs few
/// statements while the set of distinct statements (and cached prepared statements) stays
/// small. 64 rows × 10 parameters is far below either backend's parameter limit.
pub const EVENT_CHUNKS: [usize; 4] = [64, 16, 4, 1];
pub const EVENT_COLUMNS: usize = 10;

static EVENT_INSERTS: LazyLock<[String; 4]> = LazyLock::new(|| EVENT_CHUNKS.map(event_insert_sql));

/// The insert of `rows` events (one of [`EVENT_CHUNKS`]).
pub fn event_insert(rows: usize) -> &'static str {
    let i = EVENT_CHUNKS.iter().position(|&n| n == rows).unwrap_or(3);
    &EVENT_INSERTS[i]
}

/// The insert of any number of rows, for statements sent once with literal values.
pub fn event_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (incident_id, seq, recorded_at, occurred_at, actor_platform, \
         actor_id, actor_name, kind, data, dedupe_key) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..EVENT_COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * EVENT_COLUMNS + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}
