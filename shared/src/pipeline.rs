//! The pipeline every reactor runs through, one direction:
//!
//! intake -> [`facts`] (resource, settings, ledger: concurrently; then DescribeKey for every
//! part) -> [`decide`](crate::decide) (pure) -> [`act`] (fix, under the resource's lock) ->
//! [`finish`] (publish what is news, record it) -> finding.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use tokio::time::Instant;

use crate::aws::AwsError;
use crate::clients::{Context, Scope};
use crate::decide::{self, Case, Judged, Plan, Publication};
use crate::finding::{
    Action, ActionKind, Finding, KeySummary, ProtectionSummary, Resource, Severity, Status,
    TriggerSummary, SCHEMA,
};
use crate::intake::{self, Call, Envelope, Intake, IntakeError, Trigger};
use crate::keys::{KeyEvidence, KeyInfo};
use crate::ledger::{
    now_secs, Claim, FixRecord, LockError, Published, ResourceRecord, ResourceUpdate,
};
use crate::notify;
use crate::reactor::{FixError, Fixed, Observed, Protection, Reactor, Subject};
use crate::settings::{AccountSettings, Mode, Settings, SettingsError};
use crate::verdict::{Location, Verdict};

/// How long a run may take when the caller gives no deadline (the CLI).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);
/// Time kept back at the end of a run to publish and record the outcome.
const FINISH_RESERVE: Duration = Duration::from_secs(2);
/// A fix is begun only with at least this much time left: a write that cannot be proven in
/// time is worse than a retry.
const FIX_MINIMUM: Duration = Duration::from_secs(5);
/// A claim outlives its run's deadline by this much before a retry may take it over: by
/// then the run is surely dead (Lambda stops it at the deadline).
const CLAIM_MARGIN: Duration = Duration::from_secs(3);

/// Per-run choices that are not settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the account's mode, except that a broken settings document never remediates
    /// (the CLI's `--mode`).
    pub mode: Option<Mode>,
    /// Whether a bare CloudTrail record is accepted (the CLI) or only EventBridge's envelope
    /// (the Lambda).
    pub envelope: Envelope,
    /// When the run must be over (the Lambda's deadline); default: [`DEFAULT_BUDGET`] from now.
    pub deadline: Option<Instant>,
    /// Handle the event even if the ledger says it was handled (the CLI's `--force`).
    pub force: bool,
}

/// Failures that go to the Lambda error path (retries, then the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("bad event: {0}")]
    Intake(#[from] IntakeError),
    #[error("event {0} is being handled by another invocation; retry later")]
    InProgress(String),
    #[error("event {event_id} not decided, nothing was changed; retry later: {reason}")]
    Retry { event_id: String, reason: String },
    #[error("the finding could not be published ({error}); finding: {finding}")]
    Publish { finding: String, error: String },
}

/// What this run knows about itself.
struct Run<'a> {
    ctx: &'a Context,
    check: &'static str,
    call: &'a Call,
    /// The ledger's name for this run's event (the CloudTrail eventID; with `--force`, a
    /// name of its own so the original record stays).
    claim_id: String,
    deadline: Instant,
    /// The ledger, when it is set and reachable.
    ledger: bool,
}

