//! Platform-neutral messages: channel posts caused by events, command replies and views.
//! Adapters turn them into Block Kit, embeds or console text. Mentions use `<@id>`, the form
//! both Slack and Discord understand; the console prints them as `@id`.

use chrono::{DateTime, Duration, Utc};

use crate::features::checklist::{self, ItemState};
use crate::features::{cadence, tabletop};
use crate::incident::event::{Event, EventKind, Outcome};
use crate::incident::state::Incident;
use crate::incident::{Post, PostKind, fmt_time, incident_ref};
use crate::sop::{Runbook, fill};

impl Post {
    /// The pinned status message's content as of `r.now`.
    pub fn status(s: &Incident, r: &Render) -> Post {
        Post::new(PostKind::Status, status_text(s, r, false))
    }
}

fn duration_words(d: Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn mention(user: Option<&str>) -> String {
    user.map(|u| format!("<@{u}>"))
        .unwrap_or_else(|| "(unassigned)".into())
}

fn severity(s: &Incident) -> String {
    s.severity.to_uppercase()
}

fn path_words(s: &Incident, runbook: &Runbook) -> String {
    match s
        .incident_type
        .as_deref()
        .and_then(|t| runbook.incident_type(t))
    {
        Some(t) => format!("{} (SOP §{})", t.label, t.sections.join(" → §")),
        None => "not chosen yet: classify with `/dr type <infra|data|combined>`".into(),
    }
}

pub fn phase(s: &Incident) -> String {
    if s.resolved_at.is_some() {
        return "resolved".into();
    }
    if s.halt.is_some() {
        return "HALTED".into();
    }
    if let Some(op) = s.running_operations().next() {
        return format!("{} in progress", op.spec.kind.label());
    }
    if s.incident_type.is_none() {
        return "triage".into();
    }
    if s.operations
        .iter()
        .any(|o| o.spec.kind.is_restore() && o.succeeded())
    {
        return "post-recovery checks".into();
    }
    "recovery".into()
}

/// Context for rendering: the runbook and whether cluster messages come from the sandbox.
pub struct Render<'a> {
    pub runbook: &'a Runbook,
    /// Severities whose launches need a second operator (named in previews).
    pub two_person_severities: &'a [String],
    pub now: DateTime<Utc>,
    /// The service catalog and DR plan (issue 11).
    pub continuity: &'a crate::catalog::Continuity,
    /// The web view's public address: the declaration, the pinned status and the final
    /// summary link to the incident's page.
    pub public_url: Option<&'a str>,
}

/// "Incident page: https://…/incidents/INC-3", when the web view has a public address.
fn page_line(s: &Incident, r: &Render) -> Option<String> {
    r.public_url.map(|base| {
        format!(
            "Incident page: {}",
            crate::incident::incident_url(base, s.id)
        )
    })
}

