//! The judge: a pure function from key evidence and account settings to a verdict.

use crate::finding::{Severity, Status};
// Part of the Finding contract (each part says how it fails); judged here.
pub use crate::finding::KeyProblem;
use crate::keys::{KeyEvidence, KeyInfo, KeyManager, KeyRef};
use crate::settings::AccountSettings;

/// Where the resource being judged lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub account: String,
    pub region: String,
    /// `aws`, `aws-cn`, `aws-us-gov`, ...: from the resource's ARN or the function's own.
    pub partition: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Compliant {
        reason: String,
    },
    NonCompliant {
        problem: KeyProblem,
        reason: String,
    },
    /// Nothing can be concluded: evidence is missing. Never read as compliant.
    Error {
        reason: String,
    },
}

impl KeyProblem {
    pub fn severity(self) -> Severity {
        match self {
            // The data becomes unreadable for good on the deletion date.
            KeyProblem::PendingDeletion => Severity::Critical,
            KeyProblem::Disabled
            | KeyProblem::PendingImport
            | KeyProblem::NotEnabled
            | KeyProblem::CannotEncrypt
            | KeyProblem::Unencrypted
            | KeyProblem::Absent
            | KeyProblem::NotFound => Severity::High,
            KeyProblem::AwsOwned
            | KeyProblem::AwsManaged
            | KeyProblem::ForeignAccount
            | KeyProblem::ForeignRegion
            | KeyProblem::NotAllowed => Severity::Medium,
        }
    }
}

impl Verdict {
    pub fn severity(&self) -> Severity {
        match self {
            Verdict::Compliant { .. } => Severity::Info,
            Verdict::NonCompliant { problem, .. } => problem.severity(),
            Verdict::Error { .. } => Severity::High,
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Verdict::Compliant { .. } => Status::Compliant,
            Verdict::NonCompliant { .. } => Status::NonCompliant,
            Verdict::Error { .. } => Status::Error,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Compliant { reason }
            | Verdict::NonCompliant { reason, .. }
            | Verdict::Error { reason } => reason,
        }
    }
    pub fn problem(&self) -> Option<KeyProblem> {
        match self {
            Verdict::NonCompliant { problem, .. } => Some(*problem),
            _ => None,
        }
    }
}

/// Judges the key that protects a resource (`noun` names it in the reason: "the guardrail").
pub fn judge_key(
    evidence: &KeyEvidence,
    settings: &AccountSettings,
    at: &Location,
    noun: &str,
) -> Verdict {
    let non_compliant = |problem, reason: String| Verdict::NonCompliant { problem, reason };
    let info = match evidence {
        KeyEvidence::AwsOwned => {
            return non_compliant(
                KeyProblem::AwsOwned,
                format!("{noun} names no KMS key, so it is encrypted with a key AWS owns, not a customer-managed key"),
            )
        }
        KeyEvidence::NotFound { reference } => {
            return non_compliant(
                KeyProblem::NotFound,
                format!("{noun} is encrypted with KMS key {reference}, which does not exist (DescribeKey: NotFound)"),
            )
        }
        KeyEvidence::Unverified { reference, error, .. } => {
            return Verdict::Error {
                reason: format!("could not verify KMS key {reference} of {noun}: {error}"),
            }
        }
        KeyEvidence::Described { info, .. } => info,
    };
    let key = &info.arn;
    if info.manager == KeyManager::Aws {
        return non_compliant(
            KeyProblem::AwsManaged,
            format!(
                "{noun} is encrypted with {key}, an AWS-managed key, not a customer-managed key"
            ),
        );
    }
    match info.state.as_str() {
        "Enabled" => {}
        "Disabled" => {
            return non_compliant(
                KeyProblem::Disabled,
                format!("{noun} is encrypted with customer-managed key {key}, which is disabled: nothing encrypted with it can be read until it is enabled"),
            )
        }
        "PendingDeletion" | "PendingReplicaDeletion" => {
            let when = info.deletion_date.as_deref().map(|d| format!(" on {d}")).unwrap_or_default();
            return non_compliant(
                KeyProblem::PendingDeletion,
                format!("{noun} is encrypted with customer-managed key {key}, which is scheduled for deletion{when}: after that its data is lost for good"),
            );
        }
        "PendingImport" => {
            return non_compliant(
                KeyProblem::PendingImport,
                format!("{noun} is encrypted with customer-managed key {key}, whose key material has not been imported: the key cannot be used"),
            )
        }
        other => {
            return non_compliant(
                KeyProblem::NotEnabled,
                format!("{noun} is encrypted with customer-managed key {key}, which is {other}, not Enabled"),
            )
        }
    }
    match info.can_encrypt() {
        Some(true) => {}
        Some(false) => {
            return non_compliant(
                KeyProblem::CannotEncrypt,
                format!(
                    "{noun} names customer-managed key {key}, a {} key for {}, which cannot encrypt data: Bedrock needs a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)",
                    info.spec.as_deref().unwrap_or("?"),
                    info.usage.as_deref().unwrap_or("?")
                ),
            )
        }
        None => {
            return Verdict::Error {
                reason: format!("could not verify KMS key {key} of {noun}: DescribeKey did not say its KeySpec and KeyUsage"),
            }
        }
    }
    if info.account != at.account && !settings.allowed_key_accounts.contains(&info.account) {
        return non_compliant(
            KeyProblem::ForeignAccount,
            format!(
                "{noun} is encrypted with customer-managed key {key} of account {}, which is neither its own account {} nor in allowedKeyAccounts",
                info.account, at.account
            ),
        );
    }
    if info.region != at.region {
        return non_compliant(
            KeyProblem::ForeignRegion,
            format!(
                "{noun} is in {} but its key {key} is in {}",
                at.region, info.region
            ),
        );
    }
    if !settings.allowed_keys.is_empty() && !settings.allowed_keys.iter().any(|k| names(k, info)) {
        return non_compliant(
            KeyProblem::NotAllowed,
            format!("{noun} is encrypted with customer-managed key {key}, which is not on the account's allowedKeys list"),
        );
    }
    Verdict::Compliant {
        reason: format!("{noun} is encrypted with customer-managed key {key} (Enabled, allowed)"),
    }
}

/// Whether an allow-list entry names this key.
fn names(allowed: &KeyRef, info: &KeyInfo) -> bool {
    match allowed {
        KeyRef::KeyArn(arn) => arn.full == info.arn,
        KeyRef::Id(id) | KeyRef::MultiRegionId(id) => *id == info.key_id,
        KeyRef::AliasName(_) | KeyRef::AliasArn(_) => false,
    }
}
