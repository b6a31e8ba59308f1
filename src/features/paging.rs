//! Paging the on-call and tracking follow-ups, on the core alone: which targets a
//! declaration or a raise pages, `/dr page`, `/dr page resolve`, the resolves `/dr resolve`
//! owes, `/dr followup` (and the incident commander's waiver), their posts and the
//! `/dr followups` view. What reaches the provider and the tracker goes through the outbox
//! (`pager:<target>` and `tracker` lanes), queued with these events in one commit.

use chrono::NaiveDate;

use crate::catalog::Continuity;
use crate::command::Role;
use crate::incident::decision::refuse;
use crate::incident::event::{Event, EventKind, PageAction};
use crate::incident::post::{Post, PostKind};
use crate::incident::reach::{PageStatus, target_title};
use crate::incident::{
    Caller, Ctx, Decision, Draft, Incident, Policy, Refusal, fmt_time, incident_ref,
};

/// Longest follow-up text: a tracker title plus a paragraph.
const MAX_FOLLOWUP: usize = 2000;

/// Whom to call when a page to `target` cannot be delivered: the settings' fallback, the
/// person holding the role in this incident, or the DR plan's holder of the role.
pub fn fallback(
    s: Option<&Incident>,
    policy: &Policy,
    continuity: &Continuity,
    target: &str,
) -> Option<String> {
    if let Some(who) = policy.paging.fallback.get(target) {
        return Some(who.clone());
    }
    if let Some(user) = s.and_then(|s| s.role(target)) {
        return Some(format!(
            "<@{user}> ({} here)",
            Role::parse(target).map_or(target, |r| r.title())
        ));
    }
    let plan_key = match target {
        "ic" => "incident_commander",
        "dr-lead" => "dr_lead",
        "comms" => "communications_lead",
        "db-lead" => "database_lead",
        _ => return None,
    };
    continuity
        .plan
        .as_ref()?
        .roles
        .iter()
        .find(|r| r.key == plan_key)
        .and_then(|r| r.name.clone())
        .map(|name| format!("the {name} (DR plan)"))
}

fn trigger(s: Option<&Incident>, ctx: &Ctx, target: &str, reason: String) -> EventKind {
    EventKind::PageRequested {
        target: target.to_string(),
        action: PageAction::Trigger,
        nth: s.map_or(0, |s| s.reach.pages_of(target)) + 1,
        reason,
        fallback: fallback(s, ctx.policy, ctx.continuity, target),
    }
}

/// The pages a declaration of `severity` sends (`[paging] auto`); none for drills.
pub fn on_declare(severity: &str, ctx: &Ctx) -> Vec<Draft> {
    ctx.policy
        .paging
        .auto
        .get(severity)
        .into_iter()
        .flatten()
        .map(|target| {
            trigger(
                None,
                ctx,
                target,
                format!("declared {}", severity.to_uppercase()),
            )
            .into()
        })
        .collect()
}

/// A raise to `to` pages what `to` pages and is not paged yet.
pub fn on_severity(s: &Incident, to: &str, ctx: &Ctx) -> Vec<EventKind> {
    if s.drill {
        return Vec::new();
    }
    ctx.policy
        .paging
        .auto
        .get(to)
        .into_iter()
        .flatten()
        .filter(|target| !s.reach.page(target).is_some_and(|p| p.is_open()))
        .map(|target| {
            trigger(
                Some(s),
                ctx,
                target,
                format!("raised to {}", to.to_uppercase()),
            )
        })
        .collect()
}

/// `/dr resolve` resolves every page the incident opened.
pub fn on_resolve(s: &Incident) -> Vec<EventKind> {
    s.reach
        .open_pages()
        .map(|p| EventKind::PageRequested {
            target: p.target.clone(),
            action: PageAction::Resolve,
            nth: p.nth,
            reason: "incident resolved".into(),
            fallback: None,
        })
        .collect()
}

fn paging_on(ctx: &Ctx) -> Result<(), Refusal> {
    if ctx.policy.paging.provider.is_none() {
        return refuse(
            "Paging is not configured: set [paging] provider and a routing key per target in [paging.routes] (see the README's Paging section).",
        );
    }
    Ok(())
}

