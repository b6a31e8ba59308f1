//! Customer communication, kept apart from the incident channel as the SRE guide insists.
//!
//! This module is pure like the core: the composer turns the incident's state into the
//! guide's status-page templates (initial, update, resolved) in plain language, the
//! denylist check keeps internal words out, and [`decide`] turns `/dr comms …` into
//! timeline events. Drafts and publications are events; [`CommsLog`] is their fold.
//! Publishing goes through the outbox on the `statuspage` lane; `crate::chat::statuspage`
//! is the adapter that sends it (Atlassian Statuspage REST API v1).

use chrono::{DateTime, Duration, Utc};

use crate::command::{CommsCommand, Stage};
use crate::incident::customer::{CustomerStatus, Draft};
use crate::incident::decision::refuse;
use crate::incident::event::{EventKind, OperationKind};
use crate::incident::post::{Post, PostKind, Publication};
use crate::incident::{Caller, Refusal, incident_ref};
use crate::incident::{Event, Incident};

/// The outbox channel of status-page publications: one lane, in commit order.
pub const STATUSPAGE_CHANNEL: &str = "statuspage";

/// The guide: "We will provide an update within 30 minutes."
pub const CUSTOMER_UPDATE_MINUTES: i64 = 30;

/// Words customers must not read: tools, storage and recovery terms of the platform team.
/// Matched case-insensitively as whole words. Cluster, object and backup names of the
/// incident are added by [`internal_words`].
pub const INTERNAL_TERMS: &[&str] = &[
    "sgcluster",
    "sgbackup",
    "stackgres",
    "wal",
    "wal-g",
    "walg",
    "pitr",
    "point-in-time",
    "namespace",
    "namespaces",
    "velero",
    "pod",
    "pods",
    "kubernetes",
    "k8s",
    "kubectl",
    "helm",
    "etcd",
    "argo",
    "argocd",
    "flux",
    "gitops",
    "s3",
    "minio",
    "bucket",
    "postgres",
    "postgresql",
    "patroni",
    "crd",
    "sev1",
    "sev2",
    "sev3",
    "sev4",
    "drbot",
    "runbook",
    "sop",
    "checklist",
];

/// A composed customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub title: String,
    pub status: CustomerStatus,
    /// Statuspage's incident status: investigating, identified, monitoring, resolved.
    pub statuspage_status: &'static str,
    /// Statuspage's component status for every affected service.
    pub component_status: &'static str,
    pub body: String,
    /// The update promised in the text (none once resolved).
    pub next_update_at: Option<DateTime<Utc>>,
}

/// The affected services, by name, as customers know them.
pub fn affected_services(incident: &Incident) -> Vec<String> {
    // Services only: infrastructure names (`postgresql-primary`) are internal words.
    incident
        .continuity
        .services
        .iter()
        .map(|a| a.name.clone())
        .collect()
}

fn restores(s: &Incident) -> impl Iterator<Item = &crate::incident::state::Operation> {
    s.operations.iter().filter(|o| o.spec.kind.is_restore())
}

/// When the running restores should be done, extrapolated from their progress so far and
/// rounded up to five minutes; `None` until one reports progress.
fn recovery_estimate(s: &Incident, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    restores(s)
        .filter(|o| o.is_running() && (1..100).contains(&o.percent))
        .map(|o| {
            let elapsed = (now - o.confirmed_at).max(Duration::zero());
            let left = elapsed * i32::from(100 - o.percent) / i32::from(o.percent);
            let minutes = (left.num_seconds() + 299) / 300 * 5;
            now + Duration::minutes(minutes.max(5))
        })
        .max()
}

fn recovered(s: &Incident) -> bool {
    restores(s).any(|o| o.succeeded())
}

