//! Decide: pure functions from what was read to what to do and what to tell. No I/O, so each
//! is tested with a table of cases.
//!
//! - [`judge`]: each protection's key evidence -> its verdict (and whether it can be fixed);
//! - [`summarize`]: the resource's status, severity and reason (the worst of its parts');
//! - [`decide`]: the plan the account's mode allows (nothing, alert, fix, dry-run, retry);
//! - [`publication`]: whether the finding is news, given what was last published.

use std::collections::BTreeMap;

use crate::finding::{ActionKind, Severity, Status};
use crate::keys::{KeyEvidence, KeyInfo};
use crate::ledger::{FixRecord, Published, ResourceRecord};
use crate::reactor::{Protection, Subject};
use crate::settings::{AccountSettings, Mode, SettingsError};
use crate::verdict::{judge_key, Location, Verdict};

/// One protection, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub name: String,
    /// The kind of part (`bedrock`, `logs`, `s3`): which remediation key it takes.
    pub kind: &'static str,
    /// The key evidence; `None` when the part could not be read.
    pub evidence: Option<KeyEvidence>,
    pub verdict: Verdict,
    /// `Err(why not)` when no automatic fix can change this part.
    pub fixable: Result<(), String>,
    /// An ERROR whose cause may pass (throttling, 5xx, timeout): worth a retry, not a report.
    pub retryable: bool,
}

/// Judges every protection; `evidence[i]` belongs to `protections[i]` (`None` for parts that
/// could not be read).
pub fn judge(
    protections: &[Protection],
    evidence: &[Option<KeyEvidence>],
    settings: &AccountSettings,
    at: &Location,
) -> Vec<Judged> {
    protections
        .iter()
        .zip(evidence)
        .map(|(p, evidence)| {
            let (verdict, retryable) = match (&p.subject, evidence) {
                (Subject::Unreadable(error), _) => (
                    Verdict::Error {
                        reason: format!("could not read {}: {error}", p.noun),
                    },
                    error.retryable,
                ),
                (Subject::Key(_), Some(evidence)) => (
                    judge_key(evidence, settings, at, &p.noun),
                    matches!(
                        evidence,
                        KeyEvidence::Unverified {
                            retryable: true,
                            ..
                        }
                    ),
                ),
                (Subject::Key(_), None) => (
                    Verdict::Error {
                        reason: format!("the key of {} was not described", p.noun),
                    },
                    false,
                ),
                (Subject::Unprotected { problem, reason }, _) => (
                    Verdict::NonCompliant {
                        problem: *problem,
                        reason: reason.clone(),
                    },
                    false,
                ),
            };
            Judged {
                name: p.name.clone(),
                kind: p.kind,
                evidence: evidence.clone(),
                verdict,
                fixable: match &p.no_fix {
                    Some(why) => Err(why.clone()),
                    None => Ok(()),
                },
                retryable,
            }
        })
        .collect()
}

