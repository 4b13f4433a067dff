//! Finish: the finding, told when it is news (see [`decide::publication`]), and the outcome
//! recorded in the ledger with the event's claim. A finding to be told is first reserved:
//! kept in the claim and recorded as the resource's last told state, on condition that no
//! other run told since this one read the record (else it reads again and decides again),
//! so runs at once tell one alert and a failed publish is told by the retry. A finding that
//! could not be reserved (no ledger, no resource ARN, the ledger failing) is published as
//! before: a failed publish after a change keeps it in the claim; without a change the claim
//! is released and the retry judges again.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::act::{Acted, Part};
use super::facts::Facts;
use super::{base, HandlerError, Run};
use crate::aws::AwsError;
use crate::decide::{self, Judged, Publication};
use crate::finding::{
    Action, ActionKind, Finding, KeySummary, ProtectionSummary, Severity, Status,
};
use crate::intake::{Named, Trigger};
use crate::ledger::Claim;
use crate::ledger::{now_secs, FixRecord, Published, Reservation, ResourceRecord, ResourceUpdate};
use crate::notify;
use crate::reactor::{FixError, Fixed, Observed, Reactor};
use crate::settings::Mode;

/// What acting did, and what the ledger said about the event.
pub(super) struct Outcome {
    pub acted: Acted,
    /// The event was handled before (the claim's summary): nothing is told twice.
    pub already: Option<String>,
    /// A run of this event died while fixing: whatever it left is told now.
    pub interrupted_fix: Option<Interrupted>,
}

/// The resource's state after this run (what a fix proved, else what was judged): what the
/// ledger compares with the state last told.
struct State {
    status: Status,
    fingerprint: String,
}

/// An earlier run of this event that died while fixing.
pub(super) struct Interrupted {
    /// The keys it was putting in place (comma-separated).
    pub planned: String,
    /// What the reactor did to finish its fix now, if anything.
    pub finished: Option<Result<Fixed, FixError>>,
}

/// The finding of a run that judged the resource.
pub(super) async fn judged<R: Reactor>(
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    outcome: Outcome,
) -> Result<Finding, HandlerError> {
    let judged = &facts.judged;
    let Outcome {
        acted,
        already,
        interrupted_fix,
    } = outcome;
    let (mut finding, state) = compose::<R>(run, facts, observed, judged, &acted);
    if let Some(summary) = already {
        finding.action = Action::none(Some(format!(
            "this event was already handled ({summary}); nothing is done or published twice"
        )));
        return Ok(finding);
    }
    // What an interrupted fix left must reach somebody: kept for the retry if the publish fails.
    let interrupted = interrupted_fix.is_some();
    if let Some(dead) = interrupted_fix {
        // Whatever the dead run did was never told.
        note_interrupted_fix(&mut finding, &dead.planned);
        note_finished(&mut finding, dead.finished);
    }
    // A fix that stopped a job changed it even when the problem stays (what it wrote).
    let changed = acted
        .parts
        .iter()
        .any(|p| matches!(p.action, ActionKind::Remediated | ActionKind::Failed))
        || finding.action.kind == ActionKind::Failed
        || interrupted;
    let decide = |record: Option<&ResourceRecord>| {
        let mut finding = finding.clone();
        let publication = publication(interrupted, &finding, &state, facts, record);
        let told = apply(publication, &mut finding);
        let update = resource_update(run, facts, record, &finding, &acted, &state, told);
        Telling {
            finding,
            told,
            update,
        }
    };
    let arn = observed.resource.arn.clone();
    let record = facts.record.as_ref().filter(|_| run.entry.is_some());
    tell_and_record(run, arn.as_deref(), record, &decide, changed, &state).await
}