/// The customer status the incident's state shows: declared → Investigating; classified
/// (a recovery path chosen) → Identified; a restore running or done → Recovering;
/// resolved → Resolved.
pub fn customer_status(s: &Incident) -> CustomerStatus {
    if s.resolved_at.is_some() {
        CustomerStatus::Resolved
    } else if restores(s).any(|o| o.is_running() || o.succeeded()) {
        CustomerStatus::Recovering
    } else if s.incident_type.is_some() {
        CustomerStatus::Identified
    } else {
        CustomerStatus::Investigating
    }
}

fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn span(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (h, m) = (minutes / 60, minutes % 60);
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (h, m) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

fn service_list(services: &[String]) -> String {
    match services {
        [] => "some of our services".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The cause in words a customer understands, from the incident type.
fn plain_cause(s: &Incident) -> &'static str {
    match s.incident_type.as_deref() {
        Some("infra") => "a failure in the systems that run our services",
        Some("data") => "a problem with stored data",
        Some("combined") => "a failure in the systems that run our services and in stored data",
        _ => "not yet known; we are still investigating",
    }
}

fn component_label(status: &str) -> &'static str {
    match status {
        "operational" => "Operational",
        "degraded_performance" => "Degraded performance",
        "partial_outage" => "Partial outage",
        _ => "Major outage",
    }
}

/// Compose the customer text of `stage` from the incident as it stands at `now`, naming
/// `services` (empty: "some of our services").
pub fn compose(s: &Incident, stage: Stage, services: &[String], now: DateTime<Utc>) -> Composed {
    let next = now + Duration::minutes(CUSTOMER_UPDATE_MINUTES);
    let affected = service_list(services);
    let status = match stage {
        Stage::Initial => CustomerStatus::Investigating,
        Stage::Resolved => CustomerStatus::Resolved,
        Stage::Update => match customer_status(s) {
            CustomerStatus::Resolved => CustomerStatus::Recovering,
            other => other,
        },
    };
    let (statuspage_status, component_status) = match status {
        CustomerStatus::Investigating => ("investigating", "major_outage"),
        CustomerStatus::Identified => ("identified", "major_outage"),
        CustomerStatus::Recovering if recovered(s) => ("monitoring", "degraded_performance"),
        CustomerStatus::Recovering => ("identified", "major_outage"),
        CustomerStatus::Resolved => ("resolved", "operational"),
    };
    let list = |out: &mut Vec<String>| {
        if !services.is_empty() {
            out.push("Affected services:".into());
            for name in services {
                out.push(format!("- {name}: {}", component_label(component_status)));
            }
        }
    };
    let mut body = Vec::new();
    let (title, next_update_at) = match stage {
        Stage::Initial => {
            body.push(format!(
                "We are currently experiencing a disruption affecting {affected}. Our team has been engaged and is actively working on recovery."
            ));
            body.push(format!(
                "We will provide an update within {CUSTOMER_UPDATE_MINUTES} minutes, by {}.",
                clock(next)
            ));
            list(&mut body);
            (
                match services {
                    [] => "Service Disruption".to_string(),
                    _ => format!("Service Disruption - {}", services.join(", ")),
                },
                Some(next),
            )
        }
        Stage::Update => {
            let progress = |done: bool| if done { "Restored" } else { "In progress" };
            let infra_done =
                restores(s).any(|o| o.spec.kind == OperationKind::InfraRestore && o.succeeded());
            let data_done = restores(s).any(|o| o.spec.kind.restores_database() && o.succeeded());
            let (infrastructure, critical) = match s.incident_type.as_deref() {
                Some("data") => ("Not affected", progress(data_done)),
                Some("infra") => (progress(infra_done), progress(infra_done)),
                _ => (progress(infra_done), progress(infra_done && data_done)),
            };
            body.push(match status {
                CustomerStatus::Investigating => format!(
                    "Update: We are still investigating the disruption affecting {affected}. Our team is working on recovery."
                ),
                _ => format!(
                    "Update: We have identified the issue as {}. Our team is executing our disaster recovery plan.",
                    plain_cause(s)
                ),
            });
            body.push("Current progress:".into());
            body.push(format!("- Infrastructure: {infrastructure}"));
            body.push(format!("- Critical services: {critical}"));
            body.push("- All services: In progress".into());
            body.push(match (recovered(s), recovery_estimate(s, now)) {
                (false, Some(by)) => format!(
                    "Estimated time to full recovery: about {} (by {}).",
                    span(by - now),
                    clock(by)
                ),
                (true, _) => {
                    "Estimated time to full recovery: service is being restored and checked now."
                        .into()
                }
                (false, None) => {
                    "Estimated time to full recovery: we will share an estimate as soon as we have one."
                        .into()
                }
            });
            list(&mut body);
            body.push(format!("Next update: {}", clock(next)));
            ("Service Disruption - Update".to_string(), Some(next))
        }
        Stage::Resolved => {
            let end = s.resolved_at.unwrap_or(now);
            body.push(format!(
                "The service disruption that began at {} has been fully resolved as of {}.",
                when(s.declared_at),
                when(end)
            ));
            body.push(format!(
                "Root cause: {}.",
                plain_cause(s).split(';').next().unwrap_or("")
            ));
            body.push(format!("Duration: {}", span(end - s.declared_at)));
            body.push(format!("Data impact: {}", data_impact(s)));
            list(&mut body);
            body.push(
                "We will be publishing a detailed post-incident report within 5 business days. We apologize for the disruption and are taking steps to prevent similar issues in the future."
                    .into(),
            );
            ("Service Disruption - Resolved".to_string(), None)
        }
    };
    Composed {
        title,
        status,
        statuspage_status,
        component_status,
        body: body.join("\n"),
        next_update_at,
    }
}

/// The guide's "None / Transactions between X and Y may need review".
fn data_impact(s: &Incident) -> String {
    let done = |kind: OperationKind| {
        s.operations
            .iter()
            .rev()
            .find(|o| o.spec.kind == kind && o.succeeded())
    };
    if let Some(op) = done(OperationKind::Pitr)
        && let Some(target) = op.spec.target
    {
        return format!(
            "Changes made between {} and {} may need review.",
            when(target),
            when(s.declared_at)
        );
    }
    if done(OperationKind::RestoreLatest).is_some() {
        return format!(
            "Changes made shortly before {} may need review; we will contact affected customers.",
            when(s.declared_at)
        );
    }
    "None".into()
}

/// The incident's own internal names: database clusters, restored objects, backups.
pub fn internal_words(s: &Incident, default_cluster: Option<&str>) -> Vec<String> {
    let mut words: Vec<String> = default_cluster.map(str::to_string).into_iter().collect();
    for op in s
        .operations
        .iter()
        .map(|o| &o.spec)
        .chain(s.previews.iter().map(|p| &p.spec))
    {
        words.extend(op.cluster.clone());
        words.extend(op.backup.clone());
        words.push(op.object_name.clone());
    }
    words.retain(|w| !w.trim().is_empty());
    words.sort();
    words.dedup();
    words
}

/// Internal terms found in `text` (whole words, any case), [`INTERNAL_TERMS`] and `extra`.
pub fn internal_terms_in(text: &str, extra: &[String]) -> Vec<String> {
    let lower = text.to_lowercase();
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let terms = INTERNAL_TERMS
        .iter()
        .map(|t| t.to_string())
        .chain(extra.iter().map(|t| t.to_lowercase()));
    for term in terms {
        let hit = lower.match_indices(term.as_str()).any(|(i, m)| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + m.len()..].chars().next();
            !before.is_some_and(word_char) && !after.is_some_and(word_char)
        });
        if hit && !found.contains(&term) {
            found.push(term);
        }
    }
    // The incident's own reference (INC-3) is internal too.
    if lower.contains("inc-") {
        found.push("INC-…".into());
    }
    found
}