fn known_target(ctx: &Ctx, target: &str) -> Result<(), Refusal> {
    if ctx.policy.paging.targets.iter().any(|t| t == target) {
        return Ok(());
    }
    refuse(format!(
        "Unknown target `{target}`. Targets with a route: {}.",
        ctx.policy.paging.targets.join(", ")
    ))
}

fn may_page(s: &Incident, caller: &Caller) -> Result<(), Refusal> {
    if caller.operator || s.is_ic(&caller.actor) {
        return Ok(());
    }
    refuse(format!(
        "Only the incident commander or an operator can page. Ask <@{}>.",
        s.role("ic").unwrap_or("?")
    ))
}

/// `/dr page <target> [message]`: a target already paged and still open is paged again
/// under a key of its own, so the person is woken again.
pub fn page(
    s: &Incident,
    caller: &Caller,
    ctx: &Ctx,
    target: &str,
    message: Option<&str>,
) -> Result<Decision, Refusal> {
    paging_on(ctx)?;
    known_target(ctx, target)?;
    may_page(s, caller)?;
    if s.drill {
        return refuse(
            "This is a drill: drbot does not wake anyone for it. Page from a real incident.",
        );
    }
    let reason = match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("by {}: {m}", caller.actor.name),
        None => format!("by {}", caller.actor.name),
    };
    Ok(Decision {
        events: vec![trigger(Some(s), ctx, target, reason).into()],
        then_retry: false,
    })
}

/// `/dr page resolve <target>`.
pub fn page_resolve(
    s: &Incident,
    caller: &Caller,
    ctx: &Ctx,
    target: &str,
) -> Result<Decision, Refusal> {
    paging_on(ctx)?;
    known_target(ctx, target)?;
    may_page(s, caller)?;
    let Some(p) = s.reach.page(target).filter(|p| p.is_open()) else {
        return refuse(format!(
            "{} has no open page to {} to resolve.",
            incident_ref(s.id),
            target_title(target)
        ));
    };
    Ok(Decision {
        events: vec![
            EventKind::PageRequested {
                target: target.to_string(),
                action: PageAction::Resolve,
                nth: p.nth,
                reason: format!("by {}", caller.actor.name),
                fallback: None,
            }
            .into(),
        ],
        then_retry: false,
    })
}

/// `/dr followup <text> [@owner] [due=YYYY-MM-DD]`.
pub fn followup(
    s: &Incident,
    ctx: &Ctx,
    text: &str,
    owner: Option<&str>,
    due: Option<NaiveDate>,
) -> Result<Decision, Refusal> {
    let Some(tracker) = &ctx.policy.tracker else {
        return refuse(
            "No tracker is configured ([tracker] kind = \"github\" or \"jira\"), so drbot cannot file follow-ups. Track them elsewhere and tick 9.8.4 with `/dr check 9.8.4`.",
        );
    };
    let text = text.trim();
    if text.is_empty() {
        return refuse("Say what must be done: `/dr followup <text> [@owner] [due=YYYY-MM-DD]`.");
    }
    if text.chars().count() > MAX_FOLLOWUP {
        return refuse(format!(
            "That follow-up is {} characters; keep it under {MAX_FOLLOWUP} and put the detail in the {tracker} ticket.",
            text.chars().count()
        ));
    }
    if let Some(due) = due
        && due < ctx.now.date_naive()
    {
        return refuse(format!(
            "due={due} is in the past; give a date from {} on.",
            ctx.now.date_naive()
        ));
    }
    Ok(Decision {
        events: vec![
            EventKind::FollowupRequested {
                number: s.reach.followups.len() as u32 + 1,
                text: text.to_string(),
                owner: owner.map(str::to_string),
                due,
            }
            .into(),
        ],
        then_retry: false,
    })
}

