//! Facts: everything read about the event's resource, in two concurrent rounds. First the
//! resource itself, the settings, the event's claim and the resource's record in the ledger;
//! then DescribeKey for every part's key and for the remediation key.

use std::sync::Arc;

use futures_util::future::join_all;

use super::{Options, Run};
use crate::aws::AwsError;
use crate::clients::{Context, Scope};
use crate::decide::{Case, Judged};
use crate::intake::Trigger;
use crate::keys::{KeyEvidence, KeyRef};
use crate::ledger::{now_secs, Claim, FixRecord, ResourceRecord};
use crate::reactor::{Observed, Protection, Reactor, Subject};
use crate::settings::{AccountSettings, Mode, Settings, SettingsError};
use crate::verdict::Location;

/// Everything read about the event's resource, but the resource itself.
pub(super) struct Facts {
    pub at: Location,
    pub scope: Result<Scope, AwsError>,
    pub settings: Result<Arc<Settings>, SettingsError>,
    pub account_settings: AccountSettings,
    pub mode: Mode,
    /// One entry per protection (`None`: the part could not be read).
    pub evidence: Vec<Option<KeyEvidence>>,
    pub remediation: Option<KeyEvidence>,
    /// `Ok(None)`: no ledger.
    pub claim: Result<Option<Claim>, AwsError>,
    /// `None`: no ledger, or it could not be read. Its fixes are the recent ones only.
    pub record: Option<ResourceRecord>,
}

/// The resource as its own API reports it: `Ok(None)` when it no longer exists.
pub(super) type Gathered<S> = Result<Option<Observed<S>>, AwsError>;

impl Facts {
    pub fn settings_error(&self) -> Option<&SettingsError> {
        self.settings.as_ref().err()
    }

    pub fn case<'a>(&'a self, judged: &'a [Judged], busy: Option<&'a str>) -> Case<'a> {
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

    pub fn recent_fixes(&self) -> &[FixRecord] {
        self.record
            .as_ref()
            .map(|r| r.fixes.as_slice())
            .unwrap_or(&[])
    }
}

/// Reads the resource, the settings and the ledger concurrently; then describes every key
/// (and the remediation key, when the mode may use it) concurrently.
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
    let known_arn = reactor.resource_arn(&trigger.resource_id, &at);

    let gathered = async {
        match &scope {
            Ok(scope) => reactor.gather(scope, &trigger.resource_id).await,
            Err(e) => Err(e.clone()),
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
        (None, Some(entry), None, Ok(Some(o))) => match &o.resource.arn {
            Some(arn) => entry.resource(arn).await.ok(),
            None => None,
        },
        _ => None,
    };
    let record = record.map(|mut r| {
        r.fixes = r.recent_fixes(now_secs());
        r
    });

    let (evidence, remediation) = match (&gathered, &scope) {
        (Ok(Some(o)), Ok(scope)) => {
            let remediation_key = account_settings
                .remediation_keys
                .get(&at.region)
                .filter(|_| matches!(mode, Mode::Remediate | Mode::DryRun));
            tokio::join!(
                join_all(o.protections.iter().map(|p| describe(ctx, scope, p))),
                async {
                    match remediation_key {
                        Some(key) => Some(describe_key(ctx, scope, key).await),
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
    (facts, gathered)
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
        Subject::Unreadable(_) => None,
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
