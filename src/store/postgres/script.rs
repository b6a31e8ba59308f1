//! A whole batch of commits as one PostgreSQL script: `BEGIN`, every commit's statements with
//! their values written in as literals, `COMMIT`, sent in one simple-query round trip.
//!
//! The writer's savepoint path needs about eight round trips per commit, one after another on
//! one connection, and at a few hundred commits a second that serial wait was the whole
//! latency. The script runs the same statements (the texts of `sql.rs`) in the same order. It
//! has no way to tell which commit failed, so any error rolls the whole script back and the
//! writer runs the batch again through the savepoint path, which answers each commit with its
//! own error. A statement that must change a row (the sequence claim, an outbox give-up, an
//! operation's progress) is wrapped so that changing none is an error: `1 / COUNT(*)` over its
//! `RETURNING` rows divides by zero.
//!
//! Literals: strings are quoted with `'` doubled, which is exact under
//! `standard_conforming_strings = on` (the writer sets it on its connection); NUL, which no
//! PostgreSQL text can hold, is refused before a script is built.

use std::fmt::Write;

use super::{Commit, Committed, GiveUp, OperationChange, Target, fmt_time, refuse_nul, sql};

enum Lit<'a> {
    Int(i64),
    Text(&'a str),
    Owned(String),
    Null,
    Bool(bool),
}

impl<'a> From<Option<&'a str>> for Lit<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Lit::Null, Lit::Text)
    }
}

#[derive(Default)]
pub(super) struct Script {
    text: String,
}