/// Channel posts an event causes, rendered from the state after it.
pub fn posts_for(s: &Incident, event: &Event, r: &Render) -> Vec<Post> {
    let t = &r.runbook.templates;
    let by = &event.actor.name;
    let post = |kind, text: String| vec![Post::new(kind, text)];
    match &event.kind {
        EventKind::Declared { .. } => {
            let due = cadence::next_due(s, &r.runbook.cadence);
            let every = r
                .runbook
                .cadence
                .interval_at_age(Duration::zero())
                .num_minutes();
            let mut text = fill(
                &t.declaration,
                &[
                    ("severity", &severity(s)),
                    ("type", s.incident_type.as_deref().unwrap_or("unclassified")),
                    ("incident", &incident_ref(s.id)),
                    ("title", &s.title),
                    ("ic", &mention(s.role("ic"))),
                    ("path", &path_words(s, r.runbook)),
                    ("every", &every.to_string()),
                    ("next_due", &due.map(fmt_time).unwrap_or_default()),
                ],
            );
            if s.drill {
                text = format!("DRILL (kept out of RTO statistics). {text}");
            }
            if let Some(line) = page_line(s, r) {
                text = format!("{text}\n{line}");
            }
            post(PostKind::Announcement, text)
        }
        EventKind::SeverityChanged { from, to } => post(
            PostKind::Announcement,
            format!(
                "{} re-graded {} → {} by {by}.",
                incident_ref(s.id),
                from.to_uppercase(),
                to.to_uppercase()
            ),
        ),
        EventKind::Classified { to, .. } => post(
            PostKind::Announcement,
            format!(
                "{} classified as {to} by {by}. Recovery path: {}. See `/dr path`.",
                incident_ref(s.id),
                path_words(s, r.runbook)
            ),
        ),
        EventKind::RoleAssigned { role, user } => {
            let title = crate::command::Role::parse(role).map_or(role.as_str(), |r| r.title());
            post(
                PostKind::Announcement,
                format!("{title}: <@{user}> (assigned by {by})."),
            )
        }
        EventKind::UpdatePosted {
            text, automatic, ..
        } => {
            if *automatic {
                post(PostKind::Update, text.clone())
            } else {
                let due = cadence::next_due(s, &r.runbook.cadence)
                    .map(fmt_time)
                    .unwrap_or_default();
                post(
                    PostKind::Update,
                    format!(
                        "Update from {by} ({}): {text}\nNext update by {due}.",
                        incident_ref(s.id)
                    ),
                )
            }
        }
        EventKind::ReminderSent { slot } => {
            let minutes = (*slot - r.now).num_minutes().max(0);
            let comms = mention(s.role("comms").or(s.role("ic")));
            post(
                PostKind::Reminder,
                fill(
                    &t.reminder,
                    &[
                        ("comms", &comms),
                        ("incident", &incident_ref(s.id)),
                        ("due", &fmt_time(*slot)),
                        ("minutes", &minutes.to_string()),
                    ],
                ),
            )
        }
        EventKind::Escalated { reason } => post(
            PostKind::Announcement,
            format!(
                "STOP. {} is HALTED: {by} escalated (SOP §12): {reason}\nEvery action is refused until the incident commander {} runs `/dr resume`.",
                incident_ref(s.id),
                mention(s.role("ic"))
            ),
        ),
        EventKind::Resumed => post(
            PostKind::Announcement,
            format!("Halt lifted by {by}; actions are allowed again."),
        ),
        EventKind::LaunchPreviewed { .. }
        | EventKind::LaunchConfirmed { .. }
        | EventKind::LaunchCancelled { .. }
        | EventKind::OperationLaunched { .. }
        | EventKind::OperationProgressed { .. }
        | EventKind::OperationFinished { .. } => operation_posts(s, event, r),
        EventKind::Resolved => {
            let summary_due = s
                .resolved_at
                .map(|at| fmt_time(at + r.runbook.cadence.final_summary_after()))
                .unwrap_or_default();
            post(
                PostKind::Announcement,
                fill(
                    &t.resolution,
                    &[
                        ("incident", &incident_ref(s.id)),
                        ("severity", &severity(s)),
                        ("type", s.incident_type.as_deref().unwrap_or("unclassified")),
                        (
                            "duration",
                            &duration_words(s.resolved_at.unwrap_or(r.now) - s.declared_at),
                        ),
                        ("title", &s.title),
                        ("summary_due", &summary_due),
                    ],
                ),
            )
        }
        EventKind::FinalSummaryPosted => post(PostKind::Summary, final_summary(s, r)),
        // A notice that itself could not be delivered is on the timeline; no notice of it.
        EventKind::DeliveryGaveUp { post: kind, .. } if kind == "notice" => vec![],
        EventKind::DeliveryGaveUp {
            post: kind,
            excerpt,
            attempts,
            error,
            ..
        } => post(
            PostKind::Notice,
            format!(
                "⚠ drbot could not deliver a {kind} message of {} after {attempts} attempt(s) \
                 and gave up ({error}). It is on the timeline (`/dr timeline`); `/dr status` \
                 shows where things stand. It began: “{excerpt}”",
                incident_ref(s.id)
            ),
        ),
        EventKind::RtoThreshold {
            service, percent, ..
        } => post(
            PostKind::Reminder,
            crate::features::continuity::view::threshold_post(s, r.continuity, service, *percent),
        ),
        EventKind::ServicesAffected { .. } => vec![],
        EventKind::TabletopStarted { .. }
        | EventKind::InjectPosted { .. }
        | EventKind::TabletopEnded { .. } => tabletop::post_text(s, event)
            .map(|text| Post::new(PostKind::Announcement, text))
            .into_iter()
            .collect(),
        EventKind::CommsDrafted { .. }
        | EventKind::CommsEdited { .. }
        | EventKind::CommsPublished { .. }
        | EventKind::CommsReminderSent { .. } => crate::features::comms::posts_for(s, event),
        EventKind::PageRequested { .. }
        | EventKind::PageDelivered { .. }
        | EventKind::PageNotDelivered { .. }
        | EventKind::PageChanged { .. }
        | EventKind::FollowupRequested { .. }
        | EventKind::FollowupFiled { .. }
        | EventKind::FollowupNotFiled { .. }
        | EventKind::FollowupStateRead { .. }
        | EventKind::FollowupWaived { .. } => crate::features::paging::posts_for(s, event, None),
        EventKind::Checked { .. }
        | EventKind::Unchecked { .. }
        | EventKind::MarkedNotApplicable { .. }
        | EventKind::NoteAdded { .. }
        | EventKind::BackupsChecked { .. }
        | EventKind::ProbeRecorded { .. } => vec![],
    }
}

