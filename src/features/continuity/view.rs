//! Text for operators: status lines, threshold posts, the recovery order, export sections.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::impact::{self, ServiceReport, onset};
use crate::catalog::units::{money_words, span_words};
use crate::catalog::{Continuity, NO_CATALOG, NO_PLAN};
use crate::incident::impact::PulledIn;
use crate::incident::state::Incident;
use crate::incident::{fmt_time, incident_ref};

fn hm(t: DateTime<Utc>) -> String {
    t.format("%H:%MZ").to_string()
}

/// The reply to `/dr impact` and `declare … services=`.
pub fn impact_reply(
    s: &Incident,
    services: &[String],
    infrastructure: &[String],
    pulled_in: &[PulledIn],
) -> String {
    let mut lines = Vec::new();
    let mut first = format!("{} impact recorded.", incident_ref(s.id));
    if !services.is_empty() {
        first.push_str(&format!(" Affected: {}.", services.join(", ")));
    }
    if !infrastructure.is_empty() {
        first.push_str(&format!(" Infrastructure: {}.", infrastructure.join(", ")));
    }
    lines.push(first);
    for p in pulled_in {
        lines.push(format!("{} depends on {}: added.", p.service, p.via));
    }
    lines.push("`/dr status` shows each service's RTO; `/dr path` the recovery order.".into());
    lines.join("\n")
}

/// Lines for `/dr status` (`live`: time left, revenue so far) or the pinned status (only what
/// changes with the timeline: deadlines, breaches announced). Empty when nothing is affected.
pub fn status_lines(s: &Incident, c: &Continuity, now: DateTime<Utc>, live: bool) -> Vec<String> {
    let st = &s.continuity;
    if st.services.is_empty() && st.infrastructure.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let start = onset(s);
    let since = if start < s.declared_at {
        format!(" (impact since {})", fmt_time(start))
    } else {
        String::new()
    };
    out.push(format!("Affected services{since}:"));
    let Some(catalog) = c.catalog.as_ref() else {
        let names: Vec<&str> = st.services.iter().map(|a| a.name.as_str()).collect();
        out.push(format!("• {} ({NO_CATALOG})", names.join(", ")));
        return out;
    };
    for r in impact::reports(s, Some(catalog)) {
        out.push(format!("• {}", service_line(s, &r, now, live)));
    }
    if !st.infrastructure.is_empty() {
        out.push(format!(
            "Infrastructure affected: {}",
            st.infrastructure.join(", ")
        ));
    }
    let rate = impact::revenue_rate(s, catalog);
    let until = s.resolved_at.unwrap_or(now);
    if live || s.resolved_at.is_some() {
        out.push(format!(
            "Revenue at risk so far: {} ({}/h for {})",
            money_words(impact::revenue_at_risk(s, catalog, until)),
            money_words(rate),
            span_words(until - start)
        ));
    } else {
        out.push(format!(
            "Revenue at risk: {}/h since {}",
            money_words(rate),
            hm(start)
        ));
    }
    out
}

fn service_line(s: &Incident, r: &ServiceReport, now: DateTime<Utc>, live: bool) -> String {
    let a = r.affected;
    let via = a
        .via
        .as_ref()
        .map(|v| format!(" (via {v})"))
        .unwrap_or_default();
    let (Some(svc), Some(deadline)) = (r.service, r.deadline) else {
        return format!("{}{via}: not in the service catalog", a.name);
    };
    let head = format!(
        "{}{via}: tier {}, RTO {}",
        svc.name,
        svc.tier,
        span_words(svc.rto)
    );
    if let (Some(took), Some(met)) = (r.rto_achieved, r.rto_met()) {
        return format!(
            "{head}: recovered in {} ({})",
            span_words(took),
            if met { "met" } else { "MISSED" }
        );
    }
    // A deadline on another day than now carries its date.
    let hm = |t: DateTime<Utc>| {
        if t.date_naive() == now.date_naive() {
            hm(t)
        } else {
            fmt_time(t)
        }
    };
    if live {
        if now < deadline {
            format!(
                "{head}: {} left (by {})",
                span_words(deadline - now),
                hm(deadline)
            )
        } else {
            format!(
                "{head}: BREACHED {} ago (at {})",
                span_words(now - deadline),
                hm(deadline)
            )
        }
    } else {
        match s.continuity.announced(&svc.name, 100) {
            Some(_) => format!("{head}: BREACHED at {}", hm(deadline)),
            None => format!("{head}: due by {}", hm(deadline)),
        }
    }
}

