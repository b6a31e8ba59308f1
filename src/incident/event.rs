//! Timeline events: the source of truth. Incident state is a fold over them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::post::PageAction;

pub type IncidentId = i64;

/// Who did something: a person on a platform, or drbot itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `slack`, `discord`, `console`, or `drbot` for the bot's own events.
    pub platform: String,
    pub id: String,
    pub name: String,
}

impl Actor {
    pub fn new(platform: &str, id: &str, name: &str) -> Actor {
        Actor {
            platform: platform.into(),
            id: id.into(),
            name: name.into(),
        }
    }
    pub fn drbot() -> Actor {
        Actor::new("drbot", "drbot", "drbot")
    }
    pub fn is_drbot(&self) -> bool {
        self.platform == "drbot"
    }
}

/// An event as stored: its place in the incident's sequence, times, actor and payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub incident: IncidentId,
    pub seq: i64,
    /// When drbot recorded it (ms precision, UTC).
    pub recorded_at: DateTime<Utc>,
    /// When it happened, if that differs (a back-dated note).
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: Actor,
    pub kind: EventKind,
}

impl Event {
    pub fn at(&self) -> DateTime<Utc> {
        self.occurred_at.unwrap_or(self.recorded_at)
    }
}

/// What an operation does; names come from [`OperationSpec::object_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Freeze,
    Unfreeze,
    InfraRestore,
    RestoreLatest,
    Pitr,
    DrillLatest,
    DrillPitr,
}

impl OperationKind {
    pub fn label(self) -> &'static str {
        match self {
            OperationKind::Freeze => "freeze",
            OperationKind::Unfreeze => "unfreeze",
            OperationKind::InfraRestore => "infra restore",
            OperationKind::RestoreLatest => "restore latest",
            OperationKind::Pitr => "pitr",
            OperationKind::DrillLatest => "drill latest",
            OperationKind::DrillPitr => "drill pitr",
        }
    }
    pub fn short(self) -> &'static str {
        match self {
            OperationKind::Freeze => "freeze",
            OperationKind::Unfreeze => "unfreeze",
            OperationKind::InfraRestore => "infra",
            OperationKind::RestoreLatest => "latest",
            OperationKind::Pitr => "pitr",
            OperationKind::DrillLatest => "drill",
            OperationKind::DrillPitr => "drillpitr",
        }
    }
    /// Restores count towards time-to-restore and RTO; freezes do not.
    pub fn is_restore(self) -> bool {
        !matches!(self, OperationKind::Freeze | OperationKind::Unfreeze)
    }
    pub fn restores_database(self) -> bool {
        matches!(
            self,
            OperationKind::RestoreLatest
                | OperationKind::Pitr
                | OperationKind::DrillLatest
                | OperationKind::DrillPitr
        )
    }
}

/// Exactly what an operation will do. Built by the engine, planned and run by a cluster backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationSpec {
    /// `op1`, `op2`… unique within the incident.
    pub id: String,
    pub kind: OperationKind,
    /// Deterministic name of the object it creates (a restore, a cluster): a retry or a
    /// restart can never create a second one.
    pub object_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Backup to restore from; `None` = the newest suitable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Source database cluster (StackGres) for database restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Target namespace override (drills restore into the drill namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_namespaces: Vec<String>,
    /// Whether the database namespaces must be left out (data/combined incidents, SOP §6.3).
    #[serde(default)]
    pub exclude_database_namespaces: bool,
    /// For unfreeze: the state recorded by the freeze, to put back exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<serde_json::Value>,
}

impl OperationSpec {
    /// An operation with nothing but its identity; the engine fills in what the kind needs.
    pub fn new(id: &str, kind: OperationKind, object_name: &str) -> OperationSpec {
        OperationSpec {
            id: id.into(),
            kind,
            object_name: object_name.into(),
            reason: None,
            backup: None,
            cluster: None,
            namespace: None,
            target: None,
            include_namespaces: Vec::new(),
            exclude_database_namespaces: false,
            prior: None,
        }
    }
}

/// What a backend would do for an operation, shown in the preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// One line per fact an operator should see before confirming.
    pub summary: Vec<String>,
    /// The exact objects or patches that would be applied.
    pub manifest: String,
    /// The backup chosen, when the operation restores one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Recoverable window of the source cluster, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<RecoveryWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl RecoveryWindow {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t <= self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
}

