//! The Reactor trait: the one shape every resource family has (Cloud Custodian's resource /
//! filter / action, here gather / judge / remediate). A new reactor fills in these items;
//! the [`crate::pipeline`] does everything else the same way for all of them.

use std::future::Future;

use tokio::time::Instant;

use crate::aws::AwsError;
use crate::clients::Scope;
use crate::finding::Resource;
use crate::intake::{EventSpec as IntakeEventSpec, Named, Trigger};
use crate::keys::{KeyInfo, KeyRef};
use crate::settings::AccountSettings;
use crate::verdict::{KeyProblem, Location};

pub use crate::intake::{EventSpec, Names};

/// A resource as it is now, read from its own API (never from the event).
#[derive(Debug, Clone)]
pub struct Observed<S> {
    pub resource: Resource,
    /// Every encrypted part, each judged on its own (at least one).
    pub protections: Vec<Protection>,
    /// Set while the resource is in the middle of a change (e.g. status UPDATING): a fix
    /// would collide with it, so remediation waits for a retry. Says what it is doing.
    pub busy: Option<String>,
    /// The full description, kept for the remediation (which must not lose any of it).
    pub state: S,
}

/// What reading the resource found.
#[derive(Debug, Clone)]
pub enum Found<S> {
    Resource(Observed<S>),
    /// It no longer exists.
    Gone,
    /// The event names a part that is not one of the resource's (says which): not this
    /// check's concern. A reactor that can tell before reading every part says so at once.
    Unrelated(String),
}

/// One encrypted part of a resource: a guardrail's DRAFT or a published version, a logging
/// destination, a job's output model.
#[derive(Debug, Clone, PartialEq)]
pub struct Protection {
    /// Short name in findings: `DRAFT`, `version 3`, `log group /aws/bedrock/invocations`.
    pub name: String,
    /// How reasons name it: "the guardrail's DRAFT".
    pub noun: String,
    /// What kind of thing it is: `bedrock` (a Bedrock resource's own key), `logs` (a log
    /// group), `s3` (a bucket). `remediationKeys` may name a key per kind, and an event that
    /// names a part names it by kind.
    pub kind: &'static str,
    /// The AWS resource this part is, when it is one of its own (a log group's or a bucket's
    /// name): events about it reach the resource it belongs to.
    pub resource: Option<String>,
    pub subject: Subject,
    /// Why no automatic fix can change this part (a published version is immutable; the
    /// answer held members the fix would lose), if that is so.
    pub no_fix: Option<String>,
}

/// What protects a part.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// Encrypted with this key; `None` means a key AWS owns.
    Key(Option<KeyRef>),
    /// Not protected by a customer-managed key, and no key to describe says more: SSE-S3,
    /// SSE-KMS with the AWS-managed key, no encryption rule, a destination that does not
    /// exist, logging switched off. NON_COMPLIANT for `reason`.
    Unprotected { problem: KeyProblem, reason: String },
    /// The part could not be read: nothing can be concluded about it.
    Unreadable(AwsError),
}

impl Protection {
    pub fn key(&self) -> Option<&KeyRef> {
        match &self.subject {
            Subject::Key(key) => key.as_ref(),
            _ => None,
        }
    }
}

/// Why a fix of one part did not happen or was not proven.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FixError {
    /// Nothing was written: the part changed after it was judged. The event of that change
    /// is handled on its own.
    #[error("{0}")]
    Changed(String),
    /// Nothing was written, and trying again later may work (throttled, busy, 5xx).
    #[error("{0}")]
    Retry(AwsError),
    /// Nothing was written: the fix is not safe or not possible (says why).
    #[error("{0}")]
    Refused(String),
    /// The write was attempted; the read-back did not prove the fix (or proved damage).
    #[error("{error}")]
    Failed { error: String },
}

/// What a proven fix does to its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixEffect {
    /// Puts the fix's key on the part (a guardrail, a log group, a bucket).
    Keys,
    /// Stops what was making the part (a running job) before the part exists: nothing is
    /// left that holds data, and nothing carries the key; what replaces it is for a person.
    Stops,
    /// Stops what was writing the part, but what it already wrote stays as it is: the part
    /// is still a problem, for a person.
    Contains,
}

/// What a proven fix did to one part.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fixed {
    /// What was done, in words.
    pub detail: String,
    /// What a person still does for the part, as numbered steps: a fix that stops a job
    /// rather than keying it leaves some (run it again, remove what it wrote).
    pub steps: Vec<String>,
}

impl From<String> for Fixed {
    fn from(detail: String) -> Self {
        Fixed {
            detail,
            steps: Vec::new(),
        }
    }
}