/// Channel posts of the recovery actions: previews, launches, progress, outcomes.
fn operation_posts(s: &Incident, event: &Event, r: &Render) -> Vec<Post> {
    let op_sandbox = |id: &str| s.operation(id).is_some_and(|o| o.backend == "sandbox");
    let by = &event.actor.name;
    let post = |kind, text: String| vec![Post::new(kind, text)];
    match &event.kind {
        EventKind::LaunchPreviewed { preview, .. } => {
            let Some(p) = s.preview(preview) else {
                return vec![];
            };
            let mut text = format!(
                "Preview {} by {by}: {} `{}` (expires {})\n",
                p.id,
                p.spec.kind.label(),
                p.spec.object_name,
                fmt_time(p.expires_at)
            );
            for line in &p.plan.summary {
                text.push_str(&format!("• {line}\n"));
            }
            if let Some(target) = p.spec.target {
                text.push_str(&format!("• target {}\n", fmt_time(target)));
            }
            for w in &p.warnings {
                text.push_str(&format!("⚠ {w}\n"));
            }
            text.push_str(&format!("```\n{}\n```\n", p.plan.manifest.trim_end()));
            let two_person = r
                .two_person_severities
                .iter()
                .any(|sev| sev.eq_ignore_ascii_case(&s.severity));
            text.push_str(&format!(
                "Confirm with `/dr confirm {}` or cancel with `/dr cancel {}`{}.",
                p.id,
                p.id,
                if two_person {
                    format!(" ({}: a second operator must confirm)", severity(s))
                } else {
                    String::new()
                }
            ));
            let mut post = Post::new(PostKind::Preview, text);
            post.sandbox = p.backend == "sandbox";
            post.preview = Some(p.id.clone());
            vec![post]
        }
        EventKind::LaunchConfirmed { preview, operation } => {
            let Some(op) = s.operation(operation) else {
                return vec![];
            };
            let mut post = Post::new(
                PostKind::Progress,
                format!(
                    "{preview} confirmed by {by}: launching {operation} ({} `{}`).",
                    op.spec.kind.label(),
                    op.spec.object_name
                ),
            );
            post.sandbox = op_sandbox(operation);
            vec![post]
        }
        EventKind::LaunchCancelled { preview } => post(
            PostKind::Announcement,
            format!("{preview} cancelled by {by}; nothing was launched."),
        ),
        EventKind::OperationLaunched { operation, object } => {
            let mut post = Post::new(
                PostKind::Progress,
                format!("{operation} launched: `{object}` created."),
            );
            post.sandbox = op_sandbox(operation);
            post.in_thread = true;
            vec![post]
        }
        EventKind::OperationProgressed { .. } => {
            let mut post = Post::new(PostKind::Progress, format!("{}.", event.kind.describe()));
            if let EventKind::OperationProgressed { operation, .. } = &event.kind {
                post.sandbox = op_sandbox(operation);
            }
            post.in_thread = true;
            vec![post]
        }
        EventKind::OperationFinished {
            operation, outcome, ..
        } => {
            let Some(op) = s.operation(operation) else {
                return vec![];
            };
            let took = op
                .finished
                .as_ref()
                .map(|f| duration_words(f.at - op.confirmed_at))
                .unwrap_or_default();
            let next = match (outcome, op.spec.kind.restores_database()) {
                (Outcome::Succeeded, true) => " Next: `/dr verify` and the checks of SOP §9.3.",
                (Outcome::Succeeded, false) => "",
                (Outcome::Failed, _) => {
                    " Check the cluster; if the way forward is unclear, `/dr escalate` (SOP §12)."
                }
            };
            let mut post = Post::new(
                PostKind::Progress,
                format!("{} after {took}.{next}", event.kind.describe()),
            );
            post.sandbox = op.backend == "sandbox";
            vec![post]
        }
        _ => Vec::new(),
    }
}