/// Whether the finding is news against `record` ([`decide::publication`]); what an
/// interrupted fix left (`forced`) always is.
fn publication(
    forced: bool,
    finding: &Finding,
    state: &State,
    facts: &Facts,
    record: Option<&ResourceRecord>,
) -> Publication {
    if forced {
        return Publication::Tell;
    }
    decide::publication(
        finding.action.kind,
        state.status,
        &state.fingerprint,
        facts.mode,
        record,
        facts.account_settings.repeat_alert_hours,
        now_secs(),
    )
}

/// The finding and the state it leaves. Settings that could not be used make it an ERROR:
/// the account's rules (allowed keys and accounts, mode) are unknown, so no verdict stands.
fn compose<R: Reactor>(
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    acted: &Acted,
) -> (Finding, State) {
    let (mut status, mut severity, mut reason) = decide::summarize(judged, R::NOUN);
    let mut state = State {
        status: decide::status_after_fix(judged, &acted.fixed),
        fingerprint: String::new(),
    };
    state.fingerprint = decide::fingerprint(state.status, judged, &acted.fixed);
    if let Some(error) = facts.settings_error() {
        reason = format!(
            "{error}. Until it is fixed nothing is remediated. As for {}: {reason}",
            R::NOUN
        );
        (status, severity) = (Status::Error, Severity::High);
        state = State {
            status: Status::Error,
            fingerprint: json!({"status": "ERROR", "settings": error.to_string(), "resource": state.fingerprint})
                .to_string(),
        };
    }
    let protections = summaries(judged, &acted.parts);
    let finding = Finding {
        status,
        severity,
        reason,
        mode: Some(facts.mode),
        key: protections.first().and_then(|p| p.key.clone()),
        protections,
        action: acted.action.clone(),
        previous_status: facts
            .record
            .as_ref()
            .and_then(|r| r.published.as_ref())
            .map(|p| p.status),
        ..base::<R>(run.call, &facts.at, Some(&observed.resource))
    };
    (finding, state)
}

fn summaries(judged: &[Judged], parts: &[Part]) -> Vec<ProtectionSummary> {
    judged
        .iter()
        .zip(parts)
        .map(|(j, part)| ProtectionSummary {
            name: j.name.clone(),
            key: j.evidence.as_ref().and_then(KeySummary::from_evidence),
            verdict: j.verdict.status(),
            severity: j.verdict.severity(),
            reason: j.verdict.reason().to_owned(),
            fixable: j.fixable.is_ok(),
            action: part.action,
            key_after: part.key_after.clone(),
            problem: j.verdict.problem(),
        })
        .collect()
}

/// Puts the publication decision into the finding; returns whether it is told.
fn apply(publication: Publication, finding: &mut Finding) -> bool {
    match publication {
        Publication::Tell => true,
        Publication::Resolved(last) => {
            finding.action.detail = Some(format!(
                "Resolved: last reported {} (event {}); now every part is encrypted with an allowed customer-managed key",
                last.status.as_str(),
                last.event_id
            ));
            true
        }
        Publication::Quiet(None) => false,
        Publication::Quiet(Some(why)) => {
            // Nothing was told, so nothing happened to any part either.
            finding.action.kind = ActionKind::None;
            finding.action.detail = Some(match finding.action.detail.take() {
                Some(detail) => format!("{why}. {detail}"),
                None => why,
            });
            for p in &mut finding.protections {
                if matches!(p.action, ActionKind::Alerted | ActionKind::WouldRemediate) {
                    p.action = ActionKind::None;
                }
            }
            false
        }
    }
}

