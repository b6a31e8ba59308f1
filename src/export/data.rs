//! Event payloads as JSON, for the JSON document and the CSV `data` column.
//!
//! The payload is written field by field rather than through `EventKind`'s own serde so that
//! every time inside it has the export's format, and so that adding a field to an event fails
//! to compile here instead of silently disappearing from exports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::format::{Ts, ts};
use crate::incident::{EventKind, OperationSpec, Plan};

pub(super) struct Data<'a>(pub(super) &'a EventKind);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            EventKind::Declared {
                channel,
                severity,
                incident_type,
                title,
                drill,
            } => {
                m.serialize_entry("channel", channel)?;
                m.serialize_entry("severity", severity)?;
                m.serialize_entry("incident_type", incident_type)?;
                m.serialize_entry("title", title)?;
                m.serialize_entry("drill", drill)?;
            }
            EventKind::SeverityChanged { from, to } => {
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
            }
            EventKind::Classified { from, to } => {
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
            }
            EventKind::RoleAssigned { role, user } => {
                m.serialize_entry("role", role)?;
                m.serialize_entry("user", user)?;
            }
            EventKind::Checked { item, note } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("note", note)?;
            }
            EventKind::Unchecked { item } => m.serialize_entry("item", item)?,
            EventKind::MarkedNotApplicable { item, reason } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("reason", reason)?;
            }
            EventKind::UpdatePosted {
                text,
                automatic,
                slots,
            } => {
                m.serialize_entry("text", text)?;
                m.serialize_entry("automatic", automatic)?;
                m.serialize_entry("slots", &Times(slots))?;
            }
            EventKind::ReminderSent { slot } => m.serialize_entry("slot", &Ts(*slot))?,
            EventKind::NoteAdded { text } => m.serialize_entry("text", text)?,
            EventKind::Escalated { reason } => m.serialize_entry("reason", reason)?,
            EventKind::Resumed | EventKind::Resolved | EventKind::FinalSummaryPosted => {}
            EventKind::ServicesAffected {
                services,
                infrastructure,
                pulled_in,
            } => {
                m.serialize_entry("services", services)?;
                m.serialize_entry("infrastructure", infrastructure)?;
                m.serialize_entry("pulled_in", pulled_in)?;
            }
            EventKind::RtoThreshold {
                service,
                percent,
                rto_seconds,
            } => {
                m.serialize_entry("service", service)?;
                m.serialize_entry("percent", percent)?;
                m.serialize_entry("rto_seconds", rto_seconds)?;
            }
            EventKind::TabletopStarted { scenario } => m.serialize_entry("scenario", scenario)?,
            EventKind::InjectPosted { n } => m.serialize_entry("n", n)?,
            EventKind::TabletopEnded { automatic } => m.serialize_entry("automatic", automatic)?,
            EventKind::CommsDrafted {
                draft,
                stage,
                status,
                statuspage_status,
                component_status,
                title,
                body,
                services,
                next_update_at,
            } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("stage", stage)?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("statuspage_status", statuspage_status)?;
                m.serialize_entry("component_status", component_status)?;
                m.serialize_entry("title", title)?;
                m.serialize_entry("body", body)?;
                m.serialize_entry("services", services)?;
                m.serialize_entry("next_update_at", &next_update_at.map(Ts))?;
            }
            EventKind::CommsEdited {
                draft,
                body,
                warnings,
            } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("body", body)?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::CommsPublished { draft, warnings } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::CommsReminderSent { draft, due } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("due", &Ts(*due))?;
            }
            EventKind::PageRequested {
                target,
                action,
                nth,
                reason,
                fallback,
            } => {
                m.serialize_entry("target", target)?;
                m.serialize_entry("action", action)?;
                m.serialize_entry("nth", nth)?;
                m.serialize_entry("reason", reason)?;
                m.serialize_entry("fallback", fallback)?;
            }
            EventKind::PageDelivered {
                target,
                action,
                dedup_key,
            } => {
                m.serialize_entry("target", target)?;
                m.serialize_entry("action", action)?;
                m.serialize_entry("dedup_key", dedup_key)?;
            }
            EventKind::PageNotDelivered {
                target,
                action,
                dedup_key,
                error,
                fallback,
            } => {
                m.serialize_entry("target", target)?;
                m.serialize_entry("action", action)?;
                m.serialize_entry("dedup_key", dedup_key)?;
                m.serialize_entry("error", error)?;
                m.serialize_entry("fallback", fallback)?;
            }
            EventKind::PageChanged {
                target,
                dedup_key,
                status,
                by,
            } => {
                m.serialize_entry("target", target)?;
                m.serialize_entry("dedup_key", dedup_key)?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("by", by)?;
            }
            EventKind::FollowupRequested {
                number,
                text,
                owner,
                due,
            } => {
                m.serialize_entry("number", number)?;
                m.serialize_entry("text", text)?;
                m.serialize_entry("owner", owner)?;
                m.serialize_entry("due", due)?;
            }
            EventKind::FollowupFiled { number, key, url } => {
                m.serialize_entry("number", number)?;
                m.serialize_entry("key", key)?;
                m.serialize_entry("url", url)?;
            }
            EventKind::FollowupNotFiled { number, error } => {
                m.serialize_entry("number", number)?;
                m.serialize_entry("error", error)?;
            }
            EventKind::FollowupStateRead {
                number,
                state,
                done,
            } => {
                m.serialize_entry("number", number)?;
                m.serialize_entry("state", state)?;
                m.serialize_entry("done", done)?;
            }
            EventKind::FollowupWaived { reason } => m.serialize_entry("reason", reason)?,
            EventKind::DeliveryGaveUp {
                outbox,
                post,
                excerpt,
                attempts,
                error,
            } => {
                m.serialize_entry("outbox", outbox)?;
                m.serialize_entry("post", post)?;
                m.serialize_entry("excerpt", excerpt)?;
                m.serialize_entry("attempts", attempts)?;
                m.serialize_entry("error", error)?;
            }
            EventKind::LaunchPreviewed {
                preview,
                operation,
                plan,
                backend,
                expires_at,
                warnings,
            } => {
                m.serialize_entry("preview", preview)?;
                m.serialize_entry("operation", &Spec(operation))?;
                m.serialize_entry("plan", &PlanData(plan))?;
                m.serialize_entry("backend", backend)?;
                m.serialize_entry("expires_at", &Ts(*expires_at))?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::LaunchConfirmed { preview, operation } => {
                m.serialize_entry("preview", preview)?;
                m.serialize_entry("operation", operation)?;
            }
            EventKind::LaunchCancelled { preview } => m.serialize_entry("preview", preview)?,
            EventKind::OperationLaunched { operation, object } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("object", object)?;
            }
            EventKind::OperationProgressed {
                operation,
                phase,
                percent,
                detail,
            } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("phase", phase)?;
                m.serialize_entry("percent", percent)?;
                m.serialize_entry("detail", detail)?;
            }
            EventKind::OperationFinished {
                operation,
                outcome,
                phase,
                detail,
                result,
            } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("outcome", outcome)?;
                m.serialize_entry("phase", phase)?;
                m.serialize_entry("detail", detail)?;
                m.serialize_entry("result", result)?;
            }
            EventKind::BackupsChecked {
                backend,
                ok,
                report,
            } => {
                m.serialize_entry("backend", backend)?;
                m.serialize_entry("ok", ok)?;
                m.serialize_entry("report", report)?;
            }
            EventKind::ProbeRecorded {
                item,
                probe,
                passed,
                evidence,
            } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("probe", probe)?;
                m.serialize_entry("passed", passed)?;
                m.serialize_entry("evidence", evidence)?;
            }
        }
        m.end()
    }
}