/// The resource as a whole: the worst status and severity of its parts, and a reason that
/// names every failing part (or says all is well).
pub fn summarize(judged: &[Judged], noun: &str) -> (Status, Severity, String) {
    let status = judged
        .iter()
        .map(|j| j.verdict.status())
        .max_by_key(|s| s.rank())
        .unwrap_or(Status::Error);
    let severity = judged
        .iter()
        .map(|j| j.verdict.severity())
        .max()
        .unwrap_or(Severity::High);
    let failing: Vec<&Judged> = judged
        .iter()
        .filter(|j| j.verdict.status() != Status::Compliant)
        .collect();
    let reason = match (judged, failing.as_slice()) {
        ([], _) => format!("nothing of {noun} could be judged"),
        ([only], _) => only.verdict.reason().to_owned(),
        (all, []) => format!(
            "every part of {noun} ({}) is encrypted with an allowed customer-managed key",
            names(all)
        ),
        (all, [one]) => format!("1 of {} parts fails: {}", all.len(), one.verdict.reason()),
        (all, many) => format!(
            "{} of {} parts fail: {}",
            many.len(),
            all.len(),
            many.iter()
                .map(|j| j.verdict.reason())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    (status, severity, reason)
}

fn names(judged: &[Judged]) -> String {
    judged
        .iter()
        .map(|j| j.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the account's mode allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Change and tell nothing (compliant, or mode off); the detail says why, if not obvious.
    Nothing(Option<String>),
    /// Tell a person; `why_no_fix` says why the guard does not fix it itself (remediate and
    /// dry-run modes).
    Alert { why_no_fix: Option<String> },
    /// Put each key on its part (indexes into the judged list); `manual` says, for every
    /// other failing part, why it needs a person.
    Fix {
        fixes: Vec<(usize, Box<KeyInfo>)>,
        manual: Vec<(usize, String)>,
        dry_run: bool,
    },
    /// Nothing is decided yet: the evidence is missing for a reason that may pass. The event
    /// goes back to the Lambda error path (retry, then the DLQ).
    Retry(String),
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    pub judged: &'a [Judged],
    pub mode: Mode,
    pub settings: &'a AccountSettings,
    /// A settings document that could not be used: never fix on it.
    pub settings_error: Option<&'a SettingsError>,
    pub at: &'a Location,
    /// Per kind of part: the evidence about the remediation key the settings name for it
    /// (read only when the mode may fix).
    pub remediation: &'a BTreeMap<&'static str, KeyEvidence>,
    /// Per part (index): whether the service that uses it can use its remediation key.
    /// Absent: nothing to check.
    pub preflight: &'a BTreeMap<usize, Result<(), String>>,
    /// The resource is in the middle of a change (says what).
    pub busy: Option<&'a str>,
    /// Fixes of this resource in the budget window (from the ledger).
    pub recent_fixes: &'a [FixRecord],
}

pub fn decide(case: &Case) -> Plan {
    if case.mode == Mode::Off {
        return Plan::Nothing(Some("mode is off: nothing published or changed".to_owned()));
    }
    if let Some(j) = case.judged.iter().find(|j| j.retryable) {
        return Plan::Retry(j.verdict.reason().to_owned());
    }
    let alert = |why: Option<String>| Plan::Alert { why_no_fix: why };
    // Settings that cannot be used are a problem of their own, whatever the keys look like.
    if case.settings_error.is_some() {
        return alert(None);
    }
    let failing: Vec<usize> = (0..case.judged.len())
        .filter(|&i| case.judged[i].verdict.status() != Status::Compliant)
        .collect();
    if failing.is_empty() {
        return Plan::Nothing(None);
    }
    if !matches!(case.mode, Mode::Remediate | Mode::DryRun) {
        return alert(None);
    }
    let (mut fixes, mut manual) = (Vec::new(), Vec::new());
    for i in failing {
        match part_plan(case, i) {
            PartPlan::Fix(key) => fixes.push((i, key)),
            PartPlan::Manual(why) => manual.push((i, why)),
            PartPlan::Retry(why) => return Plan::Retry(why),
        }
    }
    if fixes.is_empty() {
        let why: Vec<&str> = manual.iter().map(|(_, why)| why.as_str()).collect();
        return alert(Some(format!("No automatic fix. {}", why.join("; "))));
    }
    let dry_run = case.mode == Mode::DryRun;
    if let Some(busy) = case.busy.filter(|_| !dry_run) {
        return Plan::Retry(format!("{busy}; a fix now would collide with that change"));
    }
    if case.recent_fixes.len() >= case.settings.max_fixes_per_day as usize {
        return alert(Some(budget_spent(case.recent_fixes, case.settings)));
    }
    Plan::Fix {
        fixes,
        manual,
        dry_run,
    }
}

/// What one failing part gets.
enum PartPlan {
    Fix(Box<KeyInfo>),
    /// A person fixes it; why, naming the part.
    Manual(String),
    Retry(String),
}

fn part_plan(case: &Case, i: usize) -> PartPlan {
    let j = &case.judged[i];
    let manual = |why: &str| PartPlan::Manual(format!("{}: {why}", j.name));
    // Only a proven problem is fixed: an unverified part stays for a person to look at.
    if !matches!(j.verdict, Verdict::NonCompliant { .. }) {
        return manual(j.verdict.reason());
    }
    if let Err(why) = &j.fixable {
        return manual(why);
    }
    let Some(evidence) = case.remediation.get(j.kind) else {
        return manual(&format!(
            "the settings name no remediationKeys entry for {} ({} parts)",
            case.at.region, j.kind
        ));
    };
    // The key the guard would put in place must pass the same check.
    match (
        judge_key(evidence, case.settings, case.at, "the remediation key"),
        evidence,
    ) {
        (Verdict::Compliant { .. }, KeyEvidence::Described { info, .. }) => {
            match case.preflight.get(&i) {
                Some(Err(why)) => manual(why),
                _ => PartPlan::Fix(Box::new(info.clone())),
            }
        }
        (
            _,
            KeyEvidence::Unverified {
                retryable: true,
                error,
                ..
            },
        ) => PartPlan::Retry(format!(
            "the remediation key could not be verified: {error}"
        )),
        (verdict, _) => manual(verdict.reason()),
    }
}

/// Who keeps undoing the fixes: the budget's alert names them.
fn budget_spent(fixes: &[FixRecord], settings: &AccountSettings) -> String {
    let mut actors: Vec<&str> = fixes.iter().map(|f| f.actor.as_str()).collect();
    actors.sort_unstable();
    actors.dedup();
    format!(
        "No automatic fix: the guard already fixed this resource {} times in the last 24 hours \
         (maxFixesPerDay = {}), and each time it lost its key again. Removed by: {}. Stop \
         whoever keeps removing the key (an infrastructure-as-code pipeline that does not set \
         it?) before fixing it again",
        fixes.len(),
        settings.max_fixes_per_day,
        actors.join(", ")
    )
}

/// The resource's state as findings compare it: status, failing parts and their reasons.
pub fn fingerprint(status: Status, judged: &[Judged], fixed: &[String]) -> String {
    let failing: Vec<(&str, &str)> = judged
        .iter()
        .filter(|j| j.verdict.status() != Status::Compliant && !fixed.contains(&j.name))
        .map(|j| (j.name.as_str(), j.verdict.reason()))
        .collect();
    serde_json::json!({"status": status.as_str(), "failing": failing}).to_string()
}

/// The status a fix left: the failing parts it did not fix decide it.
pub fn status_after_fix(judged: &[Judged], fixed: &[String]) -> Status {
    judged
        .iter()
        .filter(|j| !fixed.contains(&j.name))
        .map(|j| j.verdict.status())
        .max_by_key(|s| s.rank())
        .unwrap_or(Status::Compliant)
}

/// Whether a finding is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// Publish it.
    Tell,
    /// Publish it as the end of a problem last published as NON_COMPLIANT or ERROR.
    Resolved(Published),
    /// Do not publish it; the reason goes into the finding when it is worth saying.
    Quiet(Option<String>),
}

/// Decides whether to publish. `state` is the resource's state after this run (what a fix
/// proved, else what was judged); `record` is what the ledger holds (`None`: no ledger, so
/// every problem is told and nothing is known about what was told before).
pub fn publication(
    action: ActionKind,
    status: Status,
    state: &str,
    mode: Mode,
    record: Option<&ResourceRecord>,
    repeat_alert_hours: f64,
    now: u64,
) -> Publication {
    if mode == Mode::Off || status == Status::Ignored {
        return Publication::Quiet(None);
    }
    // A change the guard made, or tried to make, is always told.
    if matches!(action, ActionKind::Remediated | ActionKind::Failed) {
        return Publication::Tell;
    }
    let Some(record) = record else {
        return if action == ActionKind::None {
            Publication::Quiet(None)
        } else {
            Publication::Tell
        };
    };
    let last = record.published.as_ref();
    if !status.is_problem() {
        return match last {
            Some(last) if last.status.is_problem() => Publication::Resolved(last.clone()),
            _ => Publication::Quiet(None),
        };
    }
    if action == ActionKind::None {
        return Publication::Quiet(None);
    }
    match last {
        Some(last) if last.fingerprint == state => {
            if now.saturating_sub(last.at) as f64 >= repeat_alert_hours * 3600.0 {
                Publication::Tell
            } else {
                Publication::Quiet(Some(format!(
                    "not sent again: the same problem was reported {} ago (event {}); a reminder follows {} after that report (repeatAlertHours) unless it changes or ends",
                    ago(now.saturating_sub(last.at)),
                    last.event_id,
                    hours(repeat_alert_hours)
                )))
            }
        }
        _ => Publication::Tell,
    }
}

fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

fn hours(h: f64) -> String {
    if h.fract() == 0.0 {
        format!("{h:.0} h")
    } else {
        format!("{h} h")
    }
}