/// What the resource's record learns from this run: the state told, the keys it is on, a
/// fix (and who made it necessary), and the lock given back.
fn resource_update(
    run: &Run<'_>,
    facts: &Facts,
    record: Option<&ResourceRecord>,
    finding: &Finding,
    acted: &Acted,
    state: &State,
    told: bool,
) -> ResourceUpdate {
    let now = now_secs();
    let key_arns: BTreeSet<String> = finding
        .protections
        .iter()
        .filter_map(|p| p.key_after.as_ref().or(p.key.as_ref()))
        .filter_map(|k| k.arn.clone())
        .collect();
    // A proven fix, or one an interrupted run of this event made: both count for the budget.
    let fixes = (finding.action.kind == ActionKind::Remediated).then(|| {
        let mut fixes = facts.recent_fixes().to_vec();
        fixes.push(FixRecord {
            at: now,
            event_id: run.call.event_id.clone(),
            actor: run.call.actor.clone(),
        });
        fixes
    });
    ResourceUpdate {
        published: told.then(|| Published {
            status: state.status,
            fingerprint: state.fingerprint.clone(),
            at: now,
            event_id: run.call.event_id.clone(),
        }),
        key_arns: (record.map(|r| &r.key_arns) != Some(&key_arns)).then_some(key_arns),
        fixes,
        release_lock: acted.locked,
    }
}

/// A finding as decided against one reading of the resource's record: whether it is told,
/// and what the record learns.
struct Telling {
    finding: Finding,
    told: bool,
    update: ResourceUpdate,
}

/// How often a run reads the record again after another run told first, before it tells
/// without reserving (a second alert is better than none).
const RESERVE_ATTEMPTS: usize = 3;

/// Tells the finding when it is news (reserving the telling in the ledger first, see
/// [`reserve`]) and records the outcome: the claim completes with the resource's new state.
async fn tell_and_record(
    run: &Run<'_>,
    arn: Option<&str>,
    record: Option<&ResourceRecord>,
    decide: &dyn Fn(Option<&ResourceRecord>) -> Telling,
    changed: bool,
    state: &State,
) -> Result<Finding, HandlerError> {
    let mut telling = decide(record);
    // Without a topic (the CLI, printing only) nothing reached anybody: the ledger must not
    // record it as told, or the deployed function would keep quiet about it.
    let Some(topic) = run.ctx.env.alert_topic_arn.as_ref() else {
        telling.update.published = None;
        record_outcome(run, arn, &telling.finding, telling.update).await;
        return Ok(telling.finding);
    };
    let reserved = telling.told && reserve(run, arn, record, decide, &mut telling, state).await;
    if !telling.told {
        record_outcome(run, arn, &telling.finding, telling.update).await;
        return Ok(telling.finding);
    }
    let Telling {
        finding, update, ..
    } = telling;
    if let Err(error) = notify::publish(&run.ctx.sns, topic, &finding).await {
        let json = finding.to_json();
        tracing::error!(finding = %json, %error, "publish failed");
        // A reserved finding is already kept in the claim: it is now left for the retry.
        if let (Some(entry), true) = (&run.entry, reserved) {
            if let Err(e) = entry.telling_failed().await {
                tracing::error!(error = %e, "could not leave the finding for the retry at once; it is left when this run's claim lapses");
            }
        }
        if let (Some(entry), false) = (&run.entry, reserved) {
            let kept = if changed {
                let update = ResourceUpdate {
                    published: None,
                    ..update
                };
                entry
                    .keep_unpublished(&kept(&finding, state), arn, update)
                    .await
            } else {
                entry.release(arn.filter(|_| update.release_lock)).await
            };
            if let Err(e) = kept {
                tracing::error!(error = %e, "could not record the unpublished finding");
            }
        }
        return Err(HandlerError::Publish {
            finding: json,
            error,
        });
    }
    let update = if reserved {
        ResourceUpdate::default()
    } else {
        update
    };
    record_outcome(run, arn, &finding, update).await;
    Ok(finding)
}

