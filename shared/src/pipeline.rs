//! The pipeline every reactor runs through, one direction:
//! intake -> gather (resource, settings, event claim: concurrently) -> DescribeKey ->
//! judge -> plan -> act -> publish -> finding.

use serde_json::Value;

use crate::clients::{Context, Scope};
use crate::finding::{
    Action, ActionKind, Finding, KeySummary, Resource, Severity, Status, TriggerSummary, SCHEMA,
};
use crate::idempotency::Claim;
use crate::intake::{self, Call, Intake, IntakeError};
use crate::keys::{KeyEvidence, KeyInfo};
use crate::notify;
use crate::reactor::{Observed, Reactor};
use crate::settings::{AccountSettings, Mode};
use crate::verdict::{judge_key, Location, Verdict};

/// Per-run choices that are not settings (the CLI's `--mode`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the account's mode, except that a broken settings document never remediates.
    pub mode: Option<Mode>,
}

/// Failures that go to the Lambda error path (retries, then the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("bad event: {0}")]
    Intake(#[from] IntakeError),
    #[error("event {0} is being handled by another invocation; retry later")]
    InProgress(String),
    #[error("the finding could not be published ({error}); finding: {finding}")]
    Publish { finding: String, error: String },
}

/// What the account's mode allows for this verdict.
enum Plan {
    Nothing(Option<String>),
    Alert(String),
    DryRun(KeyInfo),
    Remediate(KeyInfo),
}