/// `/dr followup none <reason>`: the incident commander's recorded waiver.
pub fn waive(s: &Incident, caller: &Caller, reason: &str) -> Result<Decision, Refusal> {
    if !s.is_ic(&caller.actor) {
        return refuse(format!(
            "Only the incident commander can waive follow-ups. Ask <@{}>.",
            s.role("ic").unwrap_or("?")
        ));
    }
    if let Some(w) = &s.reach.waiver {
        return refuse(format!(
            "Follow-ups were already waived by {} at {}: {}",
            w.by.name,
            fmt_time(w.at),
            w.reason
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return refuse("Say why no follow-up is needed: `/dr followup none <reason>`.");
    }
    Ok(Decision {
        events: vec![
            EventKind::FollowupWaived {
                reason: reason.to_string(),
            }
            .into(),
        ],
        then_retry: false,
    })
}

/// Channel posts of the page and follow-up events.
pub fn posts_for(s: &Incident, event: &Event, tracker: Option<&str>) -> Vec<Post> {
    let by = &event.actor.name;
    let post = |kind, text: String| vec![Post::new(kind, text)];
    match &event.kind {
        EventKind::PageRequested {
            target,
            action: PageAction::Trigger,
            reason,
            ..
        } => post(
            PostKind::Progress,
            format!("Paging {} ({reason})…", target_title(target)),
        ),
        // A resolve says so once it is done.
        EventKind::PageRequested { .. } => vec![],
        EventKind::PageDelivered {
            target,
            action: PageAction::Trigger,
            ..
        } => post(
            PostKind::Progress,
            format!("Paged {}.", target_title(target)),
        ),
        EventKind::PageDelivered { target, .. } => post(
            PostKind::Progress,
            format!("The page to {} is resolved.", target_title(target)),
        ),
        EventKind::PageNotDelivered {
            target,
            action: PageAction::Trigger,
            error,
            fallback,
            ..
        } => post(
            PostKind::Notice,
            format!(
                "NOT paged: {} — {error} — {}",
                target_title(target),
                match fallback {
                    Some(who) => format!("call {who}"),
                    None => "call them directly".to_string(),
                }
            ),
        ),
        EventKind::PageNotDelivered { target, error, .. } => post(
            PostKind::Notice,
            format!(
                "The page to {} could not be resolved ({error}): resolve it in the paging tool.",
                target_title(target)
            ),
        ),
        EventKind::PageChanged { .. } => post(
            PostKind::Progress,
            format!(
                "{}.",
                crate::incident::reach::describe(&event.kind)
                    .unwrap_or_default()
                    .replacen("the page", "The page", 1)
            ),
        ),
        EventKind::FollowupRequested { number, text, .. } => post(
            PostKind::Progress,
            format!(
                "Filing follow-up #{number} in {} for {by}: {text}",
                tracker.unwrap_or("the tracker")
            ),
        ),
        EventKind::FollowupFiled { number, key, url } => post(
            PostKind::Progress,
            format!(
                "Follow-up #{number} filed as {key}{}.",
                if url.is_empty() {
                    String::new()
                } else {
                    format!(" {url}")
                }
            ),
        ),
        EventKind::FollowupNotFiled { number, error } => post(
            PostKind::Notice,
            format!(
                "Follow-up #{number} was NOT filed: {error}. Fix the cause, then file it again with `/dr followup <text>`."
            ),
        ),
        EventKind::FollowupStateRead { .. } => vec![],
        EventKind::FollowupWaived { reason } => post(
            PostKind::Progress,
            format!(
                "{by} recorded that {} needs no follow-up: {reason} (SOP 9.8.4).",
                incident_ref(s.id)
            ),
        ),
        _ => vec![],
    }
}

/// `/dr followups`.
pub fn followups_view(s: &Incident, tracker: Option<&str>) -> String {
    let r = &s.reach;
    let mut out = format!("{} follow-ups", incident_ref(s.id));
    if let Some(t) = tracker {
        out.push_str(&format!(" ({t})"));
    }
    out.push('\n');
    if r.followups.is_empty() && r.waiver.is_none() {
        out.push_str(
            "None yet. File one with `/dr followup <text> [@owner] [due=YYYY-MM-DD]`, or the incident commander records why none is needed with `/dr followup none <reason>`.",
        );
        return out;
    }
    for f in &r.followups {
        let state = match (&f.key, &f.failed) {
            (Some(key), _) => format!("{key} {}", f.state.as_deref().unwrap_or("filed")),
            (None, Some(why)) => format!("NOT filed ({why})"),
            (None, None) => "filing…".to_string(),
        };
        out.push_str(&format!("#{} [{state}] {}", f.number, f.text));
        if let Some(owner) = &f.owner {
            out.push_str(&format!(" — owner {owner}"));
        }
        if let Some(due) = f.due {
            out.push_str(&format!(" — due {due}"));
        }
        if let Some(url) = &f.url {
            out.push_str(&format!(" {url}"));
        }
        out.push('\n');
    }
    if let Some(w) = &r.waiver {
        out.push_str(&format!("Waived by {}: {}\n", w.by.name, w.reason));
    }
    out.trim_end().to_string()
}

/// One line per page for the status view: `DR lead paged`, `IC NOT paged`.
pub fn pages_line(s: &Incident) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for p in s.reach.pages.iter().rev() {
        if seen.contains(&p.target.as_str()) {
            continue;
        }
        seen.push(&p.target);
        let mut part = format!("{} {}", p.target, p.status.word());
        if p.status == PageStatus::Acknowledged
            && let Some(by) = &p.detail
        {
            part.push_str(&format!(" by {by}"));
        }
        parts.push(part);
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Pages: {}",
            parts.into_iter().rev().collect::<Vec<_>>().join(", ")
        )
    })
}

