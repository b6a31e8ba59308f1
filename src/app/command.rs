//! The command path: a `/dr` line or a button, decided on the channel's incident with the
//! channel's turn held, answered from state, refused, or committed (retried on a concurrent
//! append, answered once per request key).

use tracing::warn;

use super::commit::{Alongside, Queued};
use super::state::Trust;
use super::{App, AppError, MAX_ATTEMPTS, Reply};
use crate::cluster::{ClusterError, ProbeContext};
use crate::command::{self, Command, grammar};
use crate::decide::posts::{self as messages, Render};
use crate::decide::{decide, draft_operation};
use crate::incident::{Caller, Ctx, Draft, Facts, Refusal};
use crate::incident::{Event, Incident, IncidentId, OperationSpec};
use crate::store::{StoreError, Target};

const ALREADY_HANDLED: &str =
    "This request was already received and handled; nothing was done twice. See `/dr status`.";

impl App {
    /// Handle one `/dr …` line from `channel`.
    pub async fn handle(
        &self,
        channel: &str,
        caller: &Caller,
        line: &str,
    ) -> Result<Reply, AppError> {
        self.handle_request(channel, caller, line, None).await
    }

    /// Handle a line that arrived with the platform's request id (`key`): a redelivery of a
    /// request that already changed something is answered, not done again.
    pub async fn handle_request(
        &self,
        channel: &str,
        caller: &Caller,
        line: &str,
        key: Option<&str>,
    ) -> Result<Reply, AppError> {
        match parse_line(line) {
            Ok(cmd) => self.handle_command(channel, caller, &cmd, key).await,
            Err(reply) => Ok(reply),
        }
    }