/// Handles one event end to end and returns its finding.
pub async fn handle<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    event: &Value,
    options: &Options,
) -> Result<Finding, HandlerError> {
    let trigger = match intake::parse(event, R::EVENTS)? {
        Intake::Check(trigger) => trigger,
        Intake::Ignored { call, reason } => {
            return Ok(ignored::<R>(&call, reason));
        }
    };
    let call = &trigger.call;
    let at = reactor.locate(&trigger);

    let scope = ctx.scope(&at.account, &at.region).await;
    let claim = async {
        match &ctx.idempotency {
            Some(store) => Some(store.claim(&ctx.dynamodb, &call.event_id).await),
            None => None,
        }
    };
    let gathered = async {
        match &scope {
            Ok(scope) => reactor
                .gather(scope, &trigger.resource_id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("no credentials for account {}: {e}", at.account)),
        }
    };
    // The key the caller asked for is described now, concurrently, so that the DescribeKey
    // of the key GetGuardrail reports is (usually) a cache hit. It proves nothing by itself.
    let prefetch = async {
        if let (Some(hint), Ok(scope)) = (&trigger.key_hint, &scope) {
            ctx.keys
                .describe(&scope.kms, &at.account, &at.region, hint)
                .await;
        }
    };
    let (settings, gathered, claim, ()) =
        tokio::join!(ctx.settings.load(&ctx.ssm), gathered, claim, prefetch);

    let claim = match claim {
        Some(Ok(Claim::InProgress)) => return Err(HandlerError::InProgress(call.event_id.clone())),
        Some(Ok(claim)) => Some(claim),
        Some(Err(e)) => {
            // Better a possible duplicate alert than a lost one.
            tracing::warn!(error = %e, "idempotency record unavailable; handling the event without it");
            None
        }
        None => None,
    };

    let (account_settings, settings_error) = match &settings {
        Ok(s) => (s.for_account(&at.account), None),
        Err(e) => (AccountSettings::default(), Some(e.to_string())),
    };
    let mode = match (&settings_error, options.mode) {
        (Some(_), Some(Mode::Off)) => Mode::Off,
        // Never remediate on a document we could not read.
        (Some(_), _) => Mode::Alert,
        (None, Some(mode)) => mode,
        (None, None) => account_settings.mode,
    };

    let (observed, scope) = match (gathered, scope) {
        (Ok(Some(observed)), Ok(scope)) => (observed, scope),
        (Ok(None), _) => {
            let finding = Finding {
                status: Status::Ignored,
                reason: format!(
                    "{} {} no longer exists; nothing to check",
                    R::NOUN,
                    trigger.resource_id
                ),
                mode: Some(mode),
                ..base::<R>(call, &at, None, None)
            };
            return finish(ctx, claim, finding).await;
        }
        (Err(error), _) | (Ok(Some(_)), Err(error)) => {
            let reason = match &settings_error {
                Some(s) => format!("{s}; also, {error}"),
                None => format!(
                    "could not read {} {}: {error}",
                    R::NOUN,
                    trigger.resource_id
                ),
            };
            let finding = Finding {
                status: Status::Error,
                severity: Severity::High,
                reason,
                mode: Some(mode),
                action: alert_or_nothing(
                    mode,
                    "check the function's permissions in that account, then re-run the check",
                ),
                ..base::<R>(call, &at, Some(trigger.resource_id.clone()), None)
            };
            return finish(ctx, claim, finding).await;
        }
    };

    let kms = &scope.kms;
    let wants_fix = matches!(mode, Mode::Remediate | Mode::DryRun) && settings_error.is_none();
    let remediation_ref = account_settings.remediation_keys.get(&at.region);
    let (evidence, remediation_evidence) = tokio::join!(
        ctx.keys
            .evidence(kms, &at.account, &at.region, observed.key.as_ref()),
        async {
            match remediation_ref {
                Some(key) if wants_fix => Some(
                    ctx.keys
                        .evidence(kms, &at.account, &at.region, Some(key))
                        .await,
                ),
                _ => None,
            }
        }
    );

    let verdict = judge_key(&evidence, &account_settings, &at, R::NOUN);
    let verdict = match settings_error {
        Some(error) => Verdict::Error {
            reason: format!(
                "{error}. Until it is fixed nothing is remediated. As for the {}: {}",
                R::NOUN.trim_start_matches("the "),
                verdict.reason()
            ),
        },
        None => verdict,
    };

    let plan = plan(
        reactor,
        &observed,
        &verdict,
        mode,
        &account_settings,
        &at,
        remediation_evidence.as_ref(),
    );
    let action = match (already_handled(&claim), plan) {
        (Some(action), _) => action,
        (None, Plan::Nothing(detail)) => Action::none(detail),
        (None, Plan::Alert(detail)) => Action {
            kind: ActionKind::Alerted,
            detail: Some(detail),
            error: None,
        },
        (None, Plan::DryRun(key)) => Action {
            kind: ActionKind::WouldRemediate,
            detail: Some(reactor.describe_fix(&observed, &key)),
            error: None,
        },
        (None, Plan::Remediate(key)) => remediate(reactor, &scope, &observed, &key).await,
    };

    let finding = Finding {
        status: match verdict {
            Verdict::Compliant { .. } => Status::Compliant,
            Verdict::NonCompliant { .. } => Status::NonCompliant,
            Verdict::Error { .. } => Status::Error,
        },
        severity: verdict.severity(),
        reason: verdict.reason().to_owned(),
        mode: Some(mode),
        action,
        ..base::<R>(
            call,
            &at,
            observed.resource.arn.clone(),
            Some(&observed.resource),
        )
        .with_key(&evidence)
    };
    finish(ctx, claim, finding).await
}

fn plan<R: Reactor>(
    reactor: &R,
    observed: &Observed<R::State>,
    verdict: &Verdict,
    mode: Mode,
    settings: &AccountSettings,
    at: &Location,
    remediation: Option<&KeyEvidence>,
) -> Plan {
    if mode == Mode::Off {
        return Plan::Nothing(Some("mode is off: nothing published or changed".to_owned()));
    }
    match verdict {
        Verdict::Compliant { .. } => Plan::Nothing(None),
        Verdict::Error { .. } => Plan::Alert(
            "check the function's permissions and the settings parameter, then re-run the check"
                .to_owned(),
        ),
        Verdict::NonCompliant { .. } if mode == Mode::Alert => {
            Plan::Alert(reactor.manual_fix(observed))
        }
        Verdict::NonCompliant { .. } => {
            let manual =
                |why: String| Plan::Alert(format!("{why}. {}", reactor.manual_fix(observed)));
            if let Some(why) = reactor.cannot_remediate(observed) {
                return manual(format!("No automatic fix: {why}"));
            }
            let Some(evidence) = remediation else {
                return manual(format!(
                    "No automatic fix: the settings name no remediationKeys entry for {}",
                    at.region
                ));
            };
            // The key we would put in place must pass the same check.
            match (
                judge_key(evidence, settings, at, "the remediation key"),
                evidence,
            ) {
                (Verdict::Compliant { .. }, KeyEvidence::Described { info, .. }) => {
                    if mode == Mode::Remediate {
                        Plan::Remediate(info.clone())
                    } else {
                        Plan::DryRun(info.clone())
                    }
                }
                (verdict, _) => manual(format!("No automatic fix: {}", verdict.reason())),
            }
        }
    }
}