impl Script {
    /// `sql` with each `$n` replaced by the literal `args[n - 1]`.
    fn push(&mut self, sql: &str, args: &[Lit<'_>]) {
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            self.text.push_str(&rest[..at]);
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len() - at - 1, |end| end);
            let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
            match n.checked_sub(1).and_then(|i| args.get(i)) {
                Some(arg) => self.literal(arg),
                // Not a placeholder of ours: keep it as written.
                None => self.text.push_str(&rest[at..at + 1 + digits]),
            }
            rest = &rest[at + 1 + digits..];
        }
        self.text.push_str(rest);
        self.text.push_str(";\n");
    }

    /// Like [`Script::push`], and an error when the statement changes no row.
    fn push_must_change(&mut self, sql: &str, args: &[Lit<'_>]) {
        self.text.push_str("WITH changed AS (");
        let returning = sql.contains(" RETURNING ");
        self.push(sql, args);
        self.text.truncate(self.text.len() - 2);
        if !returning {
            self.text.push_str(" RETURNING 1");
        }
        self.text.push_str(") SELECT 1 / COUNT(*) FROM changed;\n");
    }

    fn literal(&mut self, arg: &Lit<'_>) {
        match arg {
            Lit::Int(n) => {
                let _ = write!(self.text, "{n}");
            }
            Lit::Text(s) => self.quoted(s),
            Lit::Owned(s) => self.quoted(s),
            Lit::Null => self.text.push_str("NULL"),
            Lit::Bool(b) => self.text.push_str(if *b { "TRUE" } else { "FALSE" }),
        }
    }

    fn quoted(&mut self, s: &str) {
        self.text.reserve(s.len() + 2);
        self.text.push('\'');
        for (i, part) in s.split('\'').enumerate() {
            if i > 0 {
                self.text.push_str("''");
            }
            self.text.push_str(part);
        }
        self.text.push('\'');
    }

    /// The script for `commits` and what each would return, or `None` when one of them needs
    /// the savepoint path (it would be refused: let that path say why).
    pub(super) fn batch<'c>(
        commits: impl Iterator<Item = &'c Commit>,
    ) -> Option<(String, Vec<Committed>)> {
        let commits: Vec<&Commit> = commits.collect();
        let mut script = Script::default();
        script.text.push_str("BEGIN;\n");
        let locked = super::incidents_to_lock(commits.iter().copied());
        if !locked.is_empty() {
            let ids: Vec<String> = locked.iter().map(i64::to_string).collect();
            let array = format!("ARRAY[{}]::BIGINT[]", ids.join(","));
            script.push(&sql::LOCK_INCIDENTS.replace("$1", &array), &[]);
        }
        let mut results = Vec::new();
        for commit in commits {
            results.push(script.commit(commit)?);
        }
        script.text.push_str("COMMIT;\n");
        Some((script.text, results))
    }

    /// The statements of [`super::postgres`]'s `apply`, in its order.
    fn commit(&mut self, commit: &Commit) -> Option<Committed> {
        let Commit {
            target,
            events,
            posts,
            operations,
            projection: p,
            request_key,
            gave_up,
            chain: _,
        } = commit;
        refuse_nul(target, events, posts, p, request_key.as_deref()).ok()?;
        let count = i64::try_from(events.len()).ok()?;
        let resolved = p.resolved_at.map(fmt_time);
        let declared = fmt_time(p.declared_at);
        let (id, first_seq) = match target {
            Target::New {
                id,
                channel,
                platform,
            } => {
                self.push(
                    sql::INSERT_INCIDENT,
                    &[
                        Lit::Int(*id),
                        Lit::Text(channel),
                        Lit::Text(platform),
                        Lit::Text(&p.severity),
                        p.incident_type.as_deref().into(),
                        Lit::Text(&p.title),
                        Lit::Bool(p.drill),
                        Lit::Text(&declared),
                        resolved.as_deref().into(),
                        Lit::Bool(p.final_summary_posted),
                        Lit::Int(count),
                    ],
                );
                (*id, 1)
            }
            Target::Existing { id, expected_seq } => {
                self.push_must_change(
                    sql::CLAIM_SEQUENCE,
                    &[
                        Lit::Int(expected_seq + count),
                        Lit::Int(*id),
                        Lit::Int(*expected_seq),
                    ],
                );
                self.push(
                    sql::UPDATE_PROJECTION,
                    &[
                        Lit::Text(&p.severity),
                        p.incident_type.as_deref().into(),
                        Lit::Text(&p.title),
                        Lit::Bool(p.drill),
                        Lit::Text(&declared),
                        resolved.as_deref().into(),
                        Lit::Bool(p.final_summary_posted),
                        Lit::Int(*id),
                    ],
                );
                (*id, expected_seq + 1)
            }
        };
        let at = fmt_time(events.first().map_or(p.declared_at, |e| e.recorded_at));
        if let Some(key) = request_key {
            self.push(
                sql::INSERT_REQUEST,
                &[Lit::Text(key), Lit::Int(id), Lit::Text(&at)],
            );
        }
        if let Some(GiveUp {
            outbox,
            claim_token,
            error,
        }) = gave_up
        {
            self.push_must_change(
                sql::GIVE_UP,
                &[
                    Lit::Text(&at),
                    Lit::Text(error),
                    Lit::Int(*outbox),
                    Lit::Text(claim_token),
                ],
            );
        }
        let seqs: Vec<i64> = (first_seq..).take(events.len()).collect();
        if !events.is_empty() {
            let mut args = Vec::with_capacity(events.len() * sql::EVENT_COLUMNS);
            for (ev, seq) in events.iter().zip(&seqs) {
                let data = serde_json::to_string(&ev.kind).ok()?;
                args.extend([
                    Lit::Int(id),
                    Lit::Int(*seq),
                    Lit::Owned(fmt_time(ev.recorded_at)),
                    ev.occurred_at.map(fmt_time).map_or(Lit::Null, Lit::Owned),
                    Lit::Text(&ev.actor.platform),
                    Lit::Text(&ev.actor.id),
                    Lit::Text(&ev.actor.name),
                    Lit::Text(ev.kind.name()),
                    Lit::Owned(data),
                    ev.dedupe_key.as_deref().into(),
                ]);
            }
            self.push(&sql::event_insert_sql(events.len()), &args);
        }
        for post in posts {
            let created = fmt_time(post.created_at);
            self.push(
                sql::INSERT_POST,
                &[
                    Lit::Int(id),
                    Lit::Text(&post.channel),
                    Lit::Text(&post.body),
                    Lit::Text(&created),
                    Lit::Text(&created),
                    Lit::Text(if post.status { "status" } else { "post" }),
                ],
            );
        }
        for change in operations {
            match change {
                OperationChange::Queue {
                    operation,
                    kind,
                    object_name,
                    backend,
                    spec,
                } => self.push(
                    sql::QUEUE_OPERATION,
                    &[
                        Lit::Int(id),
                        Lit::Text(operation),
                        Lit::Text(kind),
                        Lit::Text(object_name),
                        Lit::Text(backend),
                        Lit::Text(spec),
                    ],
                ),
                OperationChange::Launched { operation, at }
                | OperationChange::Finished { operation, at } => {
                    let (status, text) = match change {
                        OperationChange::Launched { .. } => ("launched", sql::OPERATION_LAUNCHED),
                        _ => ("finished", sql::OPERATION_FINISHED),
                    };
                    self.push_must_change(
                        text,
                        &[
                            Lit::Text(status),
                            Lit::Owned(fmt_time(*at)),
                            Lit::Int(id),
                            Lit::Text(operation),
                        ],
                    );
                }
            }
        }
        Some(Committed { incident: id, seqs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str, args: &[Lit<'_>]) -> String {
        let mut s = Script::default();
        s.push(sql, args);
        s.text
    }

    #[test]
    fn placeholders_become_literals_with_quotes_doubled() {
        assert_eq!(
            text(
                "INSERT INTO t VALUES ($1, $2, $10, $3, $4)",
                &[
                    Lit::Int(-7),
                    Lit::Text("it's \\n"),
                    Lit::Null,
                    Lit::Bool(true),
                    Lit::Owned("''".into()),
                    Lit::Null,
                    Lit::Null,
                    Lit::Null,
                    Lit::Null,
                    Lit::Text("tenth"),
                ]
            ),
            "INSERT INTO t VALUES (-7, 'it''s \\n', 'tenth', NULL, TRUE);\n"
        );
    }

    #[test]
    fn a_statement_that_must_change_a_row_fails_when_it_changes_none() {
        let mut s = Script::default();
        s.push_must_change(
            "UPDATE t SET a = $1 WHERE id = $2",
            &[Lit::Int(1), Lit::Int(2)],
        );
        assert_eq!(
            s.text,
            "WITH changed AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING 1) \
             SELECT 1 / COUNT(*) FROM changed;\n"
        );
        let mut s = Script::default();
        s.push_must_change("UPDATE t SET a = 1 RETURNING channel", &[]);
        assert_eq!(
            s.text,
            "WITH changed AS (UPDATE t SET a = 1 RETURNING channel) SELECT 1 / COUNT(*) FROM changed;\n"
        );
    }
}
