//! The Finding: one record per handled event (schema `bedrock-cmk-guard/finding@2`),
//! published to SNS, logged as one JSON line, returned by the Lambda, printed by the CLI.
//!
//! `finding@2` adds `protections` (one entry per encrypted part of the resource) and
//! `previousStatus`; `key` stays, as the first protection's key, for `finding@1` readers.

use serde::{Deserialize, Serialize};

use crate::intake::Call;
use crate::keys::{KeyEvidence, KeyInfo, KeyManager};
use crate::settings::Mode;

pub const SCHEMA: &str = "bedrock-cmk-guard/finding@2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub schema: String,
    pub check: String,
    pub status: Status,
    pub severity: Severity,
    pub account: String,
    pub region: String,
    pub resource: Resource,
    /// Every encrypted part of the resource, each judged on its own; the resource's status is
    /// the worst of theirs. Empty when the resource could not be read.
    pub protections: Vec<ProtectionSummary>,
    /// The first protection's key (`null`: AWS-owned, or never read), for `finding@1` readers.
    pub key: Option<KeySummary>,
    pub reason: String,
    pub trigger: TriggerSummary,
    /// `null` only for IGNORED findings, which are decided before the settings are read.
    pub mode: Option<Mode>,
    pub action: Action,
    /// The status last published for this resource (from the ledger), or `null`.
    pub previous_status: Option<Status>,
}

/// One encrypted part of a resource: a guardrail's DRAFT or a published version, a logging
/// destination, a job's output model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionSummary {
    pub name: String,
    /// The key found on it; `null` means a key AWS owns (or the part could not be read).
    pub key: Option<KeySummary>,
    pub verdict: Status,
    pub severity: Severity,
    pub reason: String,
    /// Whether the guard can fix this part by itself.
    pub fixable: bool,
    /// What happened to this part: `remediated` or `would_remediate` only for the parts
    /// really (or, in dry-run, really would be) changed; `alerted` for the parts that need a person.
    pub action: ActionKind,
    /// After a fix: the key the read-back proved.
    pub key_after: Option<KeySummary>,
    /// How it fails, when it is NON_COMPLIANT (`aws_owned`, `absent`, `pending_deletion`, ...);
    /// `null` otherwise. Absent from findings written before it existed.
    #[serde(default)]
    pub problem: Option<KeyProblem>,
}

/// Each way a part can fail the check; each has its own reason and severity
/// (`verdict.rs`). Serialized as `aws_owned`, `absent`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyProblem {
    AwsOwned,
    AwsManaged,
    Disabled,
    PendingDeletion,
    PendingImport,
    /// Unavailable, Creating, Updating, PendingReplicaDeletion, ...: not usable now.
    NotEnabled,
    /// Asymmetric or HMAC: cannot encrypt data at all.
    CannotEncrypt,
    /// Nothing encrypts it with a key of any kind (a bucket without a default-encryption rule).
    Unencrypted,
    /// What should be protected is not there: a destination that does not exist, logging
    /// switched off.
    Absent,
    NotFound,
    ForeignAccount,
    ForeignRegion,
    NotAllowed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Compliant,
    NonCompliant,
    Error,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// CloudFormation resource type, e.g. `AWS::Bedrock::Guardrail`.
    #[serde(rename = "type")]
    pub kind: String,
    pub arn: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySummary {
    /// The key as the resource names it.
    #[serde(rename = "ref")]
    pub reference: String,
    pub arn: Option<String>,
    pub manager: Option<KeyManager>,
    pub state: Option<String>,
    pub account: Option<String>,
}

impl KeySummary {
    pub fn from_info(reference: &str, info: &KeyInfo) -> Self {
        KeySummary {
            reference: reference.to_owned(),
            arn: Some(info.arn.clone()),
            manager: Some(info.manager),
            state: Some(info.state.clone()),
            account: Some(info.account.clone()),
        }
    }

    pub fn from_evidence(evidence: &KeyEvidence) -> Option<Self> {
        let reference = evidence.reference()?.as_str().to_owned();
        Some(match evidence {
            KeyEvidence::Described { info, .. } => KeySummary::from_info(&reference, info),
            _ => KeySummary {
                reference,
                arn: None,
                manager: None,
                state: None,
                account: evidence
                    .reference()
                    .and_then(|r| r.account())
                    .map(str::to_owned),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSummary {
    pub event_name: String,
    pub event_id: String,
    pub event_time: String,
    pub actor: String,
}

impl From<&Call> for TriggerSummary {
    fn from(call: &Call) -> Self {
        TriggerSummary {
            event_name: call.event_name.clone(),
            event_id: call.event_id.clone(),
            event_time: call.event_time.clone(),
            actor: call.actor.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// What was done, or why nothing was, in a sentence or two.
    pub detail: Option<String>,
    pub error: Option<String>,
    /// What a person still has to do, as short numbered steps (console, CLI); empty when
    /// nothing is left to do.
    #[serde(default)]
    pub steps: Vec<String>,
}

impl Action {
    pub fn none(detail: Option<String>) -> Self {
        Action::new(ActionKind::None, detail)
    }

    pub fn new(kind: ActionKind, detail: Option<String>) -> Self {
        Action {
            kind,
            detail,
            error: None,
            steps: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    None,
    Alerted,
    Remediated,
    WouldRemediate,
    Failed,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::None => "none",
            ActionKind::Alerted => "alerted",
            ActionKind::Remediated => "remediated",
            ActionKind::WouldRemediate => "would_remediate",
            ActionKind::Failed => "failed",
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "COMPLIANT",
            Status::NonCompliant => "NON_COMPLIANT",
            Status::Error => "ERROR",
            Status::Ignored => "IGNORED",
        }
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl Status {
    /// How bad a status is, for "the worst of the protections'": a proven problem outranks
    /// one that could not be verified.
    pub fn rank(self) -> u8 {
        match self {
            Status::Ignored => 0,
            Status::Compliant => 1,
            Status::Error => 2,
            Status::NonCompliant => 3,
        }
    }

    pub fn is_problem(self) -> bool {
        matches!(self, Status::NonCompliant | Status::Error)
    }
}

impl Finding {
    pub fn to_json(&self) -> String {
        // A struct of strings and enums: serialisation cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"finding not serialisable: {e}\"}}"))
    }
}