/// The post at `percent` of `service`'s RTO, for the incident commander and the comms lead.
pub fn threshold_post(s: &Incident, c: &Continuity, service: &str, percent: u8) -> String {
    let ic = s
        .role("ic")
        .map_or("(no incident commander)".to_string(), |u| format!("<@{u}>"));
    let comms = s.role("comms").map_or(
        "(no comms lead: `/dr role comms @someone`)".to_string(),
        |u| format!("<@{u}>"),
    );
    let svc = c.catalog.as_ref().and_then(|cat| cat.service(service));
    let Some(svc) = svc else {
        return format!(
            "{ic} {comms} {}: {service} reached {percent}% of its RTO.",
            incident_ref(s.id)
        );
    };
    let deadline = impact::threshold_at(s, svc, 100);
    if percent >= 100 {
        format!(
            "{ic} {comms} {}: RTO BREACHED for {} (tier {}): its {} target passed at {}. Tell stakeholders per the DR plan; `/dr path` shows the recovery order.",
            incident_ref(s.id),
            svc.name,
            svc.tier,
            span_words(svc.rto),
            hm(deadline)
        )
    } else {
        format!(
            "{ic} {comms} {}: {} (tier {}) has used {percent}% of its {} RTO; it is breached at {} unless recovered.",
            incident_ref(s.id),
            svc.name,
            svc.tier,
            span_words(svc.rto),
            hm(deadline)
        )
    }
}

/// The DR plan's recovery order for the affected services (tier 1 first). Empty when none.
pub fn path_lines(s: &Incident, c: &Continuity) -> Vec<String> {
    let st = &s.continuity;
    if st.services.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["Service recovery order (DR plan, tier 1 first):".to_string()];
    let Some(plan) = c.plan.as_ref() else {
        out.push(format!("  {NO_PLAN}"));
        return out;
    };
    let mut placed = Vec::new();
    for tier in &plan.recovery_priority {
        let here: Vec<&str> = st
            .services
            .iter()
            .filter(|a| {
                tier.services
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&a.name))
            })
            .map(|a| a.name.as_str())
            .collect();
        if here.is_empty() {
            continue;
        }
        placed.extend(here.iter().copied());
        out.push(format!(
            "  {}. tier {}: {} (target RTO {}): {}",
            out.len(),
            tier.tier,
            here.join(", "),
            span_words(tier.target_rto),
            tier.action
        ));
    }
    let rest: Vec<&str> = st
        .services
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| !placed.contains(n))
        .collect();
    if !rest.is_empty() {
        out.push(format!(
            "  not in the plan's recovery_priority: {} (add them to the plan)",
            rest.join(", ")
        ));
    }
    out
}

/// The business impact of an incident, for the exports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub onset: String,
    pub revenue_at_risk: String,
    pub revenue_at_risk_cents: u64,
    pub revenue_per_hour_cents: u64,
    /// Until the resolution, or until the export for an open incident.
    pub until: String,
    pub resolved: bool,
    pub data_lost_seconds: Option<i64>,
    pub restore_point: Option<String>,
    pub restore: Option<String>,
    pub infrastructure: Vec<String>,
    pub services: Vec<ReportRow>,
}

#[derive(Debug, Serialize)]
pub struct ReportRow {
    pub service: String,
    pub via: Option<String>,
    pub tier: Option<String>,
    pub rto_target_seconds: Option<i64>,
    pub rto_achieved_seconds: Option<i64>,
    /// `met`, `missed`, or `open` / `unknown`.
    pub rto: &'static str,
    pub rpo_target_seconds: Option<i64>,
    pub rpo_achieved_seconds: Option<i64>,
    pub rpo: &'static str,
    pub revenue_per_hour_cents: u64,
}

fn verdict(met: Option<bool>, unknown: &'static str) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => unknown,
    }
}

