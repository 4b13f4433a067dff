//! What the Bedrock job reactors share: ARNs whose resource part holds colons, a job's status
//! read as running or ended, and a part judged from the key member a Get answer has (or
//! lacks: a job created without a key has no key member at all). How a job is fixed (stopped,
//! and submitted again) is in [`crate::job_fix`].

use std::error::Error;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;

use crate::aws::AwsError;
use crate::intake::Trigger;
use crate::keys::KeyRef;
use crate::reactor::Subject;
use crate::verdict::Location;

/// An ARN split at its first five colons: `arn:partition:service:region:account:resource`.
/// A Bedrock job's or model's resource part embeds the base model id, colons included
/// (`model-customization-job/cohere.command-text-v14:7:4k/q4ad8z8tioq8`), so an ARN is never
/// parsed by counting its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> ResourceArn<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        (!partition.is_empty() && !service.is_empty() && !resource.is_empty()).then_some(
            ResourceArn {
                partition,
                service,
                region,
                account,
                resource,
            },
        )
    }

    /// The resource type: what comes before the first `/` (`model-customization-job`).
    pub fn resource_type(&self) -> &'a str {
        self.resource.split('/').next().unwrap_or(self.resource)
    }
}

/// Where an ARN-named job lives, whatever the envelope says; the envelope's account and
/// Region when the event names no ARN.
pub fn located(trigger: &Trigger, home_partition: &str) -> Location {
    match trigger.resource_id().and_then(ResourceArn::parse) {
        Some(arn) if !arn.account.is_empty() && !arn.region.is_empty() => Location {
            account: arn.account.to_owned(),
            region: arn.region.to_owned(),
            partition: arn.partition.to_owned(),
        },
        _ => Location {
            account: trigger.call.account.clone(),
            region: trigger.call.region.clone(),
            partition: home_partition.to_owned(),
        },
    }
}

/// A failed Get: the job or model does not exist, or the call failed (sorted).
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Gone,
    Failed(AwsError),
}

impl Read {
    pub fn of<E>(call: &'static str, e: &SdkError<E, HttpResponse>) -> Read
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        match AwsError::code_of(e) {
            Some("ResourceNotFoundException") => Read::Gone,
            _ => Read::Failed(AwsError::from_sdk(call, e)),
        }
    }
}

/// Where a job is in its life, as far as a fix is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Still running (or about to): it can be stopped, and its output does not exist yet.
    Running,
    /// Being stopped by someone already.
    Stopping,
    /// Over (`Completed`, `Failed`, `Stopped`, ...): nothing can stop it any more.
    Ended(String),
}

/// The phase of a job status as the Bedrock APIs spell them (each job kind has its own
/// enum; these cover all of them). An unknown status is treated as ended: the guard then
/// never claims it can stop the job.
pub fn phase(status: &str) -> Phase {
    match status {
        "InProgress" | "Submitted" | "Validating" | "Scheduled" => Phase::Running,
        "Stopping" => Phase::Stopping,
        other => Phase::Ended(other.to_owned()),
    }
}

/// Whether a job is being stopped or was stopped: what a Stop leaves (a job that completed
/// or failed was not stopped).
pub fn stopped_by_now(status: &str) -> bool {
    matches!(status, "Stopping" | "Stopped")
}

/// A string member of a raw answer, by JSON pointer (`/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId`).
pub fn text<'a>(raw: &'a Value, pointer: &str) -> Option<&'a str> {
    raw.pointer(pointer).and_then(Value::as_str)
}

/// What protects a part whose key is the member at `pointer` of the answer of `call`: no
/// member means a key AWS owns; a member that is not a key reference cannot be judged.
pub fn key_subject(raw: &Value, pointer: &str, call: &'static str) -> Subject {
    match raw.pointer(pointer) {
        None | Some(Value::Null) => Subject::Key(None),
        Some(Value::String(key)) => match KeyRef::parse(key) {
            Ok(key) => Subject::Key(Some(key)),
            Err(e) => Subject::Unreadable(AwsError::new(call, format!("{pointer}: {e}"), false)),
        },
        Some(other) => Subject::Unreadable(AwsError::new(
            call,
            format!("{pointer} is not a string: {other}"),
            false,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_arn_is_split_at_its_first_five_colons() {
        let arn = "arn:aws:bedrock:us-east-1:111122223333:model-customization-job/cohere.command-text-v14:7:4k/q4ad8z8tioq8";
        let parsed = ResourceArn::parse(arn).expect("an ARN");
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(parsed.account, "111122223333");
        assert_eq!(
            parsed.resource,
            "model-customization-job/cohere.command-text-v14:7:4k/q4ad8z8tioq8"
        );
        assert_eq!(parsed.resource_type(), "model-customization-job");
        let foundation = ResourceArn::parse(
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1:0:8k",
        )
        .expect("an ARN without account");
        assert_eq!(foundation.account, "");
        assert_eq!(foundation.resource_type(), "foundation-model");
        for bad in [
            "",
            "arn:aws:bedrock",
            "job/x",
            "arn::bedrock:r:a:x",
            "arn:aws:bedrock:r:a:",
        ] {
            assert_eq!(ResourceArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_are_running_stopping_or_ended() {
        for running in ["InProgress", "Submitted", "Validating", "Scheduled"] {
            assert_eq!(phase(running), Phase::Running);
        }
        assert_eq!(phase("Stopping"), Phase::Stopping);
        for ended in [
            "Completed",
            "Failed",
            "Stopped",
            "PartiallyCompleted",
            "Expired",
            "Deleting",
            "Future",
        ] {
            assert_eq!(phase(ended), Phase::Ended(ended.to_owned()));
        }
    }

    #[test]
    fn the_key_member_present_absent_or_malformed() {
        let call = "bedrock:GetEvaluationJob";
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            key_subject(&json!({"k": key}), "/k", call),
            Subject::Key(Some(KeyRef::parse(key).unwrap()))
        );
        assert_eq!(key_subject(&json!({}), "/k", call), Subject::Key(None));
        assert!(matches!(
            key_subject(&json!({"k": "not a key"}), "/k", call),
            Subject::Unreadable(_)
        ));
        assert!(matches!(
            key_subject(&json!({"k": 7}), "/k", call),
            Subject::Unreadable(_)
        ));
    }
}
