//! Facts: everything read about the event's resource, in concurrent rounds. First the
//! resource itself, the settings, the event's claim and the resource's record in the ledger;
//! then DescribeKey for every part's key and for the remediation keys; then, for the parts a
//! fix would change, whether their service can use the remediation key.
//!
//! An event that names a part of a resource (a bucket, a log group) reads the resource first,
//! alone: when the part is not one of its parts, that one read is all the event costs.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use super::{Options, Run};
use crate::aws::AwsError;
use crate::clients::{Context, Scope};
use crate::decide::{self, Case, Judged};
use crate::intake::{Named, Trigger};
use crate::keys::{KeyEvidence, KeyRef};
use crate::ledger::{now_secs, Claim, FixRecord, ResourceRecord};
use crate::reactor::{Found, Observed, Protection, Reactor, Subject};
use crate::settings::{AccountSettings, Mode, Settings, SettingsError};
use crate::verdict::{judge_key, Location, Verdict};

/// Everything read about the event's resource, but the resource itself.
pub(super) struct Facts {
    pub at: Location,
    /// The resource's ARN (or the guard's identifier for it), when the event alone says it.
    pub resource_arn: Option<String>,
    pub scope: Result<Scope, AwsError>,
    pub settings: Result<Arc<Settings>, SettingsError>,
    pub account_settings: AccountSettings,
    pub mode: Mode,
    /// Every protection, judged (empty when the resource was not read).
    pub judged: Vec<Judged>,
    /// Per kind of part: the remediation key's evidence (when the mode may fix).
    pub remediation: BTreeMap<&'static str, KeyEvidence>,
    /// Per part a fix would change: whether its service can use the remediation key.
    pub preflight: BTreeMap<usize, Result<(), String>>,
    /// `Ok(None)`: no ledger (or the event was not worth a claim).
    pub claim: Result<Option<Claim>, AwsError>,
    /// `None`: no ledger, or it could not be read. Its fixes are the recent ones only.
    pub record: Option<ResourceRecord>,
}

pub(super) type Gathered<S> = Result<Found<S>, AwsError>;

impl Facts {
    pub fn settings_error(&self) -> Option<&SettingsError> {
        self.settings.as_ref().err()
    }

    pub fn case<'a>(&'a self, busy: Option<&'a str>) -> Case<'a> {
        Case {
            judged: &self.judged,
            // A ledger that is set but unavailable gives no lock: no safe fix, so alert.
            mode: match (self.mode, self.claim.is_err()) {
                (Mode::Remediate, true) => Mode::Alert,
                (mode, _) => mode,
            },
            settings: &self.account_settings,
            settings_error: self.settings_error(),
            at: &self.at,
            remediation: &self.remediation,
            preflight: &self.preflight,
            busy,
            recent_fixes: self.recent_fixes(),
        }
    }

    pub fn recent_fixes(&self) -> &[FixRecord] {
        self.record
            .as_ref()
            .map(|r| r.fixes.as_slice())
            .unwrap_or(&[])
    }
}

/// Reads the resource, the settings and the ledger concurrently; then describes every key
/// (and the remediation keys, when the mode may use them) concurrently; then checks the
/// remediation keys against the services of the parts a fix would change.
pub(super) async fn gather<R: Reactor>(
    reactor: &R,
    trigger: &Trigger,
    run: &Run<'_>,
    options: &Options,
) -> (Facts, Gathered<R::State>) {
    let ctx = run.ctx;
    let home = ctx.home().await;
    let partition = home.as_ref().map(|h| h.partition.as_str()).unwrap_or("aws");
    let at = reactor.locate(trigger, partition);
    let scope = match home {
        Ok(_) => ctx.scope(&at).await,
        Err(e) => Err(e),
    };
    let known_arn = reactor.resource_arn(&trigger.named, &at);
    let read = || async {
        match &scope {
            Ok(scope) => reactor.gather(scope, &trigger.named).await,
            Err(e) => Err(e.clone()),
        }
    };
    // An event about a part: the resource first, alone, to see whether the part is its.
    let early = match &trigger.named {
        Named::Part { kind, id } => {
            let gathered = read().await;
            let unrelated = match &gathered {
                Ok(Found::Unrelated(why)) => Some(why.clone()),
                // The reactor could not tell before reading the parts: none of them is it.
                Ok(Found::Resource(o))
                    if !o.protections.iter().any(|p| reactor.is_part(p, kind, id)) =>
                {
                    Some(format!(
                        "{kind} {id} is not a part of {} ({}), so it is not this check's concern",
                        R::NOUN,
                        o.resource.name.as_deref().unwrap_or("unnamed")
                    ))
                }
                _ => None,
            };
            if let Some(why) = unrelated {
                return (quiet(at, scope), Ok(Found::Unrelated(why)));
            }
            Some(gathered)
        }
        _ => None,
    };
    let gathered = async {
        match early {
            Some(gathered) => gathered,
            None => read().await,
        }
    };
    let claim = async {
        match &run.entry {
            Some(entry) => entry.claim(run.claim_until()).await.map(Some),
            None => Ok(None),
        }
    };
    let record = async {
        match (&run.entry, &known_arn) {
            (Some(entry), Some(arn)) => entry.resource(arn).await.ok(),
            _ => None,
        }
    };
    // The key the caller asked for is described now, concurrently, so that the DescribeKey
    // of the key the resource reports is (usually) a cache hit. It proves nothing by itself.
    let prefetch = async {
        if let (Some(hint), Ok(scope)) = (&trigger.key_hint, &scope) {
            describe_key(ctx, scope, hint).await;
        }
    };
    let (settings, gathered, claim, record, ()) = tokio::join!(
        ctx.settings.load(&ctx.ssm),
        gathered,
        claim,
        record,
        prefetch
    );

    let (account_settings, mode) = settings_for(&settings, &at, options);
    // A resource read by id (its ARN unknown until now) has its record read now.
    let record = match (record, &run.entry, &known_arn, &gathered) {
        (Some(record), ..) => Some(record),
        (None, Some(entry), None, Ok(Found::Resource(o))) => match &o.resource.arn {
            Some(arn) => entry.resource(arn).await.ok(),
            None => None,
        },
        _ => None,
    };
    let record = record.map(|mut r| {
        r.fixes = r.recent_fixes(now_secs());
        r
    });

    let mut facts = Facts {
        at,
        resource_arn: known_arn,
        scope,
        settings,
        account_settings,
        mode,
        judged: Vec::new(),
        remediation: BTreeMap::new(),
        preflight: BTreeMap::new(),
        claim,
        record,
    };
    if let (Ok(Found::Resource(o)), Ok(scope)) = (&gathered, &facts.scope) {
        let (judged, remediation, preflight) =
            judge_with_keys(reactor, ctx, scope, o, &facts).await;
        (facts.judged, facts.remediation, facts.preflight) = (judged, remediation, preflight);
    }
    (facts, gathered)
}