    /// Handle an already parsed command (buttons build theirs directly).
    pub async fn handle_command(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
    ) -> Result<Reply, AppError> {
        if let Command::Help { verb } = cmd {
            return Ok(Reply::Private(grammar::help(verb.as_deref())));
        }
        if let Command::Drills = cmd {
            return Ok(Reply::Private(self.drills_view().await?));
        }
        if let Command::Oncall { target } = cmd {
            return Ok(Reply::Private(self.oncall_view(target.as_deref()).await));
        }
        let a = &caller.actor;
        if channel.contains('\0') {
            return Ok(Reply::Private(nul_refusal("the channel id")));
        }
        if a.id.contains('\0') || a.name.contains('\0') || a.platform.contains('\0') {
            return Ok(Reply::Private(nul_refusal("your user name")));
        }
        if key.is_some_and(|k| k.contains('\0')) {
            return Ok(Reply::Private(nul_refusal("the request id")));
        }
        let lock = self.memo.channel(channel);
        let mut key = key;
        let mut trust = Trust::Remembered;
        for _ in 0..MAX_ATTEMPTS {
            // The channel's turn lasts until the decision is queued for the writer, not until
            // it is durable: the next command of the channel is decided on top of it and
            // rides in the same group commit (its `expected_seq` check fails if this one
            // does not land).
            let mut turn = lock.lock().await;
            if let Some(first) = key.and_then(|k| self.memo.request_in_flight(k)) {
                drop(turn);
                drop(first.lock().await);
                turn = lock.lock().await;
            }
            let attempted = self.attempt(channel, caller, cmd, key, trust).await;
            // An answer from what is remembered is given only once the store has nothing
            // newer; a commit checks that itself, by its expected sequence number.
            if let Ok((Step::Done(_) | Step::Viewed(_), Some((id, seq)))) = &attempted
                && trust == Trust::Remembered
                && !self.store.events_after(*id, *seq).await?.is_empty()
            {
                trust = Trust::Read;
                continue;
            }
            let step = attempted.map(|(step, _)| step);
            // A redelivery that is decided again and queued fails on its key at commit
            // (`Duplicate` below); one refused or answered from state is told here.
            if let (Ok(Step::Done(_)), Some(k)) = (&step, key)
                && self.store.request_seen(k).await?
            {
                return Ok(Reply::Private(ALREADY_HANDLED.into()));
            }
            let held = match (&step, key) {
                (Ok(Step::Queued(..)), Some(k)) => self.memo.hold_request(k),
                _ => None,
            };
            drop(turn);
            let outcome = match step {
                Ok(Step::Done(reply) | Step::Viewed(reply)) => Ok(Attempt::Done(reply)),
                Ok(Step::Queued(queued, then_retry)) => {
                    let landed = queued.landed(self).await;
                    if let (Some(k), Some(held)) = (key, held) {
                        self.memo.release_request(k);
                        drop(held);
                    }
                    landed.map(|(after, stored)| match then_retry {
                        true => Attempt::Again,
                        false => Attempt::Done(Reply::Public(messages::reply_for(&after, &stored))),
                    })
                }
                Err(e) => Err(e),
            };
            match outcome {
                Err(AppError::Store(StoreError::Conflict)) => trust = Trust::Read,
                Err(AppError::Store(StoreError::Duplicate(_))) if key.is_some() => {
                    return Ok(Reply::Private(ALREADY_HANDLED.into()));
                }
                Err(AppError::Store(StoreError::Unstorable(what))) => {
                    return Ok(Reply::Private(nul_refusal(what)));
                }
                Err(AppError::Store(StoreError::OpenIncidentExists(_))) => {
                    return Ok(Reply::Private(
                        "An incident was opened in this channel a moment ago; see `/dr status`."
                            .into(),
                    ));
                }
                Ok(Attempt::Done(reply)) => return Ok(reply),
                // The key is spent on the commit that opened the drill incident.
                Ok(Attempt::Again) => key = None,
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contention)
    }

    /// One try at a command, on state as far as `trust` allows; with the state it was decided
    /// on (incident and sequence number), to check an answer given from it.
    async fn attempt(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
        trust: Trust,
    ) -> Result<(Step, Option<(IncidentId, i64)>), AppError> {
        let open = self.open_incident(channel, trust).await?;
        let shown = match (open.as_ref().map(|s| s.id), cmd) {
            (None, Command::Timeline | Command::TimelineExport(_) | Command::Comms(_)) => {
                self.store.latest_incident_in(channel).await?
            }
            (id, _) => id,
        };
        let (events, state) = match (shown, cmd) {
            (Some(id), Command::Timeline) => self.load(id).await?,
            (Some(id), _) if open.as_ref().is_some_and(|s| s.id == id) => (Vec::new(), open),
            (Some(id), _) => (Vec::new(), self.state_as(id, trust).await?),
            (None, _) => (Vec::new(), None),
        };
        let basis = state.as_ref().map(|s| (s.id, s.seq));
        let step = self
            .decide_step(channel, caller, cmd, key, state, &events)
            .await?;
        Ok((step, basis))
    }

    /// `cmd` decided on `state`: answered from it, refused, or queued for the writer.
    async fn decide_step(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
        state: Option<Incident>,
        events: &[Event],
    ) -> Result<Step, AppError> {
        let now = self.clock.now();
        let render = self.render(now);
        if let Some(view) = self.view(cmd, state.as_ref(), events, &render).await {
            return Ok(Step::Viewed(view));
        }
        let state = state.filter(|s| s.is_open() || matches!(cmd, Command::Comms(_)));
        let ctx = Ctx {
            channel,
            runbook: &self.runbook,
            policy: &self.policy,
            now,
            continuity: &self.continuity,
        };
        let spec = match draft_operation(state.as_ref(), cmd, caller, &ctx) {
            Ok(spec) => spec,
            Err(Refusal(why)) => return Ok(Step::Done(Reply::Private(why))),
        };
        let facts = match self.gather(cmd, spec.as_ref(), state.as_ref()).await {
            Ok(facts) => facts,
            Err(e) => return Ok(Step::Done(Reply::Private(cluster_refusal(&e)))),
        };
        let decision = match decide(state.as_ref(), cmd, caller, &ctx, &facts) {
            Ok(d) => d,
            Err(Refusal(why)) => return Ok(Step::Done(Reply::Private(why))),
        };
        if decision.events.is_empty() {
            return Ok(Step::Done(Reply::Private("Nothing to do.".into())));
        }
        let target = match &state {
            Some(s) => Target::Existing {
                id: s.id,
                expected_seq: s.seq,
            },
            None => Target::New {
                id: self.store.next_incident_id().await?,
                channel: channel.to_string(),
                platform: caller.actor.platform.clone(),
            },
        };
        let drafts: Vec<(Draft, Option<String>)> =
            decision.events.into_iter().map(|d| (d, None)).collect();
        let queued = self.queue_commit(
            target,
            state,
            &caller.actor,
            drafts,
            now,
            Alongside {
                request_key: key,
                gave_up: None,
            },
        )?;
        Ok(Step::Queued(Box::new(queued), decision.then_retry))
    }

    /// The open incident of a channel and its open checklist items (id, text), in SOP order:
    /// what chat adapters turn into tick buttons. `section` narrows it like `/dr checklist`.
    pub async fn open_checklist(
        &self,
        channel: &str,
        section: Option<&str>,
    ) -> Result<Option<(IncidentId, Vec<(String, String)>)>, AppError> {
        let Some(id) = self.store.open_incident_in(channel).await? else {
            return Ok(None);
        };
        let Some(state) = self.state(id).await? else {
            return Ok(None);
        };
        let open = self
            .runbook
            .checklist_items()
            .filter(|(sec, item)| section.is_none_or(|want| want == sec.id || want == item.id))
            .filter(|(sec, item)| {
                crate::features::checklist::checklist_item_state(&state, sec, item).is_open()
            })
            .map(|(_, item)| (item.id.clone(), item.text.clone()))
            .collect();
        Ok(Some((id, open)))
    }

    /// Whether `incident` is the open incident of `channel` (a button must not act on another).
    pub async fn is_open_incident(
        &self,
        channel: &str,
        incident: IncidentId,
    ) -> Result<bool, AppError> {
        Ok(self.store.open_incident_in(channel).await? == Some(incident))
    }

    /// Read-only commands answer from state without writing.
    async fn view(
        &self,
        cmd: &Command,
        state: Option<&Incident>,
        events: &[Event],
        r: &Render<'_>,
    ) -> Option<Reply> {
        let need = || {
            Reply::Private("There is no incident in this channel. Open one with `/dr declare <sev1..sev4> [infra|data|combined] <title>`.".into())
        };
        let open = state.filter(|s| s.is_open());
        Some(match cmd {
            Command::Status => {
                open.map_or_else(need, |s| Reply::Private(messages::status_view(s, r)))
            }
            Command::Path => open.map_or_else(need, |s| Reply::Private(messages::path_view(s, r))),
            Command::Checklist { section } => open.map_or_else(need, |s| {
                Reply::Private(messages::checklist_view(s, r, section.as_deref()))
            }),
            Command::Followups => match state {
                Some(s) => Reply::Private(crate::features::paging::followups_view(
                    s,
                    self.policy.tracker.as_deref(),
                )),
                None => need(),
            },
            Command::Timeline => match state {
                Some(_) => Reply::Private(messages::timeline_view(events, 30)),
                None => need(),
            },
            Command::TimelineExport(format) => match state {
                Some(s) => {
                    let mut content = Vec::new();
                    if let Err(e) = crate::export::export_with(
                        &self.store,
                        s.id,
                        *format,
                        &self.runbook,
                        crate::export::Impact {
                            continuity: &self.continuity,
                            now: r.now,
                        },
                        &mut content,
                    )
                    .await
                    {
                        warn!(incident = s.id, error = %e, "export failed");
                        return Some(Reply::Private(
                            "The export could not be read from the database; nothing was changed, try again.".into(),
                        ));
                    }
                    Reply::File {
                        name: format!("INC-{}-timeline.{}", s.id, format.extension()),
                        content,
                    }
                }
                None => need(),
            },
            _ => return None,
        })
    }

    /// I/O a decision needs: the backend's plan for a launch, probe results, the backup report.
    async fn gather(
        &self,
        cmd: &Command,
        spec: Option<&OperationSpec>,
        state: Option<&Incident>,
    ) -> Result<Facts, ClusterError> {
        let mut facts = Facts {
            backend: self.cluster.backend().to_string(),
            ..Facts::default()
        };
        if let Some(spec) = spec {
            facts.plan = Some(self.cluster.plan(spec).await?);
        }
        match (cmd, state) {
            (Command::Backups, Some(_)) => {
                let report = self.cluster.backups().await?;
                facts.backups = Some((report.ok, report.lines));
            }
            (Command::TabletopStart { file }, None) => {
                facts.exercise = Some(self.load_exercise(file));
            }
            (Command::Verify { section }, Some(s)) => {
                let ctx = ProbeContext {
                    recovered_at: s.recovered_at(),
                    restored_objects: s
                        .operations
                        .iter()
                        .filter(|o| o.spec.kind.restores_database() && o.succeeded())
                        .map(|o| o.spec.object_name.clone())
                        .collect(),
                };
                for (sec, item) in self.runbook.checklist_items() {
                    let Some(probe) = &item.probe else { continue };
                    if section
                        .as_deref()
                        .is_some_and(|want| want != sec.id && want != item.id)
                    {
                        continue;
                    }
                    let result = self.cluster.probe(probe, &ctx).await?;
                    facts.probes.push((
                        item.id.clone(),
                        probe.clone(),
                        result.passed,
                        result.evidence,
                    ));
                }
            }
            _ => {}
        }
        Ok(facts)
    }
}

enum Attempt {
    Done(Reply),
    /// The command opened a drill incident first; decide it again.
    Again,
}

/// How one try at a command ended while the channel's turn was held.
enum Step {
    /// Answered from the state (a view): nothing is ever stored for it, its request key
    /// included, so a redelivery is simply answered again.
    Viewed(Reply),
    /// Refused or answered without a commit.
    Done(Reply),
    /// Committed on landing; `true`: then decide the command again.
    Queued(Box<Queued>, bool),
}

/// A `/dr` line as a command, or the answer that says why it is not one.
pub fn parse_line(line: &str) -> Result<Command, Reply> {
    if line.contains('\0') {
        return Err(Reply::Private(nul_refusal("the command")));
    }
    command::parse(line).map_err(|usage| Reply::Private(usage.to_string()))
}

/// PostgreSQL cannot store NUL; both backends refuse it the same way, before anything is written.
fn nul_refusal(what: &str) -> String {
    format!(
        "drbot cannot record {what}: it contains a NUL character (\\0). Nothing was changed; \
         send it again without that character."
    )
}

fn cluster_refusal(e: &ClusterError) -> String {
    match e {
        ClusterError::Invalid(why) => format!("Refused: {why}"),
        ClusterError::Unavailable(why) => format!(
            "The cluster backend did not answer ({why}). Nothing was changed; try again, or `/dr escalate` if it stays down."
        ),
    }
}