/// `None` when no service is affected.
pub fn report(s: &Incident, c: &Continuity, now: DateTime<Utc>) -> Option<Report> {
    if s.continuity.services.is_empty() && s.continuity.infrastructure.is_empty() {
        return None;
    }
    let catalog = c.catalog.as_ref();
    let until = s.resolved_at.unwrap_or(now);
    let loss = impact::data_lost(s);
    let cents = catalog.map_or(0, |cat| impact::revenue_at_risk(s, cat, until));
    let services = impact::reports(s, catalog)
        .into_iter()
        .map(|r| ReportRow {
            service: r.affected.name.clone(),
            via: r.affected.via.clone(),
            tier: r.service.map(|svc| svc.tier.clone()),
            rto_target_seconds: r.service.map(|svc| svc.rto.num_seconds()),
            rto_achieved_seconds: r.rto_achieved.map(|d| d.num_seconds()),
            rto: verdict(
                r.rto_met(),
                if s.resolved_at.is_some() {
                    "unknown"
                } else {
                    "open"
                },
            ),
            rpo_target_seconds: r.service.map(|svc| svc.rpo.num_seconds()),
            rpo_achieved_seconds: r.rpo_achieved.map(|d| d.num_seconds()),
            rpo: verdict(r.rpo_met(), "no database restore"),
            revenue_per_hour_cents: r.service.map_or(0, |svc| svc.revenue_per_hour),
        })
        .collect();
    Some(Report {
        onset: fmt_time(onset(s)),
        revenue_at_risk: money_words(cents),
        revenue_at_risk_cents: cents,
        revenue_per_hour_cents: catalog.map_or(0, |cat| impact::revenue_rate(s, cat)),
        until: fmt_time(until),
        resolved: s.resolved_at.is_some(),
        data_lost_seconds: loss.as_ref().map(|l| l.lost.num_seconds()),
        restore_point: loss.as_ref().map(|l| fmt_time(l.point)),
        restore: loss.map(|l| l.how),
        infrastructure: s.continuity.infrastructure.clone(),
        services,
    })
}

fn secs(v: Option<i64>) -> String {
    v.map_or("—".into(), |s| span_words(chrono::Duration::seconds(s)))
}

/// The Markdown section (`## Business impact`), or nothing when no service is affected.
pub fn markdown(s: &Incident, c: &Continuity, now: DateTime<Utc>) -> String {
    let Some(r) = report(s, c, now) else {
        return String::new();
    };
    let mut o = String::from("## Business impact\n\n");
    if c.catalog.is_none() {
        o.push_str(&format!("{NO_CATALOG}.\n\n"));
    }
    o.push_str(&format!(
        "- **Impact began:** {}\n- **Revenue at risk:** {} ({}/h until {}{})\n",
        r.onset,
        r.revenue_at_risk,
        money_words(r.revenue_per_hour_cents),
        r.until,
        if r.resolved {
            ", resolved"
        } else {
            ", still open"
        }
    ));
    match (&r.restore, r.data_lost_seconds) {
        (Some(how), Some(lost)) => o.push_str(&format!(
            "- **Data lost (RPO achieved):** {} ({how} → impact began {})\n",
            span_words(chrono::Duration::seconds(lost)),
            r.onset
        )),
        _ => o.push_str(
            "- **Data lost (RPO achieved):** not measured: no successful database restore\n",
        ),
    }
    if !r.infrastructure.is_empty() {
        o.push_str(&format!(
            "- **Infrastructure affected:** {}\n",
            r.infrastructure.join(", ")
        ));
    }
    o.push_str(
        "\n| service | tier | RTO target | RTO achieved | RTO | RPO target | RPO achieved | RPO |\n|---|---|---:|---:|---|---:|---:|---|\n",
    );
    for row in &r.services {
        let name = match &row.via {
            Some(v) => format!("{} (via {v})", row.service),
            None => row.service.clone(),
        };
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            name.replace('|', "\\|"),
            row.tier.as_deref().unwrap_or("—"),
            secs(row.rto_target_seconds),
            secs(row.rto_achieved_seconds),
            row.rto,
            secs(row.rpo_target_seconds),
            secs(row.rpo_achieved_seconds),
            row.rpo
        ));
    }
    o.push('\n');
    o
}

/// Summary lines for the CSV export, after the events: (kind, summary, data as JSON).
pub fn csv_rows(
    s: &Incident,
    c: &Continuity,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String, String)> {
    let Some(r) = report(s, c, now) else {
        return Vec::new();
    };
    let mut rows = vec![(
        "revenue_at_risk",
        format!("revenue at risk {} until {}", r.revenue_at_risk, r.until),
        serde_json::json!({
            "cents": r.revenue_at_risk_cents,
            "per_hour_cents": r.revenue_per_hour_cents,
            "onset": r.onset,
            "until": r.until,
        })
        .to_string(),
    )];
    for row in &r.services {
        rows.push((
            "service_targets",
            format!(
                "{}: RTO achieved {} vs {} ({}); RPO achieved {} vs {} ({})",
                row.service,
                secs(row.rto_achieved_seconds),
                secs(row.rto_target_seconds),
                row.rto,
                secs(row.rpo_achieved_seconds),
                secs(row.rpo_target_seconds),
                row.rpo
            ),
            serde_json::to_string(row).unwrap_or_default(),
        ));
    }
    rows
}
