//! The Reactor trait: the one shape every resource family has (Cloud Custodian's resource /
//! filter / action, here gather / judge / remediate). A new reactor fills in these items;
//! the [`crate::pipeline`] does everything else the same way for all of them.

use std::future::Future;

use crate::clients::Scope;
use crate::finding::Resource;
use crate::intake::{EventSpec as IntakeEventSpec, Trigger};
use crate::keys::{KeyInfo, KeyRef};
use crate::verdict::Location;

pub use crate::intake::EventSpec;

/// A resource as it is now, read from its own API (never from the event).
#[derive(Debug, Clone)]
pub struct Observed<S> {
    pub resource: Resource,
    /// The key the resource names; `None` means a key AWS owns.
    pub key: Option<KeyRef>,
    /// The full description, kept for the remediation (which must not lose any of it).
    pub state: S,
}

/// A read that failed: the finding says what could not be verified.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{call} failed: {message}")]
pub struct GatherError {
    pub call: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RemediationError(pub String);

pub trait Reactor: Send + Sync {
    /// The raw description of the resource, as its Get/Describe API returned it.
    type State: Send + Sync;

    /// `check` in findings, e.g. `bedrock-guardrail-cmk`.
    const CHECK: &'static str;
    /// CloudFormation type of the resource, e.g. `AWS::Bedrock::Guardrail`.
    const RESOURCE_TYPE: &'static str;
    /// How reasons name the resource, e.g. "the guardrail".
    const NOUN: &'static str;
    /// The events this reactor reacts to.
    const EVENTS: &'static [IntakeEventSpec];

    /// Where the resource lives. Default: the account and Region of the call.
    fn locate(&self, trigger: &Trigger) -> Location {
        Location {
            account: trigger.call.account.clone(),
            region: trigger.call.region.clone(),
        }
    }

    /// Reads the resource. `Ok(None)`: it no longer exists.
    fn gather(
        &self,
        scope: &Scope,
        resource_id: &str,
    ) -> impl Future<Output = Result<Option<Observed<Self::State>>, GatherError>> + Send;

    /// Why no automatic fix is possible for this resource, if that is so.
    fn cannot_remediate(&self, _observed: &Observed<Self::State>) -> Option<String> {
        None
    }

    /// What `remediate` would do with `key`, in words (dry-run says exactly this).
    fn describe_fix(&self, observed: &Observed<Self::State>, key: &KeyInfo) -> String;

    /// The fix a person applies by hand (console and CLI steps).
    fn manual_fix(&self, observed: &Observed<Self::State>) -> String;

    /// Puts `key` in place, reads the resource back, and proves the fix took.
    /// Returns what was done, in words.
    fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        key: &KeyInfo,
    ) -> impl Future<Output = Result<String, RemediationError>> + Send;
}
