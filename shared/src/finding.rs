//! The Finding: one record per handled event (schema `bedrock-cmk-guard/finding@1`),
//! published to SNS, logged as one JSON line, returned by the Lambda, printed by the CLI.

use serde::{Deserialize, Serialize};

use crate::intake::Call;
use crate::keys::{KeyEvidence, KeyManager};
use crate::settings::Mode;

pub const SCHEMA: &str = "bedrock-cmk-guard/finding@1";

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
    /// `null` when the resource names no key (AWS-owned) or was never read.
    pub key: Option<KeySummary>,
    pub reason: String,
    pub trigger: TriggerSummary,
    /// `null` only for IGNORED findings, which are decided before the settings are read.
    pub mode: Option<Mode>,
    pub action: Action,
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
    pub fn from_evidence(evidence: &KeyEvidence) -> Option<Self> {
        let reference = evidence.reference()?.as_str().to_owned();
        Some(match evidence {
            KeyEvidence::Described { info, .. } => KeySummary {
                reference,
                arn: Some(info.arn.clone()),
                manager: Some(info.manager),
                state: Some(info.state.clone()),
                account: Some(info.account.clone()),
            },
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
    pub detail: Option<String>,
    pub error: Option<String>,
}

impl Action {
    pub fn none(detail: Option<String>) -> Self {
        Action {
            kind: ActionKind::None,
            detail,
            error: None,
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

impl Finding {
    /// Worth a message: anything not compliant, and anything the guard changed.
    pub fn worth_telling(&self) -> bool {
        self.action.kind != ActionKind::None
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and enums: serialisation cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"finding not serialisable: {e}\"}}"))
    }
}