/// One part to fix, and the key to put on it.
#[derive(Debug, Clone, Copy)]
pub struct Fix<'a> {
    /// Index into the observed resource's protections.
    pub part: usize,
    pub key: &'a KeyInfo,
    /// The settings of the resource's account (what else a fix may do, e.g. resubmit a job).
    pub settings: &'a AccountSettings,
    /// The event the fix answers: what a fix creates is named after it, so that a retry of
    /// the event finds what an earlier run created instead of creating it twice.
    pub event_id: &'a str,
}

pub trait Reactor: Send + Sync {
    /// The raw description of the resource, as its Get/Describe API returned it.
    type State: Send + Sync;

    /// The function's name (`guardrails`, `model-jobs`, ...): its crate, its role and the
    /// SDK app name `cmk-guard-<FUNCTION>` its calls carry.
    const FUNCTION: &'static str;
    /// `check` in findings, e.g. `bedrock-guardrail-cmk`.
    const CHECK: &'static str;
    /// CloudFormation type of the resource, e.g. `AWS::Bedrock::Guardrail`.
    const RESOURCE_TYPE: &'static str;
    /// How reasons name the resource, e.g. "the guardrail".
    const NOUN: &'static str;
    /// The events this reactor reacts to.
    const EVENTS: &'static [IntakeEventSpec];
    /// What a proven fix does to its part. Default: puts the key on it.
    const FIX_EFFECT: FixEffect = FixEffect::Keys;

    /// Where the resource lives. Default: the account and Region of the call, in the
    /// partition the function runs in.
    fn locate(&self, trigger: &Trigger, home_partition: &str) -> Location {
        Location {
            account: trigger.call.account.clone(),
            region: trigger.call.region.clone(),
            partition: home_partition.to_owned(),
        }
    }

    /// The resource's ARN (or the guard's stable identifier for it) when the event alone is
    /// enough to know it, so that its ledger record is read beside the resource. Default: the
    /// named id, if it is an ARN.
    fn resource_arn(&self, named: &Named, _at: &Location) -> Option<String> {
        match named {
            Named::Resource(id) if id.starts_with("arn:") => Some(id.clone()),
            _ => None,
        }
    }

    /// Reads the resource and every part of it that is encrypted. A part that cannot be read
    /// is a [`Subject::Unreadable`] protection; `Err` is for the resource itself.
    fn gather(
        &self,
        scope: &Scope,
        named: &Named,
    ) -> impl Future<Output = Result<Found<Self::State>, AwsError>> + Send;

    /// Whether `protection` is the part an event names (by kind and id as the record gives
    /// it). Default: the same kind and resource name.
    fn is_part(&self, protection: &Protection, kind: &str, id: &str) -> bool {
        protection.kind == kind && protection.resource.as_deref() == Some(id)
    }

    /// What `remediate` would do, in words (dry-run says exactly this).
    fn describe_fix(&self, observed: &Observed<Self::State>, fixes: &[Fix<'_>]) -> String;

    /// What a person does for the named parts, as short numbered steps (console, CLI).
    fn manual_steps(&self, observed: &Observed<Self::State>, parts: &[&Protection]) -> Vec<String>;

    /// Before a fix: whether the service that uses the part can use `key` at all (a key
    /// policy that does not let CloudWatch Logs or Bedrock use the key would break delivery).
    /// `Err` says why not, and what a person must change. Default: nothing to check.
    fn preflight(
        &self,
        _scope: &Scope,
        _observed: &Observed<Self::State>,
        _part: usize,
        _key: &KeyInfo,
    ) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }

    /// Finishes what an earlier run of this event began and did not live to finish: it died
    /// while fixing, putting `planned` (key ARNs, comma-separated) in place. Called before
    /// the resource is judged, when fixing is allowed. `None`: nothing to finish (the default;
    /// a fix that is one write needs none: the resource is judged as it is and fixed again if
    /// need be). A fix in two steps (stop a job, then submit it again) finishes the second.
    fn resume(
        &self,
        _scope: &Scope,
        _named: &Named,
        _planned: &str,
        _settings: &AccountSettings,
        _event_id: &str,
    ) -> impl Future<Output = Option<Result<Fixed, FixError>>> + Send {
        async { None }
    }

    /// Puts each fix's key on its part: re-reads first and writes nothing to a part that
    /// changed since `observed`, writes back only what it re-read, then reads back and proves
    /// that nothing but the key (and server-managed fields) changed — within `deadline`.
    /// One result per fix, in order: what was done, or why not.
    fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        fixes: &[Fix<'_>],
        deadline: Instant,
    ) -> impl Future<Output = Vec<Result<Fixed, FixError>>> + Send;
}