/// PagerDuty's payload severity for an incident severity.
fn provider_severity(severity: &str) -> &'static str {
    match severity {
        "sev1" => "critical",
        "sev2" => "error",
        "sev3" => "warning",
        _ => "info",
    }
}

/// What an event queues on the provider's or the tracker's lane, with the lane: committed
/// with the event, so a page or a ticket is never asked for without its record, nor
/// recorded without being asked for.
pub fn lane_post(s: &Incident, event: &Event, public_url: Option<&str>) -> Option<(String, Post)> {
    let page_url = public_url.map(|base| crate::incident::incident_url(base, s.id));
    match &event.kind {
        EventKind::PageRequested {
            target,
            action,
            nth,
            reason,
            ..
        } => {
            let dedup_key = crate::incident::reach::page_key(s.id, s.declared_at, target, *nth);
            let summary = format!(
                "[{}] {} {} — {} paged ({reason})",
                s.severity.to_uppercase(),
                incident_ref(s.id),
                s.title,
                target_title(target)
            );
            let mut post = Post::new(PostKind::Page, summary.clone());
            post.page = Some(crate::incident::post::PageOrder {
                incident: incident_ref(s.id),
                target: target.clone(),
                action: *action,
                dedup_key,
                summary,
                severity: provider_severity(&s.severity).to_string(),
                link: page_url,
            });
            Some((
                format!("{}{target}", crate::incident::post::PAGER_LANE),
                post,
            ))
        }
        EventKind::FollowupRequested {
            number,
            text,
            owner,
            due,
        } => {
            let first = text.lines().next().unwrap_or(text);
            let title = crate::incident::clip_chars(first, 120);
            let mut post = Post::new(PostKind::Followup, title.clone());
            post.followup = Some(crate::incident::post::FollowupOrder {
                incident: incident_ref(s.id),
                declared_at: s.declared_at,
                number: *number,
                marker: crate::incident::reach::followup_marker(s.id, s.declared_at, *number),
                title: format!("{} follow-up: {title}", incident_ref(s.id)),
                text: text.clone(),
                owner: owner.clone(),
                due: *due,
                link: page_url.unwrap_or_else(|| {
                    format!(
                        "{} ({}), declared {}",
                        incident_ref(s.id),
                        s.title,
                        fmt_time(s.declared_at)
                    )
                }),
            });
            Some((crate::incident::post::TRACKER_LANE.to_string(), post))
        }
        _ => None,
    }
}