struct Times<'a>(&'a [DateTime<Utc>]);

impl Serialize for Times<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|t| Ts(*t)))
    }
}

struct Spec<'a>(&'a OperationSpec);

impl Serialize for Spec<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let OperationSpec {
            id,
            kind,
            object_name,
            reason,
            backup,
            cluster,
            namespace,
            target,
            include_namespaces,
            exclude_database_namespaces,
            prior,
        } = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", id)?;
        m.serialize_entry("kind", kind)?;
        m.serialize_entry("object_name", object_name)?;
        m.serialize_entry("reason", reason)?;
        m.serialize_entry("backup", backup)?;
        m.serialize_entry("cluster", cluster)?;
        m.serialize_entry("namespace", namespace)?;
        m.serialize_entry("target", &ts(*target))?;
        m.serialize_entry("include_namespaces", include_namespaces)?;
        m.serialize_entry("exclude_database_namespaces", exclude_database_namespaces)?;
        m.serialize_entry("prior", prior)?;
        m.end()
    }
}

struct PlanData<'a>(&'a Plan);

impl Serialize for PlanData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Plan {
            summary,
            manifest,
            backup,
            window,
        } = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("summary", summary)?;
        m.serialize_entry("manifest", manifest)?;
        m.serialize_entry("backup", backup)?;
        match window {
            Some(w) => {
                #[derive(Serialize)]
                struct Window {
                    start: Ts,
                    end: Ts,
                }
                let window = Window {
                    start: Ts(w.start),
                    end: Ts(w.end),
                };
                m.serialize_entry("window", &window)?;
            }
            None => m.serialize_entry("window", &None::<()>)?,
        }
        m.end()
    }
}