impl Run<'_> {
    /// The deadline plus the margin, as the ledger's epoch seconds.
    fn claim_until(&self) -> u64 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        now_secs() + (left + CLAIM_MARGIN).as_secs()
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Handles one event end to end and returns its finding.
pub async fn handle<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    event: &Value,
    options: &Options,
) -> Result<Finding, HandlerError> {
    let trigger = match intake::parse(event, R::EVENTS, options.envelope)? {
        Intake::Check(trigger) => trigger,
        Intake::Ignored { call, reason } => return Ok(ignored::<R>(&call, reason)),
    };
    let deadline = options
        .deadline
        .unwrap_or_else(|| Instant::now() + DEFAULT_BUDGET);
    let claim_id = match options.force {
        false => trigger.call.event_id.clone(),
        true => format!("{}+forced-{}", trigger.call.event_id, now_secs()),
    };
    let mut run = Run {
        ctx,
        check: R::CHECK,
        call: &trigger.call,
        claim_id,
        deadline,
        ledger: ctx.ledger.is_some(),
    };
    let (facts, observed) = facts(reactor, ctx, &trigger, &run, options).await;
    let observed_arn = match &observed {
        Ok(Some(o)) => o.resource.arn.clone(),
        _ => None,
    };

    let interrupted_fix = match &facts.claim {
        Ok(Some(Claim::InProgress { .. })) => {
            return Err(HandlerError::InProgress(trigger.call.event_id.clone()))
        }
        Ok(Some(Claim::Unpublished { finding })) => {
            return publish_kept(&run, observed_arn.as_deref(), finding).await
        }
        Ok(Some(Claim::Fresh { interrupted_fix })) => interrupted_fix.clone(),
        Ok(Some(Claim::Completed { .. })) | Ok(None) => None,
        Err(error) if error.retryable => return Err(retry(&run, error.to_string())),
        Err(error) => {
            // Judged alone: no lock, so no fix; and a redelivery may be told twice.
            tracing::error!(%error, "the ledger is unavailable; the event is judged without it");
            run.ledger = false;
            None
        }
    };
    let already = match &facts.claim {
        Ok(Some(Claim::Completed { summary })) => Some(summary.clone()),
        _ => None,
    };

    let observed = match observed {
        Ok(Some(observed)) => observed,
        unjudged => return finish_unjudged::<R>(&run, &trigger, &facts, unjudged).await,
    };
    let judged = decide::judge(
        &observed.protections,
        &facts.evidence,
        &facts.account_settings,
        &facts.at,
    );
    let plan = match already {
        Some(_) => Plan::Nothing(None),
        None => decide::decide(&facts.case(&judged, observed.busy.as_deref())),
    };
    let acted = act(reactor, &run, &facts, &observed, &judged, plan).await?;
    finish::<R>(
        &run,
        &facts,
        &observed,
        &judged,
        acted,
        already,
        interrupted_fix,
    )
    .await
}

// ------------------------------------------------------------------------------------ facts

/// Everything read about the event's resource, but the resource itself.
struct Facts {
    at: Location,
    scope: Result<Scope, AwsError>,
    settings: Result<Arc<Settings>, SettingsError>,
    account_settings: AccountSettings,
    mode: Mode,
    /// One entry per protection (`None`: the part could not be read).
    evidence: Vec<Option<KeyEvidence>>,
    remediation: Option<KeyEvidence>,
    /// `Ok(None)`: no ledger.
    claim: Result<Option<Claim>, AwsError>,
    /// `None`: no ledger, or it could not be read.
    record: Option<ResourceRecord>,
}

/// The resource as its own API reports it: `Ok(None)` when it no longer exists.
type Gathered<S> = Result<Option<Observed<S>>, AwsError>;

impl Facts {
    fn settings_error(&self) -> Option<&SettingsError> {
        self.settings.as_ref().err()
    }

    fn case<'a>(&'a self, judged: &'a [Judged], busy: Option<&'a str>) -> Case<'a> {
        Case {
            judged,
            // A ledger that is set but unavailable gives no lock: no safe fix, so alert.
            mode: match (self.mode, self.claim.is_err()) {
                (Mode::Remediate, true) => Mode::Alert,
                (mode, _) => mode,
            },
            settings: &self.account_settings,
            settings_error: self.settings_error(),
            at: &self.at,
            remediation: self.remediation.as_ref(),
            busy,
            recent_fixes: self.recent_fixes(),
        }
    }

    fn recent_fixes(&self) -> &[FixRecord] {
        self.record
            .as_ref()
            .map(|r| r.fixes.as_slice())
            .unwrap_or(&[])
    }
}