/// What the decision needs besides the state: the time, whether a status page is set up,
/// and the internal names to keep out of customer text.
pub struct CommsCtx<'a> {
    pub now: DateTime<Utc>,
    pub status_page: bool,
    pub default_cluster: Option<&'a str>,
}

/// Who may speak to customers: the communications lead; the incident commander too while no
/// communications lead is assigned (the guide: recovery and status-page writing are split).
fn may_speak(s: &Incident, caller: &Caller, what: &str) -> Result<(), Refusal> {
    let me = caller.actor.id.as_str();
    match s.role("comms") {
        Some(lead) if lead == me => Ok(()),
        Some(lead) => refuse(format!(
            "Only the communications lead <@{lead}> can {what}. Ask them, or reassign with `/dr role comms @you`."
        )),
        None if s.is_ic(&caller.actor) => Ok(()),
        None => refuse(format!(
            "Only the communications lead can {what}, and none is assigned: the incident commander <@{}> assigns one with `/dr role comms @name`.",
            s.role("ic").unwrap_or("?")
        )),
    }
}

fn find<'s>(s: &'s Incident, id: &str) -> Result<&'s Draft, Refusal> {
    s.comms.draft(id).ok_or_else(|| {
        let ids: Vec<&str> = s.comms.drafts.iter().map(|d| d.id.as_str()).collect();
        Refusal(if ids.is_empty() {
            format!(
                "No draft {id} in {}: there are none yet. Write one with `/dr comms draft <initial|update|resolved>`.",
                incident_ref(s.id)
            )
        } else {
            format!(
                "No draft {id} in {}. Drafts: {}.",
                incident_ref(s.id),
                ids.join(", ")
            )
        })
    })
}