// Events live briefly (a fold, a commit); boxing the preview's plan would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Declared {
        channel: String,
        severity: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_type: Option<String>,
        title: String,
        #[serde(default)]
        drill: bool,
    },
    SeverityChanged {
        from: String,
        to: String,
    },
    Classified {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
    },
    RoleAssigned {
        role: String,
        user: String,
    },
    Checked {
        item: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Unchecked {
        item: String,
    },
    MarkedNotApplicable {
        item: String,
        reason: String,
    },
    UpdatePosted {
        text: String,
        automatic: bool,
        /// Cadence slots this update satisfies (automatic updates; several if drbot was down).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        slots: Vec<DateTime<Utc>>,
    },
    ReminderSent {
        slot: DateTime<Utc>,
    },
    NoteAdded {
        text: String,
    },
    Escalated {
        reason: String,
    },
    Resumed,
    LaunchPreviewed {
        preview: String,
        operation: OperationSpec,
        plan: Plan,
        backend: String,
        expires_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    LaunchConfirmed {
        preview: String,
        operation: String,
    },
    LaunchCancelled {
        preview: String,
    },
    OperationLaunched {
        operation: String,
        object: String,
    },
    OperationProgressed {
        operation: String,
        phase: String,
        percent: u8,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    OperationFinished {
        operation: String,
        outcome: Outcome,
        phase: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// Backend data to keep (a freeze's prior state, a restore's warnings).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
    },
    BackupsChecked {
        backend: String,
        ok: bool,
        report: Vec<String>,
    },
    ProbeRecorded {
        item: String,
        probe: String,
        passed: bool,
        evidence: String,
    },
    Resolved,
    FinalSummaryPosted,
    /// drbot stopped trying to deliver one of its posts (the bound in ARCHITECTURE.md).
    DeliveryGaveUp {
        /// The outbox row.
        outbox: i64,
        /// The post's kind (`update`, `status`, …).
        post: String,
        /// The start of what was not delivered.
        excerpt: String,
        attempts: i64,
        /// The platform's last answer, without request content.
        error: String,
    },
    /// Services of the catalog affected by the incident (issue 11 §2).
    ServicesAffected {
        /// Named services.
        services: Vec<String>,
        /// Named dependencies that are not services (`postgresql-primary`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        infrastructure: Vec<String>,
        /// Services pulled in because something they depend on is affected.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pulled_in: Vec<PulledIn>,
    },
    /// A service reached `percent` of its RTO target (posted once: `rto:<service>:<percent>`).
    RtoThreshold {
        service: String,
        percent: u8,
        rto_seconds: i64,
    },
    /// A tabletop exercise began: its scenario as loaded (see `tabletop.rs`).
    TabletopStarted {
        scenario: Exercise,
    },
    /// Inject `n` (1-based) of the tabletop was posted.
    InjectPosted {
        n: usize,
    },
    /// The tabletop ended (`/dr tabletop end`, or by itself after the last inject).
    TabletopEnded {
        automatic: bool,
    },
    /// Customer text composed from the incident (`/dr comms draft`), see `crate::features::comms`.
    CommsDrafted {
        /// `C1`, `C2`… unique within the incident.
        draft: String,
        stage: crate::command::Stage,
        status: CustomerStatus,
        statuspage_status: String,
        component_status: String,
        title: String,
        body: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        services: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_update_at: Option<DateTime<Utc>>,
    },
    /// The comms lead's own words for a draft's message.
    CommsEdited {
        draft: String,
        body: String,
        /// Internal terms found in it (warned about, not refused).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// A draft sent to the status page (through the outbox's `statuspage` lane).
    CommsPublished {
        draft: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// The update promised by publication `draft` fell due (dedupe key `comms-due:<draft>`).
    CommsReminderSent {
        draft: String,
        due: DateTime<Utc>,
    },
    /// A page (or its resolve) queued on the target's `pager:<target>` outbox lane in the same
    /// commit. Its dedup key is derived ([`super::reach::page_key`]): the incident, its
    /// declaration time, the target and which page of the target this is.
    PageRequested {
        target: String,
        action: PageAction,
        /// The target's nth trigger in this incident (1 for the first): a deliberate re-page
        /// gets a key of its own, so it wakes the person again.
        nth: u32,
        /// `declared SEV1`, `raised to SEV1`, or the message typed with `/dr page`.
        #[serde(default)]
        reason: String,
        /// Whom to call if the page cannot be delivered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<String>,
    },
    /// The provider accepted the page or its resolve (dedupe key `delivered:<outbox id>`).
    PageDelivered {
        target: String,
        action: PageAction,
        dedup_key: String,
    },
    /// drbot gave up sending the page or its resolve (the lane's bound).
    PageNotDelivered {
        target: String,
        action: PageAction,
        dedup_key: String,
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<String>,
    },
    /// PagerDuty said the page's incident was acknowledged or resolved (a V3 webhook; dedupe
    /// key `pagerduty:<webhook event id>`).
    PageChanged {
        target: String,
        dedup_key: String,
        /// `acknowledged` or `resolved`.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A follow-up to file, queued on the `tracker` outbox lane in the same commit.
    FollowupRequested {
        number: u32,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<chrono::NaiveDate>,
    },
    /// The tracker holds the follow-up's ticket (dedupe key `delivered:<outbox id>`).
    FollowupFiled {
        number: u32,
        key: String,
        url: String,
    },
    /// drbot gave up filing the follow-up.
    FollowupNotFiled {
        number: u32,
        error: String,
    },
    /// The ticket's state as last read back from the tracker.
    FollowupStateRead {
        number: u32,
        state: String,
        done: bool,
    },
    /// The incident commander's recorded waiver: no follow-up needed (SOP 9.8.4).
    FollowupWaived {
        reason: String,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Declared { .. } => "declared",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::Classified { .. } => "classified",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::Checked { .. } => "checked",
            EventKind::Unchecked { .. } => "unchecked",
            EventKind::MarkedNotApplicable { .. } => "marked_not_applicable",
            EventKind::UpdatePosted { .. } => "update_posted",
            EventKind::ReminderSent { .. } => "reminder_sent",
            EventKind::NoteAdded { .. } => "note_added",
            EventKind::Escalated { .. } => "escalated",
            EventKind::Resumed => "resumed",
            EventKind::LaunchPreviewed { .. } => "launch_previewed",
            EventKind::LaunchConfirmed { .. } => "launch_confirmed",
            EventKind::LaunchCancelled { .. } => "launch_cancelled",
            EventKind::OperationLaunched { .. } => "operation_launched",
            EventKind::OperationProgressed { .. } => "operation_progressed",
            EventKind::OperationFinished { .. } => "operation_finished",
            EventKind::BackupsChecked { .. } => "backups_checked",
            EventKind::ProbeRecorded { .. } => "probe_recorded",
            EventKind::Resolved => "resolved",
            EventKind::FinalSummaryPosted => "final_summary_posted",
            EventKind::DeliveryGaveUp { .. } => "delivery_gave_up",
            EventKind::ServicesAffected { .. } => "services_affected",
            EventKind::RtoThreshold { .. } => "rto_threshold",
            EventKind::TabletopStarted { .. } => "tabletop_started",
            EventKind::InjectPosted { .. } => "inject_posted",
            EventKind::TabletopEnded { .. } => "tabletop_ended",
            EventKind::CommsDrafted { .. } => "comms_drafted",
            EventKind::CommsEdited { .. } => "comms_edited",
            EventKind::CommsPublished { .. } => "comms_published",
            EventKind::CommsReminderSent { .. } => "comms_reminder_sent",
            EventKind::PageRequested { .. } => "page_requested",
            EventKind::PageDelivered { .. } => "page_delivered",
            EventKind::PageNotDelivered { .. } => "page_not_delivered",
            EventKind::PageChanged { .. } => "page_changed",
            EventKind::FollowupRequested { .. } => "followup_requested",
            EventKind::FollowupFiled { .. } => "followup_filed",
            EventKind::FollowupNotFiled { .. } => "followup_not_filed",
            EventKind::FollowupStateRead { .. } => "followup_state_read",
            EventKind::FollowupWaived { .. } => "followup_waived",
        }
    }

    /// One line for timelines and exports.
    pub fn describe(&self) -> String {
        let mut line = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_description(&mut line);
        line
    }

    /// [`EventKind::describe`] written straight into `out`: an export writes a line per event
    /// and building each as a String first cost more than the rest of its row.
    pub fn write_description(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            EventKind::Declared {
                severity,
                incident_type,
                title,
                drill,
                ..
            } => write!(
                out,
                "{}declared {} {}: {}",
                if *drill { "DRILL " } else { "" },
                severity.to_uppercase(),
                incident_type.as_deref().unwrap_or("unclassified"),
                title
            ),
            EventKind::SeverityChanged { from, to } => {
                write!(
                    out,
                    "severity {} → {}",
                    from.to_uppercase(),
                    to.to_uppercase()
                )
            }
            EventKind::Classified { from, to } => match from {
                Some(f) => write!(out, "reclassified {f} → {to}"),
                None => write!(out, "classified as {to}"),
            },
            EventKind::RoleAssigned { role, user } => write!(out, "{role} → <@{user}>"),
            EventKind::Checked { item, note } => match note {
                Some(n) => write!(out, "checked {item}: {n}"),
                None => write!(out, "checked {item}"),
            },
            EventKind::Unchecked { item } => write!(out, "unchecked {item}"),
            EventKind::MarkedNotApplicable { item, reason } => write!(out, "{item} n/a: {reason}"),
            EventKind::UpdatePosted {
                text, automatic, ..
            } => {
                let first = text.lines().next().unwrap_or_default();
                if *automatic {
                    write!(out, "automatic update posted: {first}")
                } else {
                    write!(out, "update: {first}")
                }
            }
            EventKind::ReminderSent { slot } => {
                write!(
                    out,
                    "reminder sent for the {} update",
                    slot.format("%H:%MZ")
                )
            }
            EventKind::NoteAdded { text } => write!(out, "note: {text}"),
            EventKind::Escalated { reason } => {
                write!(out, "ESCALATED, all actions halted: {reason}")
            }
            EventKind::Resumed => out.write_str("halt lifted"),
            EventKind::LaunchPreviewed {
                preview,
                operation,
                plan,
                ..
            } => write!(
                out,
                "preview {preview}: {} {}{}",
                operation.kind.label(),
                operation.object_name,
                plan.backup
                    .as_ref()
                    .map(|b| format!(" from {b}"))
                    .unwrap_or_default()
            ),
            EventKind::LaunchConfirmed { preview, operation } => {
                write!(out, "{preview} confirmed, operation {operation} queued")
            }
            EventKind::LaunchCancelled { preview } => write!(out, "{preview} cancelled"),
            EventKind::OperationLaunched { operation, object } => {
                write!(out, "{operation} launched: {object}")
            }
            EventKind::OperationProgressed {
                operation,
                phase,
                percent,
                detail,
            } => {
                write!(out, "{operation} {phase} {percent}%")?;
                if !detail.is_empty() {
                    write!(out, ": {detail}")?;
                }
                Ok(())
            }
            EventKind::OperationFinished {
                operation,
                outcome,
                phase,
                detail,
                ..
            } => {
                let word = match outcome {
                    Outcome::Succeeded => "succeeded",
                    Outcome::Failed => "FAILED",
                };
                write!(out, "{operation} {word} ({phase})")?;
                if !detail.is_empty() {
                    write!(out, ": {detail}")?;
                }
                Ok(())
            }
            EventKind::BackupsChecked { ok, report, .. } => write!(
                out,
                "backups checked: {} ({} lines)",
                if *ok { "ok" } else { "PROBLEMS" },
                report.len()
            ),
            EventKind::ProbeRecorded {
                item,
                passed,
                evidence,
                ..
            } => write!(
                out,
                "probe {item} {}: {evidence}",
                if *passed { "passed" } else { "FAILED" }
            ),
            EventKind::Resolved => out.write_str("resolved"),
            EventKind::FinalSummaryPosted => out.write_str("final summary posted"),
            EventKind::DeliveryGaveUp {
                post,
                excerpt,
                attempts,
                error,
                ..
            } => write!(
                out,
                "gave up delivering a {post} post after {attempts} attempt(s) ({error}): {excerpt}"
            ),
            EventKind::ServicesAffected {
                services,
                infrastructure,
                pulled_in,
            } => out.write_str(&describe_impact(services, infrastructure, pulled_in)),
            EventKind::RtoThreshold {
                service, percent, ..
            } => match percent {
                100 => write!(out, "{service} RTO breached"),
                p => write!(out, "{service} reached {p}% of its RTO"),
            },
            EventKind::TabletopStarted { scenario } => write!(
                out,
                "tabletop started: {} ({} injects)",
                scenario.name,
                scenario.injects.len()
            ),
            EventKind::InjectPosted { n } => write!(out, "inject {n} posted"),
            EventKind::TabletopEnded { automatic } => write!(
                out,
                "tabletop ended{}, summary posted",
                if *automatic {
                    " after the last inject"
                } else {
                    ""
                }
            ),
            other => out.write_str(
                &describe_comms(other)
                    .or_else(|| describe_reach(other))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A service affected because something it depends on is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledIn {
    pub service: String,
    /// The affected service or infrastructure it depends on.
    pub via: String,
}

/// One inject of the scenario, as recorded on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// As written: `T+5min`.
    pub time: String,
    pub minutes: i64,
    pub event: String,
    pub question: String,
}

/// A loaded exercise: what `TabletopStarted` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator: Option<String>,
    pub injects: Vec<Inject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discussion: Vec<String>,
}

/// What customers are told the incident is at (the guide's Status line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Investigating,
    Identified,
    Recovering,
    Resolved,
}

impl CustomerStatus {
    pub fn label(self) -> &'static str {
        match self {
            CustomerStatus::Investigating => "Investigating",
            CustomerStatus::Identified => "Identified",
            CustomerStatus::Recovering => "Recovering",
            CustomerStatus::Resolved => "Resolved",
        }
    }
}

/// One line for timelines and exports.
pub fn describe_impact(
    services: &[String],
    infrastructure: &[String],
    pulled_in: &[PulledIn],
) -> String {
    let mut parts = Vec::new();
    if !services.is_empty() {
        parts.push(format!("affected: {}", services.join(", ")));
    }
    if !infrastructure.is_empty() {
        parts.push(format!(
            "infrastructure affected: {}",
            infrastructure.join(", ")
        ));
    }
    for p in pulled_in {
        parts.push(format!("{} depends on {}: added", p.service, p.via));
    }
    parts.join("; ")
}

/// One line for timelines and exports.
pub fn describe_comms(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::CommsDrafted {
            draft,
            stage,
            status,
            ..
        } => format!(
            "customer update {draft} drafted ({}, {})",
            stage.word(),
            status.label()
        ),
        EventKind::CommsEdited { draft, body, .. } => {
            format!(
                "customer update {draft} edited: {}",
                body.lines().next().unwrap_or("")
            )
        }
        EventKind::CommsPublished { draft, .. } => {
            format!("customer update {draft} published to the status page")
        }
        EventKind::CommsReminderSent { draft, due } => format!(
            "communications lead reminded: the update promised in {draft} for {} is due",
            due.format("%H:%M UTC")
        ),
        _ => return None,
    })
}

/// A target as people say it: `the DR lead`, `dba-oncall`.
pub fn target_title(target: &str) -> String {
    match target {
        "ic" => "the incident commander".into(),
        "dr-lead" => "the DR lead".into(),
        "comms" => "the communications lead".into(),
        "db-lead" => "the database lead".into(),
        other => other.to_string(),
    }
}

/// One line for timelines and exports.
pub fn describe_reach(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::PageRequested {
            target,
            action: PageAction::Trigger,
            reason,
            ..
        } => format!("paging {} ({reason})", target_title(target)),
        EventKind::PageRequested { target, .. } => {
            format!("resolving the page to {}", target_title(target))
        }
        EventKind::PageDelivered {
            target,
            action: PageAction::Trigger,
            ..
        } => format!("paged {}", target_title(target)),
        EventKind::PageDelivered { target, .. } => {
            format!("the page to {} is resolved", target_title(target))
        }
        EventKind::PageNotDelivered {
            target,
            action,
            error,
            fallback,
            ..
        } => match action {
            PageAction::Trigger => format!(
                "NOT paged: {} — {error}{}",
                target_title(target),
                fallback
                    .as_deref()
                    .map(|f| format!(" — call {f}"))
                    .unwrap_or_default()
            ),
            PageAction::Resolve => format!(
                "the page to {} could not be resolved ({error}): resolve it in the provider",
                target_title(target)
            ),
        },
        EventKind::PageChanged {
            target, status, by, ..
        } => match (status.as_str(), by) {
            ("acknowledged", Some(by)) => format!(
                "the page to {} was acknowledged by {by}",
                target_title(target)
            ),
            ("resolved", _) => format!(
                "the page to {} was resolved in PagerDuty",
                target_title(target)
            ),
            (other, _) => format!(
                "the page to {} is {other} in PagerDuty",
                target_title(target)
            ),
        },
        EventKind::FollowupRequested { number, text, .. } => {
            format!("follow-up #{number} requested: {text}")
        }
        EventKind::FollowupFiled { number, key, .. } => {
            format!("follow-up #{number} filed as {key}")
        }
        EventKind::FollowupNotFiled { number, error } => {
            format!("follow-up #{number} NOT filed: {error}")
        }
        EventKind::FollowupStateRead { number, state, .. } => {
            format!("follow-up #{number} is {state} in the tracker")
        }
        EventKind::FollowupWaived { reason } => format!("no follow-up needed: {reason}"),
        _ => return None,
    })
}
