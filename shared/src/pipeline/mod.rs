//! The pipeline every reactor runs through, one direction:
//!
//! intake -> [`facts`] (resource, settings, ledger: concurrently; then DescribeKey for every
//! part) -> [`decide`](crate::decide) (pure) -> [`act`] (the fix, under the resource's lock)
//! -> [`finish`] (tell what is news, record it) -> finding.

mod act;
mod facts;
mod finish;

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use self::facts::Facts;
use self::finish::{Interrupted, Unjudged};
use crate::clients::Context;
use crate::decide::{self, Plan};
use crate::finding::{Action, Finding, Resource, Severity, Status, TriggerSummary, SCHEMA};
use crate::intake::{self, Call, Envelope, Intake, IntakeError, Trigger};
use crate::ledger::{now_secs, Claim, Entry};
use crate::reactor::{FixError, Fixed, Found, Reactor};
use crate::settings::Mode;
use crate::verdict::Location;

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

/// What one run of one event knows about itself.
struct Run<'a> {
    ctx: &'a Context,
    call: &'a Call,
    deadline: Instant,
    /// The event's place in the ledger; `None` without a ledger, or when it is unusable.
    entry: Option<Entry<'a>>,
}

impl Run<'_> {
    /// The deadline plus the margin, as the ledger's epoch seconds.
    fn claim_until(&self) -> u64 {
        now_secs() + (self.left() + CLAIM_MARGIN).as_secs()
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Nothing was decided (or changed): the Lambda error path, so the event is retried.
    fn retry(&self, reason: String) -> HandlerError {
        HandlerError::Retry {
            event_id: self.call.event_id.clone(),
            reason,
        }
    }

    /// Nothing was changed and nothing is decided: gives the event (and the resource's lock,
    /// if this run took it) back, so that the Lambda retry handles it afresh.
    async fn give_back(&self, locked: Option<&str>, reason: String) -> HandlerError {
        if let Some(entry) = &self.entry {
            if let Err(e) = entry.release(locked).await {
                // The claim then lapses after the deadline and the retry takes it over.
                tracing::warn!(error = %e, "could not release the event's claim");
            }
        }
        self.retry(reason)
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
    // With --force the run gets a claim of its own, so the original record stays.
    let claim_id = match options.force {
        false => trigger.call.event_id.clone(),
        true => format!("{}+forced-{}", trigger.call.event_id, now_secs()),
    };
    let mut run = Run {
        ctx,
        call: &trigger.call,
        deadline: options
            .deadline
            .unwrap_or_else(|| Instant::now() + DEFAULT_BUDGET),
        entry: ctx
            .ledger
            .as_ref()
            .map(|l| l.entry(&ctx.dynamodb, R::CHECK, &claim_id)),
    };
    let (facts, gathered) = facts::gather(reactor, &trigger, &run, options).await;

    let interrupted_fix = match &facts.claim {
        Ok(Some(Claim::InProgress { .. })) => {
            return Err(HandlerError::InProgress(trigger.call.event_id.clone()))
        }
        Ok(Some(Claim::Unpublished { finding })) => {
            let arn = match &gathered {
                Ok(Found::Resource(o)) => o.resource.arn.clone(),
                _ => None,
            };
            return finish::publish_kept(&run, arn.as_deref(), finding).await;
        }
        Ok(Some(Claim::Fresh { interrupted_fix })) => interrupted_fix.clone(),
        Ok(Some(Claim::Completed { .. }) | None) => None,
        Err(error) if error.retryable => return Err(run.retry(error.to_string())),
        Err(error) => {
            // Judged alone: no lock, so no fix; and a redelivery may be told twice.
            tracing::error!(%error, "the ledger is unavailable; the event is judged without it");
            run.entry = None;
            None
        }
    };
    let interrupted_fix = match interrupted_fix {
        Some(planned) => {
            let finished = resume(reactor, &run, &facts, &trigger, &planned).await;
            Some(Interrupted { planned, finished })
        }
        None => None,
    };
    let already = match &facts.claim {
        Ok(Some(Claim::Completed { summary })) => Some(summary.clone()),
        _ => None,
    };

    let observed = match gathered {
        Ok(Found::Resource(observed)) => observed,
        Ok(Found::Gone) => {
            let why = Unjudged::Gone;
            return finish::unjudged::<R>(&run, &trigger, &facts, why, interrupted_fix).await;
        }
        Ok(Found::Unrelated(why)) => {
            // Not this check's concern: nothing is told and the resource's record is left
            // alone, unless an earlier run of this event began a fix (a stopped job is no
            // longer judged): that is told. A claim this run took completes, so that a
            // redelivery is "already handled" rather than "in progress" until it lapses.
            if !matches!(facts.claim, Ok(Some(Claim::Fresh { .. }))) {
                run.entry = None;
            }
            let why = Unjudged::Unrelated(why);
            return finish::unjudged::<R>(&run, &trigger, &facts, why, interrupted_fix).await;
        }
        Err(error) => {
            let why = Unjudged::Unreadable(error);
            return finish::unjudged::<R>(&run, &trigger, &facts, why, interrupted_fix).await;
        }
    };
    let plan = match already {
        Some(_) => Plan::Nothing(None),
        None => decide::decide(&facts.case(observed.busy.as_deref())),
    };
    let acted = act::act(reactor, &run, &facts, &observed, plan).await?;
    let outcome = finish::Outcome {
        acted,
        already,
        interrupted_fix,
    };
    finish::judged::<R>(&run, &facts, &observed, outcome).await
}

/// Lets the reactor finish what a dead run of this event began, where fixing is allowed now.
async fn resume<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    trigger: &Trigger,
    planned: &str,
) -> Option<Result<Fixed, FixError>> {
    let Ok(scope) = &facts.scope else {
        return None;
    };
    if facts.mode != Mode::Remediate || facts.settings_error().is_some() {
        return None;
    }
    reactor
        .resume(
            scope,
            &trigger.named,
            planned,
            &facts.account_settings,
            &run.call.event_id,
        )
        .await
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