/// The automatic progress update for the given slots, from what changed since the last one.
pub fn automatic_update(s: &Incident, r: &Render, slots: &[DateTime<Utc>]) -> String {
    let t = &r.runbook.templates;
    let mut changes: Vec<String> = s
        .changes_since_update
        .iter()
        .map(|c| format!("• {c}"))
        .collect();
    for op in s.running_operations() {
        changes.push(format!(
            "• {} {} `{}`: {} {}%",
            op.spec.id,
            op.spec.kind.label(),
            op.spec.object_name,
            op.phase,
            op.percent
        ));
    }
    let (done, na, open) = checklist::counts(s, r.runbook);
    changes.push(format!("• checklist: {done} done, {na} n/a, {open} open"));
    changes.extend(
        crate::features::continuity::view::status_lines(s, r.continuity, r.now, true)
            .into_iter()
            .map(|l| match l.strip_prefix("• ") {
                Some(rest) => format!("  ◦ {rest}"),
                None => format!("• {l}"),
            }),
    );
    if s.changes_since_update.is_empty() && s.running_operations().next().is_none() {
        changes.insert(0, t.no_change.clone());
    }
    if slots.len() > 1 {
        let list: Vec<String> = slots
            .iter()
            .map(|t| t.format("%H:%MZ").to_string())
            .collect();
        changes.push(format!(
            "• late: drbot was unavailable for the updates due {}",
            list.join(", ")
        ));
    }
    let last_slot = slots.iter().max().copied().unwrap_or(r.now);
    let next = cadence::next_after(last_slot, s.declared_at, &r.runbook.cadence);
    let comms = match s.role("comms") {
        Some(u) => format!("<@{u}> please follow up with a written update."),
        None => "No comms lead assigned: `/dr role comms @someone`.".into(),
    };
    fill(
        &t.automatic_update,
        &[
            ("incident", &incident_ref(s.id)),
            ("severity", &severity(s)),
            ("phase", &phase(s)),
            ("age", &duration_words(r.now - s.declared_at)),
            ("changes", &changes.join("\n")),
            ("next_due", &fmt_time(next)),
            ("comms", &comms),
        ],
    )
}

pub fn final_summary(s: &Incident, r: &Render) -> String {
    let (done, na, _) = checklist::counts(s, r.runbook);
    let ops: Vec<String> = s
        .operations
        .iter()
        .map(|o| {
            let end = o.finished.as_ref().map_or("unfinished".to_string(), |f| {
                format!(
                    "{} after {}",
                    if f.outcome == Outcome::Succeeded {
                        "succeeded"
                    } else {
                        "FAILED"
                    },
                    duration_words(f.at - o.confirmed_at)
                )
            });
            format!(
                "• {} {} `{}`: {end}",
                o.spec.id,
                o.spec.kind.label(),
                o.spec.object_name
            )
        })
        .collect();
    let ops = if ops.is_empty() {
        "No operations were launched.".to_string()
    } else {
        ops.join("\n")
    };
    let resolved = s.resolved_at.unwrap_or(r.now);
    let mut text = fill(
        &r.runbook.templates.final_summary,
        &[
            ("incident", &incident_ref(s.id)),
            ("severity", &severity(s)),
            ("type", s.incident_type.as_deref().unwrap_or("unclassified")),
            ("title", &s.title),
            ("declared", &fmt_time(s.declared_at)),
            ("resolved", &fmt_time(resolved)),
            ("duration", &duration_words(resolved - s.declared_at)),
            ("operations", &ops),
            ("checked", &done.to_string()),
            ("na", &na.to_string()),
        ],
    );
    if let Some(t) = s.pitr_target {
        text.push_str(&format!("\nPITR target: {}", fmt_time(t)));
    }
    if let Some(line) = page_line(s, r) {
        text.push_str(&format!("\n{line}"));
    }
    text
}