/// Reads the resource, the settings and the ledger concurrently; then describes every key
/// (and the remediation key, when the mode may use it) concurrently.
async fn facts<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    trigger: &Trigger,
    run: &Run<'_>,
    options: &Options,
) -> (Facts, Gathered<R::State>) {
    let home = ctx.home().await;
    let partition = home.as_ref().map(|h| h.partition.as_str()).unwrap_or("aws");
    let at = reactor.locate(trigger, partition);
    let scope = match home {
        Ok(_) => ctx.scope(&at).await,
        Err(e) => Err(e),
    };
    let known_arn = reactor.resource_arn(&trigger.resource_id, &at);

    let gathered = async {
        match &scope {
            Ok(scope) => reactor.gather(scope, &trigger.resource_id).await,
            Err(e) => Err(e.clone()),
        }
    };
    let claim = async {
        match &ctx.ledger {
            Some(ledger) => ledger
                .claim(&ctx.dynamodb, run.check, &run.claim_id, run.claim_until())
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let record = async {
        match (&ctx.ledger, &known_arn) {
            (Some(ledger), Some(arn)) => ledger.resource(&ctx.dynamodb, run.check, arn).await.ok(),
            _ => None,
        }
    };
    // The key the caller asked for is described now, concurrently, so that the DescribeKey
    // of the key the resource reports is (usually) a cache hit. It proves nothing by itself.
    let prefetch = async {
        if let (Some(hint), Ok(scope)) = (&trigger.key_hint, &scope) {
            ctx.keys
                .describe(&scope.kms_for(hint), &at.account, &at.region, hint)
                .await;
        }
    };
    let (settings, observed, claim, record, ()) = tokio::join!(
        ctx.settings.load(&ctx.ssm),
        gathered,
        claim,
        record,
        prefetch
    );

    let (account_settings, mode) = match &settings {
        Ok(s) => {
            let account = s.for_account(&at.account);
            let mode = options.mode.unwrap_or(account.mode);
            (account, mode)
        }
        // Never remediate on a document we could not use.
        Err(_) => (
            AccountSettings::default(),
            match options.mode {
                Some(Mode::Off) => Mode::Off,
                _ => Mode::Alert,
            },
        ),
    };
    // A resource read by id (its ARN unknown until now) has its record read now.
    let record = match (record, &ctx.ledger, &known_arn, &observed) {
        (Some(record), ..) => Some(record),
        (None, Some(ledger), None, Ok(Some(o))) => match &o.resource.arn {
            Some(arn) => ledger.resource(&ctx.dynamodb, run.check, arn).await.ok(),
            None => None,
        },
        _ => None,
    };
    let record = record.map(|mut r| {
        r.fixes = r.recent_fixes(now_secs());
        r
    });

    let (evidence, remediation) = match (&observed, &scope) {
        (Ok(Some(o)), Ok(scope)) => {
            let wants_fix = matches!(mode, Mode::Remediate | Mode::DryRun);
            let remediation_key = account_settings
                .remediation_keys
                .get(&at.region)
                .filter(|_| wants_fix);
            tokio::join!(
                join_all(o.protections.iter().map(|p| describe(ctx, scope, p))),
                async {
                    match remediation_key {
                        Some(key) => Some(
                            ctx.keys
                                .evidence(&scope.kms_for(key), &at.account, &at.region, Some(key))
                                .await,
                        ),
                        None => None,
                    }
                }
            )
        }
        _ => (Vec::new(), None),
    };
    let facts = Facts {
        at,
        scope,
        settings,
        account_settings,
        mode,
        evidence,
        remediation,
        claim,
        record,
    };
    (facts, observed)
}

async fn describe(ctx: &Context, scope: &Scope, protection: &Protection) -> Option<KeyEvidence> {
    match &protection.subject {
        Subject::Key(None) => Some(KeyEvidence::AwsOwned),
        Subject::Key(Some(key)) => Some(
            ctx.keys
                .evidence(
                    &scope.kms_for(key),
                    &scope.account,
                    &scope.region,
                    Some(key),
                )
                .await,
        ),
        Subject::Unreadable(_) => None,
    }
}

// -------------------------------------------------------------------------------------- act

/// What acting did: the finding's action, and for each judged protection what happened to
/// it and (after a fix) the key the read-back proved.
struct Acted {
    action: Action,
    parts: Vec<(ActionKind, Option<KeySummary>)>,
    /// The names of the parts a proven fix changed.
    fixed: Vec<String>,
    /// This run holds the resource's lock (to release when recording the outcome).
    locked: bool,
}

async fn act<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    plan: Plan,
) -> Result<Acted, HandlerError> {
    let failing = |j: &Judged| j.verdict.status() != Status::Compliant;
    let untouched = |kind_for_failing: ActionKind| -> Vec<(ActionKind, Option<KeySummary>)> {
        judged
            .iter()
            .map(|j| {
                let kind = if failing(j) {
                    kind_for_failing
                } else {
                    ActionKind::None
                };
                (kind, None)
            })
            .collect()
    };
    let steps_for = |indexes: &[usize]| {
        let parts: Vec<&Protection> = indexes.iter().map(|&i| &observed.protections[i]).collect();
        if parts.is_empty() {
            Vec::new()
        } else {
            reactor.manual_steps(observed, &parts)
        }
    };
    let failing_indexes: Vec<usize> = (0..judged.len()).filter(|&i| failing(&judged[i])).collect();

    match plan {
        Plan::Nothing(detail) => Ok(Acted {
            action: Action::none(detail),
            parts: untouched(ActionKind::None),
            fixed: Vec::new(),
            locked: false,
        }),
        Plan::Alert { why_no_fix } => {
            let detail = why_no_fix.unwrap_or_else(|| match facts.settings_error() {
                Some(_) => {
                    "Fix the settings document first: until then nothing is remediated".to_owned()
                }
                None if judged
                    .iter()
                    .any(|j| matches!(j.verdict, Verdict::Error { .. })) =>
                {
                    "Check the function's permissions in that account, then re-run the check"
                        .to_owned()
                }
                None => "Follow the steps to fix it by hand".to_owned(),
            });
            let mut action = Action::new(ActionKind::Alerted, Some(detail));
            action.steps = steps_for(&failing_indexes);
            Ok(Acted {
                action,
                parts: untouched(ActionKind::Alerted),
                fixed: Vec::new(),
                locked: false,
            })
        }
        Plan::Fix {
            key,
            parts,
            dry_run: true,
        } => {
            let rest: Vec<usize> = failing_indexes
                .iter()
                .copied()
                .filter(|i| !parts.contains(i))
                .collect();
            let mut detail = reactor.describe_fix(observed, &key);
            if !rest.is_empty() {
                detail.push_str(&format!(" Still needs a person: {}.", names(judged, &rest)));
            }
            let mut action = Action::new(ActionKind::WouldRemediate, Some(detail));
            action.steps = steps_for(&rest);
            let parts_out = (0..judged.len())
                .map(|i| match (parts.contains(&i), failing(&judged[i])) {
                    (true, _) => (ActionKind::WouldRemediate, None),
                    (false, true) => (ActionKind::Alerted, None),
                    (false, false) => (ActionKind::None, None),
                })
                .collect();
            Ok(Acted {
                action,
                parts: parts_out,
                fixed: Vec::new(),
                locked: false,
            })
        }
        Plan::Fix {
            key,
            parts,
            dry_run: false,
        } => {
            fix(
                reactor,
                run,
                facts,
                observed,
                judged,
                &key,
                &parts,
                &failing_indexes,
                steps_for,
            )
            .await
        }
        Plan::Retry(reason) => Err(release(run, None, reason).await),
    }
}

#[allow(clippy::too_many_arguments)]
async fn fix<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    key: &KeyInfo,
    parts: &[usize],
    failing: &[usize],
    steps_for: impl Fn(&[usize]) -> Vec<String>,
) -> Result<Acted, HandlerError> {
    let Ok(scope) = &facts.scope else {
        return Err(release(
            run,
            None,
            "no credentials for the resource's account".to_owned(),
        )
        .await);
    };
    if run.left() < FIX_MINIMUM + FINISH_RESERVE {
        return Err(release(
            run,
            None,
            format!(
                "only {:.1} s left before the deadline: not enough to fix and prove it",
                run.left().as_secs_f64()
            ),
        )
        .await);
    }
    let arn = observed.resource.arn.clone();
    let locked = match (&run.ctx.ledger, &arn) {
        (Some(ledger), Some(arn)) if run.ledger => {
            match ledger
                .begin_fix(
                    &run.ctx.dynamodb,
                    run.check,
                    &run.claim_id,
                    arn,
                    &key.arn,
                    run.claim_until(),
                )
                .await
            {
                Ok(()) => true,
                Err(LockError::Held) => {
                    return Err(release(
                        run,
                        None,
                        "another invocation is fixing this resource".to_owned(),
                    )
                    .await)
                }
                Err(e) => {
                    return Err(release(
                        run,
                        None,
                        format!("could not take the resource's lock: {e}"),
                    )
                    .await)
                }
            }
        }
        _ => false,
    };
    let fix_deadline = run.deadline - FINISH_RESERVE;
    let rest: Vec<usize> = failing
        .iter()
        .copied()
        .filter(|i| !parts.contains(i))
        .collect();
    let result = reactor.remediate(scope, observed, key, fix_deadline).await;
    let leave_alone = |kind: ActionKind| -> Vec<(ActionKind, Option<KeySummary>)> {
        (0..judged.len())
            .map(|i| match (parts.contains(&i), failing.contains(&i)) {
                (true, _) => (kind, None),
                (false, true) => (ActionKind::Alerted, None),
                (false, false) => (ActionKind::None, None),
            })
            .collect()
    };
    let acted = match result {
        Ok(Fixed { detail, parts: fixed }) => {
            let after = KeySummary::from_info(&key.arn, key);
            let mut detail = detail;
            if !rest.is_empty() {
                detail.push_str(&format!(" Still needs a person: {}.", names(judged, &rest)));
            }
            let mut action = Action::new(ActionKind::Remediated, Some(detail));
            action.steps = steps_for(&rest);
            let parts_out = judged
                .iter()
                .map(|j| {
                    if fixed.contains(&j.name) {
                        (ActionKind::Remediated, Some(after.clone()))
                    } else if j.verdict.status() != Status::Compliant {
                        (ActionKind::Alerted, None)
                    } else {
                        (ActionKind::None, None)
                    }
                })
                .collect();
            Acted { action, parts: parts_out, fixed, locked }
        }
        Err(FixError::Retry(error)) => {
            let locked_arn = arn.as_deref().filter(|_| locked);
            return Err(release(run, locked_arn, error.to_string()).await);
        }
        Err(FixError::Changed(why)) => Acted {
            action: Action::none(Some(format!(
                "Not fixed: {why}. Nothing was written; the event of that change is checked on its own."
            ))),
            parts: leave_alone(ActionKind::None),
            fixed: Vec::new(),
            locked,
        },
        Err(FixError::Refused(why)) => {
            let mut action = Action::new(ActionKind::Alerted, Some(format!("No automatic fix: {why}")));
            action.steps = steps_for(failing);
            Acted { action, parts: leave_alone(ActionKind::Alerted), fixed: Vec::new(), locked }
        }
        Err(FixError::Failed { error }) => {
            let mut action = Action::new(ActionKind::Failed, Some("the automatic fix was not proven; fix it by hand".to_owned()));
            action.error = Some(error);
            action.steps = steps_for(failing);
            Acted { action, parts: leave_alone(ActionKind::Failed), fixed: Vec::new(), locked }
        }
    };
    Ok(acted)
}