/// Decide a `/dr comms …` command. Drafting composes the text from the state; an edit
/// replaces the message (the comms lead's words: internal terms are warned about, not
/// refused); a publication is recorded once and queued for the status page.
pub fn decide(
    s: &Incident,
    cmd: &CommsCommand,
    caller: &Caller,
    ctx: &CommsCtx,
) -> Result<Vec<EventKind>, Refusal> {
    let extra = internal_words(s, ctx.default_cluster);
    match cmd {
        CommsCommand::Draft(stage) => {
            if s.role("comms") != Some(caller.actor.id.as_str()) && !s.is_ic(&caller.actor) {
                may_speak(s, caller, "draft customer updates")?;
            }
            let services = affected_services(s);
            let c = compose(s, *stage, &services, ctx.now);
            Ok(vec![EventKind::CommsDrafted {
                draft: format!("C{}", s.comms.drafts.len() + 1),
                stage: *stage,
                status: c.status,
                statuspage_status: c.statuspage_status.into(),
                component_status: c.component_status.into(),
                title: c.title,
                body: c.body,
                services,
                next_update_at: c.next_update_at,
            }])
        }
        CommsCommand::Edit { id, text } => {
            may_speak(s, caller, "edit customer updates")?;
            let d = find(s, id)?;
            if d.published_at.is_some() {
                return refuse(format!(
                    "{} is already published; it cannot change. Write the next one with `/dr comms draft update`.",
                    d.id
                ));
            }
            let text = text.trim();
            if text.is_empty() {
                return refuse(format!(
                    "An edit needs the new message: `/dr comms edit {} <text>`.",
                    d.id
                ));
            }
            Ok(vec![EventKind::CommsEdited {
                draft: d.id.clone(),
                body: text.to_string(),
                warnings: internal_terms_in(text, &extra),
            }])
        }
        CommsCommand::Publish { id } => {
            may_speak(s, caller, "publish customer updates")?;
            let d = find(s, id)?;
            if let Some(at) = d.published_at {
                return refuse(format!(
                    "{} was already published at {}; it is sent once. Write the next one with `/dr comms draft update`.",
                    d.id,
                    when(at)
                ));
            }
            if !ctx.status_page {
                return refuse(
                    "No status page is configured ([statuspage] page_id and api_key, see the README), so nothing can be published. Post the draft's text by hand; it stays on the timeline.",
                );
            }
            if let Some(due) = d.next_update_at
                && due <= ctx.now
            {
                return refuse(format!(
                    "{} promises the next update by {}, which has passed. Draft a fresh one with `/dr comms draft {}`.",
                    d.id,
                    clock(due),
                    d.stage.word()
                ));
            }
            Ok(vec![EventKind::CommsPublished {
                draft: d.id.clone(),
                warnings: internal_terms_in(&d.text(), &extra),
            }])
        }
    }
}