/// The immediate reply to a command that wrote these events.
pub fn reply_for(s: &Incident, events: &[Event]) -> String {
    let mut lines = Vec::new();
    for e in events {
        match &e.kind {
            EventKind::Declared { .. } => lines.push(format!(
                "{} declared: {} {} \"{}\". You are incident commander.",
                incident_ref(s.id),
                severity(s),
                s.incident_type.as_deref().unwrap_or("unclassified"),
                s.title
            )),
            EventKind::LaunchPreviewed { preview, .. } => {
                lines.push(format!("Preview {preview} posted to the channel; an operator confirms with `/dr confirm {preview}`."))
            }
            EventKind::BackupsChecked { ok, report, backend } => {
                let label = if backend == "sandbox" { "[SANDBOX] " } else { "" };
                lines.push(format!("{label}Offsite backups: {}", if *ok { "OK" } else { "PROBLEMS" }));
                lines.extend(report.iter().map(|l| format!("• {l}")));
            }
            EventKind::ProbeRecorded { item, passed, evidence, .. } => {
                lines.push(format!("{} {item}: {evidence}", if *passed { "✓" } else { "✗" }))
            }
            EventKind::ServicesAffected { services, infrastructure, pulled_in } => lines.push(
                crate::features::continuity::view::impact_reply(s, services, infrastructure, pulled_in),
            ),
            other => lines.push(format!("{}: {}", incident_ref(s.id), other.describe())),
        }
    }
    lines.join("\n")
}

pub fn status_view(s: &Incident, r: &Render) -> String {
    status_text(s, r, true)
}

/// Whether an event recorded at `at` can change what the pinned status shows. A commit
/// renders the status before and after to see whether it changed, which was two renders per
/// note, the most common command; a note dated at or after the declaration changes nothing
/// there (one dated before it moves the impact's onset).
pub fn may_change_status(kind: &EventKind, at: DateTime<Utc>, declared_at: DateTime<Utc>) -> bool {
    !matches!(kind, EventKind::NoteAdded { .. }) || at < declared_at
}