fn names(judged: &[Judged], indexes: &[usize]) -> String {
    indexes
        .iter()
        .map(|&i| judged[i].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Nothing was changed and nothing is decided: give the event back (and the lock, if this
/// run took it) so the Lambda retry handles it afresh.
async fn release(run: &Run<'_>, locked: Option<&str>, reason: String) -> HandlerError {
    if let (Some(ledger), true) = (&run.ctx.ledger, run.ledger) {
        if let Err(e) = ledger
            .release(&run.ctx.dynamodb, run.check, &run.claim_id, locked)
            .await
        {
            // The claim then expires after the deadline and the retry takes it over.
            tracing::warn!(error = %e, "could not release the event's claim");
        }
    }
    retry(run, reason)
}

fn retry(run: &Run<'_>, reason: String) -> HandlerError {
    HandlerError::Retry {
        event_id: run.call.event_id.clone(),
        reason,
    }
}

// ----------------------------------------------------------------------------------- finish

/// The finding of a run that judged the resource, published when it is news, and the
/// outcome recorded in the ledger.
async fn finish<R: Reactor>(
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    acted: Acted,
    already: Option<String>,
    interrupted_fix: Option<String>,
) -> Result<Finding, HandlerError> {
    let (mut status, mut severity, mut reason) = decide::summarize(judged, R::NOUN);
    let mut status_after = decide::status_after_fix(judged, &acted.fixed);
    let mut state = decide::fingerprint(status_after, judged, &acted.fixed);
    // Settings that could not be used make the whole finding an ERROR: the account's rules
    // (allowed keys and accounts, mode) are unknown, so no verdict about the key stands.
    if let Some(error) = facts.settings_error() {
        reason = format!(
            "{error}. Until it is fixed nothing is remediated. As for {}: {reason}",
            R::NOUN
        );
        (status, severity, status_after) = (Status::Error, Severity::High, Status::Error);
        state = serde_json::json!({"status": "ERROR", "settings": error.to_string(), "resource": state}).to_string();
    }
    let mut finding = Finding {
        status,
        severity,
        reason,
        mode: Some(facts.mode),
        protections: protection_summaries(judged, &acted.parts),
        action: acted.action,
        previous_status: facts
            .record
            .as_ref()
            .and_then(|r| r.published.as_ref())
            .map(|p| p.status),
        ..base::<R>(run.call, &facts.at, Some(&observed.resource))
    };
    finding.key = finding.protections.first().and_then(|p| p.key.clone());

    if let Some(summary) = already {
        finding.action = Action::none(Some(format!(
            "this event was already handled ({summary}); nothing is done or published twice"
        )));
        return Ok(finding);
    }
    if let Some(planned) = interrupted_fix {
        note_interrupted_fix(&mut finding, judged, &planned);
    }

    let now = now_secs();
    let publication = match &finding.action.kind {
        // An interrupted fix is always reported: its outcome was never told.
        _ if finding
            .action
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with(INTERRUPTED)) =>
        {
            Publication::Tell
        }
        kind => decide::publication(
            *kind,
            status_after,
            &state,
            facts.mode,
            facts.record.as_ref().filter(|_| run.ledger),
            facts.account_settings.repeat_alert_hours,
            now,
        ),
    };
    let told = match publication {
        Publication::Tell => true,
        Publication::Resolved(last) => {
            finding.action.detail = Some(format!(
                "Resolved: last reported {} (event {}); now every part is encrypted with an allowed customer-managed key",
                last.status.as_str(),
                last.event_id
            ));
            true
        }
        Publication::Quiet(why) => {
            if let Some(why) = why {
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
            }
            false
        }
    };

    let key_arns: BTreeSet<String> = finding
        .protections
        .iter()
        .filter_map(|p| p.key_after.as_ref().or(p.key.as_ref()))
        .filter_map(|k| k.arn.clone())
        .collect();
    let mut update = ResourceUpdate {
        published: told.then(|| Published {
            status: status_after,
            fingerprint: state.clone(),
            at: now,
            event_id: run.call.event_id.clone(),
        }),
        key_arns: (facts.record.as_ref().map(|r| &r.key_arns) != Some(&key_arns))
            .then_some(key_arns),
        fixes: None,
        release_lock: acted.locked,
    };
    if !acted.fixed.is_empty() {
        let mut fixes = facts.recent_fixes().to_vec();
        fixes.push(FixRecord {
            at: now,
            event_id: run.call.event_id.clone(),
            actor: run.call.actor.clone(),
        });
        update.fixes = Some(fixes);
    }
    let changed = !acted.fixed.is_empty() || finding.action.kind == ActionKind::Failed;
    let arn = observed.resource.arn.clone();
    record_and_publish(
        run,
        arn.as_deref(),
        finding,
        told,
        changed,
        update,
        &state,
        status_after,
    )
    .await
}

/// Publishes (when told) and records: the claim completes with the resource's new state.
/// A publish that fails after a change keeps the finding in the claim, so the retry tells
/// it; without a change the claim is released and the retry judges again.
#[allow(clippy::too_many_arguments)]
async fn record_and_publish(
    run: &Run<'_>,
    arn: Option<&str>,
    finding: Finding,
    told: bool,
    changed: bool,
    update: ResourceUpdate,
    state: &str,
    status_after: Status,
) -> Result<Finding, HandlerError> {
    let ctx = run.ctx;
    let ledger = ctx.ledger.as_ref().filter(|_| run.ledger);
    if told {
        if let Some(topic) = &ctx.env.alert_topic_arn {
            if let Err(error) = notify::publish(&ctx.sns, topic, &finding).await {
                let json = finding.to_json();
                tracing::error!(finding = %json, %error, "publish failed");
                if let Some(ledger) = ledger {
                    let kept = if changed {
                        let keep = kept_finding(&finding, state, status_after);
                        let mut update = update;
                        update.published = None;
                        ledger
                            .keep_unpublished(
                                &ctx.dynamodb,
                                run.check,
                                &run.claim_id,
                                arn,
                                &keep,
                                update,
                            )
                            .await
                    } else {
                        ledger
                            .release(&ctx.dynamodb, run.check, &run.claim_id, None)
                            .await
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
        }
    }
    if let Some(ledger) = ledger {
        let summary = format!(
            "{} / {}",
            finding.status.as_str(),
            finding.action.kind.as_str()
        );
        if let Err(e) = ledger
            .complete(
                &ctx.dynamodb,
                run.check,
                &run.claim_id,
                &summary,
                arn,
                update,
            )
            .await
        {
            tracing::warn!(error = %e, "could not record the outcome; a redelivery may be told again");
        }
    }
    Ok(finding)
}

/// What an ACTED claim keeps: the finding to publish and the state it leaves.
fn kept_finding(finding: &Finding, state: &str, status_after: Status) -> String {
    serde_json::json!({"finding": finding, "state": state, "status": status_after}).to_string()
}

/// Publishes the finding a run kept when it could not publish after a fix, and completes.
async fn publish_kept(
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
    let state = value["state"].as_str().unwrap_or_default().to_owned();
    let status_after = serde_json::from_value(value["status"].clone()).unwrap_or(finding.status);
    let arn = arn
        .map(str::to_owned)
        .or_else(|| finding.resource.arn.clone());
    let update = ResourceUpdate {
        published: Some(Published {
            status: status_after,
            fingerprint: state.clone(),
            at: now_secs(),
            event_id: run.call.event_id.clone(),
        }),
        ..ResourceUpdate::default()
    };
    record_and_publish(
        run,
        arn.as_deref(),
        finding,
        true,
        true,
        update,
        &state,
        status_after,
    )
    .await
}

/// How a finding begins that reports what an interrupted earlier run of the same event left.
const INTERRUPTED: &str = "An earlier run of this event was interrupted while fixing";

/// An earlier run of this event died after it began writing a fix. Whatever it left is
/// reported now, and a part already on the key it was putting in place is reported as fixed.
fn note_interrupted_fix(finding: &mut Finding, judged: &[Judged], planned: &str) {
    let now_on_planned: Vec<String> = finding
        .protections
        .iter()
        .filter(|p| p.key.as_ref().and_then(|k| k.arn.as_deref()) == Some(planned))
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
        if finding.action.kind == ActionKind::None
            && judged
                .iter()
                .any(|j| j.verdict.status() != Status::Compliant)
        {
            finding.action.kind = ActionKind::Alerted;
        }
    }
}

fn protection_summaries(
    judged: &[Judged],
    parts: &[(ActionKind, Option<KeySummary>)],
) -> Vec<ProtectionSummary> {
    judged
        .iter()
        .zip(parts)
        .map(|(j, (action, key_after))| ProtectionSummary {
            name: j.name.clone(),
            key: j.evidence.as_ref().and_then(KeySummary::from_evidence),
            verdict: j.verdict.status(),
            severity: j.verdict.severity(),
            reason: j.verdict.reason().to_owned(),
            fixable: j.fixable.is_ok(),
            action: *action,
            key_after: key_after.clone(),
        })
        .collect()
}

/// The finding of a run whose resource could not be judged: gone (IGNORED), or unreadable
/// (ERROR, or a retry when the failure may pass).
async fn finish_unjudged<R: Reactor>(
    run: &Run<'_>,
    trigger: &Trigger,
    facts: &Facts,
    gathered: Gathered<R::State>,
) -> Result<Finding, HandlerError> {
    let mut finding = match &gathered {
        Ok(None) => Finding {
            status: Status::Ignored,
            reason: format!(
                "{} {} no longer exists in account {} ({}); nothing to check",
                R::NOUN,
                trigger.resource_id,
                facts.at.account,
                facts.at.region
            ),
            mode: Some(facts.mode),
            ..base::<R>(run.call, &facts.at, None)
        },
        Err(error) if error.retryable && facts.mode != Mode::Off => {
            return Err(release(run, None, error.to_string()).await)
        }
        Err(error) => {
            let reason = match facts.settings_error() {
                Some(s) => format!("{s}; also, {error}"),
                None => format!(
                    "could not read {} {}: {error}",
                    R::NOUN,
                    trigger.resource_id
                ),
            };
            Finding {
                status: Status::Error,
                severity: Severity::High,
                reason,
                mode: Some(facts.mode),
                action: match facts.mode {
                    Mode::Off => Action::none(Some("mode is off: nothing published or changed".to_owned())),
                    _ => Action::new(
                        ActionKind::Alerted,
                        Some("Check the function's permissions in that account, then re-run the check".to_owned()),
                    ),
                },
                ..base::<R>(run.call, &facts.at, None)
            }
        }
        // Judged resources take the other path; should one arrive here, it is not lost.
        Ok(Some(_)) => {
            return Err(retry(
                run,
                "the resource was read but not judged".to_owned(),
            ))
        }
    };
    if let Some(arn) = reactor_arn(&finding, trigger) {
        finding.resource.arn = Some(arn);
    }
    let state = serde_json::json!({"status": finding.status.as_str(), "reason": finding.reason})
        .to_string();
    let publication = decide::publication(
        finding.action.kind,
        finding.status,
        &state,
        facts.mode,
        facts.record.as_ref().filter(|_| run.ledger),
        facts.account_settings.repeat_alert_hours,
        now_secs(),
    );
    let told = match publication {
        Publication::Tell => true,
        Publication::Resolved(_) => false,
        Publication::Quiet(why) => {
            if let Some(why) = why {
                finding.action.kind = ActionKind::None;
                finding.action.detail = Some(why);
            }
            false
        }
    };
    let update = ResourceUpdate {
        published: told.then(|| Published {
            status: finding.status,
            fingerprint: state.clone(),
            at: now_secs(),
            event_id: run.call.event_id.clone(),
        }),
        ..ResourceUpdate::default()
    };
    let arn = finding.resource.arn.clone();
    let status = finding.status;
    record_and_publish(
        run,
        arn.as_deref(),
        finding,
        told,
        false,
        update,
        &state,
        status,
    )
    .await
}

/// The resource ARN for a finding about a resource that could not be read: the event's own
/// identifier when it is an ARN.
fn reactor_arn(finding: &Finding, trigger: &Trigger) -> Option<String> {
    finding.resource.arn.clone().or_else(|| {
        trigger
            .resource_id
            .starts_with("arn:")
            .then(|| trigger.resource_id.clone())
    })
}

fn base<R: Reactor>(call: &Call, at: &Location, resource: Option<&Resource>) -> Finding {
    Finding {
        schema: SCHEMA.to_owned(),
        check: R::CHECK.to_owned(),
        status: Status::Ignored,
        severity: Severity::Info,
        account: at.account.clone(),
        region: at.region.clone(),
        resource: resource.cloned().unwrap_or(Resource {
            kind: R::RESOURCE_TYPE.to_owned(),
            arn: None,
            name: None,
        }),
        protections: Vec::new(),
        key: None,
        reason: String::new(),
        trigger: TriggerSummary::from(call),
        mode: None,
        action: Action::none(None),
        previous_status: None,
    }
}

fn ignored<R: Reactor>(call: &Call, reason: String) -> Finding {
    let at = Location {
        account: call.account.clone(),
        region: call.region.clone(),
        partition: String::new(),
    };
    Finding {
        reason,
        ..base::<R>(call, &at, None)
    }
}