/// Channel posts for the comms events, and the status-page row of a publication.
pub fn posts_for(s: &Incident, event: &Event) -> Vec<Post> {
    let by = &event.actor.name;
    match &event.kind {
        EventKind::CommsDrafted { draft, .. } => {
            let Some(d) = s.comms.draft(draft) else {
                return vec![];
            };
            let mut text = format!(
                "Customer update draft {} ({}) by {by}, not published yet:\n{}\n",
                d.id,
                d.stage.word(),
                d.text()
            );
            if d.services.is_empty() {
                text.push_str(
                    "(No affected services are recorded, so it says \"some of our services\".)\n",
                );
            }
            text.push_str(&format!(
                "Edit with `/dr comms edit {} <text>`, publish with `/dr comms publish {}`.",
                d.id, d.id
            ));
            vec![Post::new(PostKind::Announcement, text)]
        }
        EventKind::CommsEdited {
            draft, warnings, ..
        } => {
            let Some(d) = s.comms.draft(draft) else {
                return vec![];
            };
            let mut text = format!(
                "Draft {} edited by {by}:\n{}\nPublish with `/dr comms publish {}`.",
                d.id,
                d.text(),
                d.id
            );
            if !warnings.is_empty() {
                text.push_str(&format!(
                    "\n⚠ It contains internal terms customers may not understand: {}.",
                    warnings.join(", ")
                ));
            }
            vec![Post::new(PostKind::Announcement, text)]
        }
        EventKind::CommsPublished { draft, warnings } => {
            let Some(d) = s.comms.draft(draft) else {
                return vec![];
            };
            let mut text = format!(
                "Customer update {} ({}) published to the status page by {by}.",
                d.id,
                d.status.label()
            );
            if let Some(next) = d.next_update_at {
                text.push_str(&format!(
                    " It promises the next update by {}; the communications lead is reminded then.",
                    clock(next)
                ));
            }
            if !warnings.is_empty() {
                text.push_str(&format!(
                    "\n⚠ It contains internal terms: {}.",
                    warnings.join(", ")
                ));
            }
            vec![Post::new(PostKind::Announcement, text)]
        }
        EventKind::CommsReminderSent { draft, due } => {
            let who = s.role("comms").or(s.role("ic")).unwrap_or("?");
            vec![Post::new(
                PostKind::Reminder,
                format!(
                    "<@{who}> {}: the status page update promised in {draft} for {} is due. Write it with `/dr comms draft update` (or `resolved`), then `/dr comms publish <id>`. If nothing changed, say so: silence breaks trust.",
                    incident_ref(s.id),
                    clock(*due)
                ),
            )]
        }
        _ => vec![],
    }
}

/// The status-page row a publication queues (on [`STATUSPAGE_CHANNEL`]).
pub fn publication_post(s: &Incident, event: &Event) -> Option<Post> {
    let EventKind::CommsPublished { draft, .. } = &event.kind else {
        return None;
    };
    let d = s.comms.draft(draft)?;
    let mut post = Post::new(PostKind::Publication, d.text());
    post.publication = Some(Publication {
        incident: incident_ref(s.id),
        declared_at: s.declared_at,
        draft: d.id.clone(),
        title: d.title.clone(),
        status: d.statuspage_status.clone(),
        body: d.body.clone(),
        services: d.services.clone(),
        component_status: d.component_status.clone(),
    });
    Some(post)
}

#[cfg(test)]
mod tests;