/// The status without anything that changes by itself as time passes ("12 min ago"): what the
/// pinned message shows, so it is edited only when the incident changes.
fn status_text(s: &Incident, r: &Render, with_age: bool) -> String {
    let mut out = format!(
        "{}{}: {} {} \"{}\" | phase: {}\n",
        if s.drill { "DRILL " } else { "" },
        incident_ref(s.id),
        severity(s),
        s.incident_type.as_deref().unwrap_or("unclassified"),
        s.title,
        phase(s)
    );
    out.push_str(&format!(
        "Declared {} by {}",
        fmt_time(s.declared_at),
        s.declared_by.name
    ));
    if with_age {
        out.push_str(&format!(" ({} ago)", duration_words(r.now - s.declared_at)));
    }
    out.push('\n');
    let roles: Vec<String> = crate::command::Role::ALL
        .iter()
        .map(|role| format!("{}: {}", role.id(), mention(s.role(role.id()))))
        .collect();
    out.push_str(&format!("Roles: {}\n", roles.join(", ")));
    if let Some(h) = &s.halt {
        out.push_str(&format!(
            "HALTED since {} by {}: {}\n",
            fmt_time(h.at),
            h.by.name,
            h.reason
        ));
    }
    if let Some(line) = crate::features::paging::pages_line(s) {
        out.push_str(&line);
        out.push('\n');
    }
    match &s.freeze {
        Some(f) => out.push_str(&format!(
            "Deployments: FROZEN since {} ({})\n",
            fmt_time(f.since),
            f.operation
        )),
        None => out.push_str("Deployments: not frozen by drbot\n"),
    }
    for p in s.previews.iter().filter(|p| {
        p.status == crate::incident::state::PreviewStatus::Pending && p.expires_at >= r.now
    }) {
        out.push_str(&format!(
            "Pending preview {}: {} `{}` (expires {})\n",
            p.id,
            p.spec.kind.label(),
            p.spec.object_name,
            fmt_time(p.expires_at)
        ));
    }
    for o in &s.operations {
        let state = match &o.finished {
            None => format!("{} {}%", o.phase, o.percent),
            Some(f) => format!(
                "{} at {}",
                if f.outcome == Outcome::Succeeded {
                    "succeeded"
                } else {
                    "FAILED"
                },
                fmt_time(f.at)
            ),
        };
        out.push_str(&format!(
            "{} {} `{}`: {state}\n",
            o.spec.id,
            o.spec.kind.label(),
            o.spec.object_name
        ));
    }
    if let Some(t) = s.pitr_target {
        out.push_str(&format!("PITR target: {}\n", fmt_time(t)));
    }
    for line in crate::features::continuity::view::status_lines(s, r.continuity, r.now, with_age) {
        out.push_str(&line);
        out.push('\n');
    }
    let (done, na, open) = checklist::counts(s, r.runbook);
    out.push_str(&format!("Checklist: {done} done, {na} n/a, {open} open\n"));
    match cadence::next_due(s, &r.runbook.cadence) {
        Some(due) => out.push_str(&format!("Next update due {}", fmt_time(due))),
        None => out.push_str(&format!(
            "Resolved {}",
            s.resolved_at.map(fmt_time).unwrap_or_default()
        )),
    }
    if let Some(line) = page_line(s, r) {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

pub fn path_view(s: &Incident, r: &Render) -> String {
    let Some(t) = s.incident_type.as_deref() else {
        let mut out = "No recovery path yet: classify the incident with `/dr type <infra|data|combined>` (SOP §4).".to_string();
        for line in crate::features::continuity::view::path_lines(s, r.continuity) {
            out.push('\n');
            out.push_str(&line);
        }
        return out;
    };
    let mut out = format!("Recovery path for a {t} incident:\n");
    let mut section = "";
    for (sec, step) in r.runbook.path(t) {
        if sec.id != section {
            section = &sec.id;
            out.push_str(&format!("§{} {}\n", sec.id, sec.title));
        }
        let state = checklist::item_state(s, &step.id, step.auto.as_deref(), None);
        let action = step
            .action
            .map(|a| format!(" (`/dr {}`)", a.verb()))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {} {}{action}{}\n",
            state.symbol(),
            step.id,
            step.text,
            item_suffix(&state)
        ));
    }
    for line in crate::features::continuity::view::path_lines(s, r.continuity) {
        out.push_str(&line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

fn item_suffix(state: &ItemState) -> String {
    match state {
        ItemState::Open => String::new(),
        ItemState::Done { by, at, how } => {
            let who = by.as_ref().map_or("drbot".to_string(), |a| a.name.clone());
            let when = at
                .map(|t| format!(" {}", t.format("%H:%MZ")))
                .unwrap_or_default();
            format!(" ({who}{when}: {how})")
        }
        ItemState::NotApplicable { by, reason, .. } => format!(" (n/a, {}: {reason})", by.name),
    }
}

pub fn checklist_view(s: &Incident, r: &Render, section: Option<&str>) -> String {
    let mut out = String::new();
    for sec in r
        .runbook
        .checklist
        .iter()
        .filter(|c| section.is_none_or(|id| c.id == id))
    {
        out.push_str(&format!(
            "§{} {} ({})\n",
            sec.id,
            sec.title,
            if sec.required {
                "required"
            } else {
                "if applicable"
            }
        ));
        for item in &sec.items {
            let state = checklist::checklist_item_state(s, sec, item);
            let probe = if item.probe.is_some() {
                " [verify]"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {} {} {}{probe}{}\n",
                state.symbol(),
                item.id,
                item.text,
                item_suffix(&state)
            ));
        }
    }
    if out.is_empty() {
        return format!(
            "No checklist section {}. Sections: {}",
            section.unwrap_or(""),
            r.runbook
                .checklist
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.trim_end().to_string()
}

pub fn timeline_view(events: &[Event], last: usize) -> String {
    let skip = events.len().saturating_sub(last);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!(
            "… {skip} earlier events (export with `/dr timeline export md`)\n"
        ));
    }
    for e in &events[skip..] {
        out.push_str(&format!(
            "#{:<4} {} {:<10} {}\n",
            e.seq,
            e.at().format("%Y-%m-%d %H:%M:%SZ"),
            e.actor.name,
            e.kind.describe()
        ));
    }
    out.trim_end().to_string()
}