/// The facts of an event that is not this check's concern: nothing more is read.
fn quiet(at: Location, scope: Result<Scope, AwsError>) -> Facts {
    Facts {
        at,
        resource_arn: None,
        scope,
        settings: Ok(Arc::new(Settings::default())),
        account_settings: AccountSettings::default(),
        mode: Mode::Off,
        judged: Vec::new(),
        remediation: BTreeMap::new(),
        preflight: BTreeMap::new(),
        claim: Ok(None),
        record: None,
    }
}

/// What judging needs beyond the resource: the judgement, the remediation keys' evidence
/// per kind, and the preflight of the parts a fix would change.
type Judgement = (
    Vec<Judged>,
    BTreeMap<&'static str, KeyEvidence>,
    BTreeMap<usize, Result<(), String>>,
);

/// DescribeKey for every part and for the remediation keys of the kinds present; the
/// judgement; and, for the parts a fix would change, the reactor's preflight.
async fn judge_with_keys<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    scope: &Scope,
    observed: &Observed<R::State>,
    facts: &Facts,
) -> Judgement {
    let wants_fix = matches!(facts.mode, Mode::Remediate | Mode::DryRun);
    let mut kinds: Vec<&'static str> = observed.protections.iter().map(|p| p.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let remediation_keys: Vec<(&'static str, KeyRef)> = kinds
        .into_iter()
        .filter(|_| wants_fix)
        .filter_map(|kind| {
            facts
                .account_settings
                .remediation_key(&facts.at.region, kind)
                .map(|key| (kind, key.clone()))
        })
        .collect();
    let (evidence, remediation) = tokio::join!(
        join_all(observed.protections.iter().map(|p| describe(ctx, scope, p))),
        join_all(
            remediation_keys
                .iter()
                .map(|(kind, key)| async move { (*kind, describe_key(ctx, scope, key).await) })
        )
    );
    let judged = decide::judge(
        &observed.protections,
        &evidence,
        &facts.account_settings,
        &facts.at,
    );
    let remediation: BTreeMap<&'static str, KeyEvidence> = remediation.into_iter().collect();
    if !wants_fix || facts.settings_error().is_some() {
        return (judged, remediation, BTreeMap::new());
    }
    // Only the parts a fix would change, with a key that passes the check, are worth asking.
    let candidates: Vec<(usize, &crate::keys::KeyInfo)> = judged
        .iter()
        .enumerate()
        .filter(|(_, j)| matches!(j.verdict, Verdict::NonCompliant { .. }) && j.fixable.is_ok())
        .filter_map(|(i, j)| match remediation.get(j.kind) {
            Some(evidence @ KeyEvidence::Described { info, .. })
                if matches!(
                    judge_key(evidence, &facts.account_settings, &facts.at, "the key"),
                    Verdict::Compliant { .. }
                ) =>
            {
                Some((i, info))
            }
            _ => None,
        })
        .collect();
    let checked =
        join_all(candidates.iter().map(|(i, key)| async move {
            (*i, reactor.preflight(scope, observed, *i, key).await)
        }))
        .await;
    (judged, remediation, checked.into_iter().collect())
}

/// The account's settings and the mode that applies: `--mode` replaces the settings' mode,
/// but a document that could not be used never remediates.
fn settings_for(
    settings: &Result<Arc<Settings>, SettingsError>,
    at: &Location,
    options: &Options,
) -> (AccountSettings, Mode) {
    match settings {
        Ok(s) => {
            let account = s.for_account(&at.account);
            let mode = options.mode.unwrap_or(account.mode);
            (account, mode)
        }
        Err(_) => (
            AccountSettings::default(),
            match options.mode {
                Some(Mode::Off) => Mode::Off,
                _ => Mode::Alert,
            },
        ),
    }
}

async fn describe(ctx: &Context, scope: &Scope, protection: &Protection) -> Option<KeyEvidence> {
    match &protection.subject {
        Subject::Key(None) => Some(KeyEvidence::AwsOwned),
        Subject::Key(Some(key)) => Some(describe_key(ctx, scope, key).await),
        Subject::Unprotected { .. } | Subject::Unreadable(_) => None,
    }
}

/// DescribeKey where the key lives (an ARN of another Region is asked in that Region).
async fn describe_key(ctx: &Context, scope: &Scope, key: &KeyRef) -> KeyEvidence {
    ctx.keys
        .evidence(
            &scope.kms_for(key),
            &scope.account,
            &scope.region,
            Some(key),
        )
        .await
}