async fn remediate<R: Reactor>(
    reactor: &R,
    scope: &Scope,
    observed: &Observed<R::State>,
    key: &KeyInfo,
) -> Action {
    match reactor.remediate(scope, observed, key).await {
        Ok(detail) => Action {
            kind: ActionKind::Remediated,
            detail: Some(detail),
            error: None,
        },
        Err(e) => failed(reactor, observed, e.0),
    }
}

fn failed<R: Reactor>(reactor: &R, observed: &Observed<R::State>, error: String) -> Action {
    Action {
        kind: ActionKind::Failed,
        detail: Some(reactor.manual_fix(observed)),
        error: Some(error),
    }
}

fn alert_or_nothing(mode: Mode, detail: &str) -> Action {
    if mode == Mode::Off {
        Action::none(Some("mode is off: nothing published or changed".to_owned()))
    } else {
        Action {
            kind: ActionKind::Alerted,
            detail: Some(detail.to_owned()),
            error: None,
        }
    }
}

/// For a redelivered event: nothing is done or published a second time.
fn already_handled(claim: &Option<Claim>) -> Option<Action> {
    match claim {
        Some(Claim::Completed { summary }) => Some(Action::none(Some(format!(
            "this event was already handled ({summary}); nothing is done or published twice"
        )))),
        _ => None,
    }
}

/// Publishes what is worth telling and records the event as handled.
async fn finish(
    ctx: &Context,
    claim: Option<Claim>,
    mut finding: Finding,
) -> Result<Finding, HandlerError> {
    // Every path ends here, so no path can repeat an alert for a redelivered event.
    if let Some(action) = already_handled(&claim) {
        finding.action = action;
    }
    let event_id = finding.trigger.event_id.clone();
    if finding.worth_telling() {
        if let Some(topic) = &ctx.env.alert_topic_arn {
            if let Err(error) = notify::publish(&ctx.sns, topic, &finding).await {
                let json = finding.to_json();
                tracing::error!(finding = %json, %error, "publish failed");
                if let (Some(store), Some(Claim::Fresh)) = (&ctx.idempotency, &claim) {
                    if let Err(e) = store.release(&ctx.dynamodb, &event_id).await {
                        tracing::error!(error = %e, "could not release the idempotency record");
                    }
                }
                return Err(HandlerError::Publish {
                    finding: json,
                    error,
                });
            }
        }
    }
    if let (Some(store), Some(Claim::Fresh)) = (&ctx.idempotency, &claim) {
        let summary = format!(
            "{} / {}",
            finding.status.as_str(),
            finding.action.kind.as_str()
        );
        if let Err(e) = store.complete(&ctx.dynamodb, &event_id, &summary).await {
            tracing::warn!(error = %e, "could not mark the event handled; a redelivery may alert again");
        }
    }
    Ok(finding)
}

fn base<R: Reactor>(
    call: &Call,
    at: &Location,
    arn: Option<String>,
    resource: Option<&Resource>,
) -> Finding {
    Finding {
        schema: SCHEMA.to_owned(),
        check: R::CHECK.to_owned(),
        status: Status::Ignored,
        severity: Severity::Info,
        account: at.account.clone(),
        region: at.region.clone(),
        resource: resource.cloned().unwrap_or(Resource {
            kind: R::RESOURCE_TYPE.to_owned(),
            arn,
            name: None,
        }),
        key: None,
        reason: String::new(),
        trigger: TriggerSummary::from(call),
        mode: None,
        action: Action::none(None),
    }
}

fn ignored<R: Reactor>(call: &Call, reason: String) -> Finding {
    let at = Location {
        account: call.account.clone(),
        region: call.region.clone(),
    };
    Finding {
        reason,
        ..base::<R>(call, &at, None, None)
    }
}

impl Finding {
    fn with_key(mut self, evidence: &KeyEvidence) -> Self {
        self.key = KeySummary::from_evidence(evidence);
        self
    }
}