/// Before telling: keeps the finding in the claim and records it as the resource's last
/// told state, unless another run told since this run read the record; then reads it again
/// and decides again (`telling` is replaced). Returns whether the telling is reserved.
async fn reserve(
    run: &Run<'_>,
    arn: Option<&str>,
    record: Option<&ResourceRecord>,
    decide: &dyn Fn(Option<&ResourceRecord>) -> Telling,
    telling: &mut Telling,
    state: &State,
) -> bool {
    let (Some(entry), Some(arn)) = (&run.entry, arn) else {
        return false;
    };
    let mut told_before = record.and_then(|r| r.published.clone());
    for _ in 0..RESERVE_ATTEMPTS {
        let kept = kept(&telling.finding, state);
        let reserved = entry
            .reserve_telling(
                &kept,
                run.claim_until(),
                arn,
                told_before.as_ref(),
                &telling.update,
            )
            .await;
        let error = match reserved {
            Ok(Reservation::Reserved) => return true,
            Ok(Reservation::Raced) => match entry.resource(arn).await {
                Ok(record) => {
                    *telling = decide(Some(&record));
                    // A lock that lapsed and was taken is not this run's to give back.
                    if record.lock_owner.as_deref() != Some(run.call.event_id.as_str()) {
                        telling.update.release_lock = false;
                    }
                    if !telling.told {
                        return false;
                    }
                    told_before = record.published;
                    continue;
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        tracing::warn!(error = %error, "could not reserve the telling in the ledger; telling without it");
        return false;
    }
    tracing::warn!("the resource's record kept changing; telling without reserving");
    false
}

/// The finding as kept in the claim for a retry to tell.
fn kept(finding: &Finding, state: &State) -> String {
    json!({"finding": finding, "state": state.fingerprint, "status": state.status}).to_string()
}

/// Completes the claim with the resource's changes. A failure is only logged: the finding
/// stands, and a redelivery may be told again.
async fn record_outcome(
    run: &Run<'_>,
    arn: Option<&str>,
    finding: &Finding,
    update: ResourceUpdate,
) {
    let Some(entry) = &run.entry else {
        return;
    };
    let summary = format!(
        "{} / {}",
        finding.status.as_str(),
        finding.action.kind.as_str()
    );
    if let Err(e) = entry.complete(&summary, arn, update).await {
        tracing::warn!(error = %e, "could not record the outcome; a redelivery may be told again");
    }
}

/// Publishes the finding a run kept when it could not publish, and completes. Until the
/// publish succeeds the claim keeps it.
pub(super) async fn publish_kept(
    run: &Run<'_>,
    arn: Option<&str>,
    kept: &str,
) -> Result<Finding, HandlerError> {
    let value: Value = serde_json::from_str(kept).unwrap_or(Value::Null);
    let finding: Finding = match serde_json::from_value(value["finding"].clone()) {
        Ok(finding) => finding,
        Err(e) => {
            return Err(HandlerError::Publish {
                finding: kept.to_owned(),
                error: format!("the kept finding is unreadable: {e}"),
            })
        }
    };
    let status = serde_json::from_value(value["status"].clone()).unwrap_or(finding.status);
    let fingerprint = value["state"].as_str().unwrap_or_default().to_owned();
    let arn = arn
        .map(str::to_owned)
        .or_else(|| finding.resource.arn.clone());
    // Two deliveries of the event may both find it kept: one publishes it.
    if let Some(entry) = &run.entry {
        match entry.take_kept(run.claim_until()).await {
            Ok(true) => {}
            Ok(false) => return Err(HandlerError::InProgress(run.call.event_id.clone())),
            Err(error) if error.retryable => return Err(run.retry(error.to_string())),
            Err(error) => tracing::warn!(%error, "could not take the kept finding; publishing it"),
        }
    }
    if let Some(topic) = &run.ctx.env.alert_topic_arn {
        if let Err(error) = notify::publish(&run.ctx.sns, topic, &finding).await {
            let json = finding.to_json();
            tracing::error!(finding = %json, %error, "publish of the kept finding failed");
            if let Some(entry) = &run.entry {
                if let Err(e) = entry.telling_failed().await {
                    tracing::error!(error = %e, "could not leave the finding for the retry at once");
                }
            }
            return Err(HandlerError::Publish {
                finding: json,
                error,
            });
        }
    }
    // Recorded again for a finding kept before telling was reserved.
    let update = ResourceUpdate {
        published: Some(Published {
            status,
            fingerprint,
            at: now_secs(),
            event_id: run.call.event_id.clone(),
        }),
        ..ResourceUpdate::default()
    };
    record_outcome(run, arn.as_deref(), &finding, update).await;
    Ok(finding)
}

/// How a finding begins that reports what an interrupted earlier run of the same event left.
const INTERRUPTED: &str = "An earlier run of this event was interrupted while fixing";

/// An earlier run of this event died after it began writing a fix. Whatever it left is
/// reported now; a part already on the key it was putting in place is reported as fixed.
fn note_interrupted_fix(finding: &mut Finding, planned: &str) {
    // The claim names every key the dead run was putting in place.
    let planned_keys: Vec<&str> = planned.split(',').collect();
    let now_on_planned: Vec<String> = finding
        .protections
        .iter()
        .filter(|p| {
            p.key
                .as_ref()
                .and_then(|k| k.arn.as_deref())
                .is_some_and(|arn| planned_keys.contains(&arn))
        })
        .map(|p| p.name.clone())
        .collect();
    let prefix =
        format!("{INTERRUPTED} (putting {planned} in place); this is what it left, read back now");
    let detail = finding.action.detail.take().unwrap_or_default();
    if finding.status == Status::Compliant && !now_on_planned.is_empty() {
        finding.action.kind = ActionKind::Remediated;
        finding.action.detail = Some(format!(
            "{prefix}: {} now on {planned}. {detail}",
            now_on_planned.join(", ")
        ));
    } else {
        finding.action.detail = Some(format!("{prefix}. {detail}"));
        if finding.action.kind == ActionKind::None && finding.status.is_problem() {
            finding.action.kind = ActionKind::Alerted;
        }
    }
}

/// An earlier run of this event died after it began a fix, and what is left is not judged
/// (gone, no longer this check's concern, unreadable): the finding says so, in words a
/// person can check, and never claims the fix.
fn note_interrupted_unjudged(finding: &mut Finding, planned: &str) {
    let detail = format!(
        "{INTERRUPTED} (putting {planned} in place); read back now: {}. Check what it did.",
        finding.reason
    );
    let kind = match finding.action.kind {
        ActionKind::None => ActionKind::Alerted,
        other => other,
    };
    finding.action = Action::new(kind, Some(detail));
}

/// What finishing the dead run's fix did, added to its finding.
fn note_finished(finding: &mut Finding, finished: Option<Result<Fixed, FixError>>) {
    let (kind, said, error) = match finished {
        None => return,
        Some(Ok(fixed)) => {
            finding.action.steps = fixed.steps;
            (
                ActionKind::Remediated,
                format!("Finished now: {}", fixed.detail.trim()),
                None,
            )
        }
        Some(Err(FixError::Failed { error })) => (
            ActionKind::Failed,
            "Finishing it was not proven.".to_owned(),
            Some(error),
        ),
        Some(Err(e)) => (
            ActionKind::Alerted,
            format!("It could not be finished now: {e}."),
            None,
        ),
    };
    finding.action.kind = kind;
    finding.action.error = error.or(finding.action.error.take());
    let detail = finding.action.detail.take().unwrap_or_default();
    finding.action.detail = Some(format!("{detail} {said}").trim().to_owned());
}

/// Why a resource was not judged.
pub(super) enum Unjudged {
    /// It no longer exists.
    Gone,
    /// It could not be read.
    Unreadable(AwsError),
    /// The event names a part that is not the resource's (says which).
    Unrelated(String),
}

/// The finding of a run whose resource could not be judged: gone (IGNORED), or unreadable
/// (ERROR, or a retry when the failure may pass). When an earlier run of this event died
/// while fixing (`interrupted_fix` names the keys it was putting in place), the finding says
/// what is left and is told, whatever else is decided.
pub(super) async fn unjudged<R: Reactor>(
    run: &Run<'_>,
    trigger: &Trigger,
    facts: &Facts,
    why: Unjudged,
    interrupted_fix: Option<Interrupted>,
) -> Result<Finding, HandlerError> {
    // A redelivery of a handled event: whatever the resource is now, nothing is given back,
    // told or recorded again.
    let already = match &facts.claim {
        Ok(Some(Claim::Completed { summary })) => Some(summary.clone()),
        _ => None,
    };
    let mut finding = match &why {
        Unjudged::Unrelated(reason) => Finding {
            status: Status::Ignored,
            reason: reason.clone(),
            ..base::<R>(run.call, &facts.at, None)
        },
        Unjudged::Gone => Finding {
            status: Status::Ignored,
            reason: format!(
                "{} {} no longer exists in account {} ({}); nothing to check",
                R::NOUN,
                named(trigger),
                facts.at.account,
                facts.at.region
            ),
            mode: Some(facts.mode),
            ..base::<R>(run.call, &facts.at, None)
        },
        Unjudged::Unreadable(error)
            if error.retryable && facts.mode != Mode::Off && already.is_none() =>
        {
            return Err(run.give_back(None, error.to_string()).await)
        }
        Unjudged::Unreadable(error) => {
            let reason = match facts.settings_error() {
                Some(s) => format!("{s}; also, {error}"),
                None => format!("could not read {} {}: {error}", R::NOUN, named(trigger)),
            };
            Finding {
                status: Status::Error,
                severity: Severity::High,
                reason,
                mode: Some(facts.mode),
                action: match facts.mode {
                    Mode::Off => Action::none(Some(
                        "mode is off: nothing published or changed".to_owned(),
                    )),
                    _ => Action::new(
                        ActionKind::Alerted,
                        Some(
                            "Check the function's permissions in that account, then re-run the check"
                                .to_owned(),
                        ),
                    ),
                },
                ..base::<R>(run.call, &facts.at, None)
            }
        }
    };
    finding.resource.arn = facts.resource_arn.clone();
    if let Some(summary) = already {
        finding.action = Action::none(Some(format!(
            "this event was already handled ({summary}); nothing is done or published twice"
        )));
        return Ok(finding);
    }
    let state = State {
        status: finding.status,
        fingerprint: json!({"status": finding.status.as_str(), "reason": finding.reason})
            .to_string(),
    };
    // What an interrupted fix left must reach somebody: kept for the retry if the publish fails.
    let changed = interrupted_fix.is_some();
    if let Some(dead) = interrupted_fix {
        note_interrupted_unjudged(&mut finding, &dead.planned);
        note_finished(&mut finding, dead.finished);
    }
    let decide = |record: Option<&ResourceRecord>| {
        let mut finding = finding.clone();
        let publication = publication(changed, &finding, &state, facts, record);
        // "Resolved" is for a judged resource; a gone one is simply not told.
        let told =
            !matches!(publication, Publication::Resolved(_)) && apply(publication, &mut finding);
        let update = ResourceUpdate {
            published: told.then(|| Published {
                status: state.status,
                fingerprint: state.fingerprint.clone(),
                at: now_secs(),
                event_id: run.call.event_id.clone(),
            }),
            ..ResourceUpdate::default()
        };
        Telling {
            finding,
            told,
            update,
        }
    };
    let arn = finding.resource.arn.clone();
    let record = facts.record.as_ref().filter(|_| run.entry.is_some());
    tell_and_record(run, arn.as_deref(), record, &decide, changed, &state).await
}

/// What the event named, for a reason that has nothing more to go on.
fn named(trigger: &Trigger) -> String {
    match &trigger.named {
        Named::Resource(id) => id.clone(),
        Named::Part { kind, id } => format!("(reached through {kind} {id})"),
        Named::Account => "of this account and Region".to_owned(),
    }
}
