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

use crate::store::plan::{Arg, EventInserts, Plan};
use crate::store::{Commit, Committed, sql};

#[derive(Default)]
pub(in crate::store) struct Script {
    text: String,
}

impl Script {
    /// `sql` with each `$n` replaced by the literal `args[n - 1]`.
    fn push(&mut self, sql: &str, args: &[Arg<'_>]) {
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
    fn push_must_change(&mut self, sql: &str, args: &[Arg<'_>]) {
        self.text.push_str("WITH changed AS (");
        let returning = sql.contains(" RETURNING ");
        self.push(sql, args);
        self.text.truncate(self.text.len() - 2);
        if !returning {
            self.text.push_str(" RETURNING 1");
        }
        self.text.push_str(") SELECT 1 / COUNT(*) FROM changed;\n");
    }

    fn literal(&mut self, arg: &Arg<'_>) {
        match arg {
            Arg::Int(n) => {
                let _ = write!(self.text, "{n}");
            }
            Arg::Text(s) => self.quoted(s),
            Arg::Null => self.text.push_str("NULL"),
            Arg::Bool(b) => self.text.push_str(if *b { "TRUE" } else { "FALSE" }),
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
    pub(in crate::store) fn batch<'c>(
        commits: impl Iterator<Item = &'c Commit>,
    ) -> Option<(String, Vec<Committed>)> {
        let commits: Vec<&Commit> = commits.collect();
        let mut script = Script::default();
        script.text.push_str("BEGIN;\n");
        let locked = crate::store::incidents_to_lock(commits.iter().copied());
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

    /// The statements of a commit's [`Plan`], those that must change a row wrapped to fail
    /// when they change none.
    fn commit(&mut self, commit: &Commit) -> Option<Committed> {
        let plan = Plan::of(commit, EventInserts::One).ok()?;
        for step in &plan.steps {
            match step.must_change {
                Some(_) => self.push_must_change(&step.text, &step.args),
                None => self.push(&step.text, &step.args),
            }
        }
        Some(plan.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str, args: &[Arg<'_>]) -> String {
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
                    Arg::Int(-7),
                    "it's \\n".into(),
                    Arg::Null,
                    Arg::Bool(true),
                    String::from("''").into(),
                    Arg::Null,
                    Arg::Null,
                    Arg::Null,
                    Arg::Null,
                    "tenth".into(),
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
            &[Arg::Int(1), Arg::Int(2)],
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
