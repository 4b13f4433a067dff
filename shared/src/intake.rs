//! Intake: one parse of an EventBridge event (or a bare CloudTrail record) into a [`Trigger`].
//!
//! Real records are untidy: `managementEvent`, `readOnly` or `recipientAccountId` may be
//! missing, `requestParameters` may be `null`, values may read `HIDDEN_DUE_TO_SECURITY_REASONS`,
//! old `eventVersion`s lack newer keys. We read only what we need and tolerate the rest, but
//! what we need we require, with an error that names it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::keys::KeyRef;

/// The EventBridge `detail-type` of CloudTrail management events.
pub const API_CALL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// What CloudTrail writes in place of a value the service marks sensitive.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IntakeError {
    #[error("the event is neither an EventBridge envelope nor a CloudTrail record: {0}")]
    Shape(String),
    #[error("detail-type is {0:?}; only {API_CALL_DETAIL_TYPE:?} events are handled")]
    DetailType(String),
    #[error("the CloudTrail record has no {0}")]
    Missing(&'static str),
    #[error(
        "{event_source} {event_name} is not an event this reactor handles (handled: {handled})"
    )]
    Unhandled {
        event_source: String,
        event_name: String,
        handled: String,
    },
    #[error("{event_name} names no resource at any of {paths}")]
    NoResource { event_name: String, paths: String },
    #[error("a bare CloudTrail record is not accepted here: the function acts only on events EventBridge delivered (\"detail-type\": {API_CALL_DETAIL_TYPE:?}); the CLI takes bare records")]
    BareRecord,
    #[error("the envelope's source {envelope_source:?} does not match the record's eventSource {event_source:?}")]
    SourceMismatch {
        envelope_source: String,
        event_source: String,
    },
}

/// Whether a bare CloudTrail record (no EventBridge envelope) is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Envelope {
    /// The Lambda path: only what EventBridge delivered. A made-up bare record from any
    /// invoker must not make the guard assume roles in member accounts.
    #[default]
    Required,
    /// The CLI: records copied from CloudTrail's console or S3 are bare.
    Optional,
}

/// The CloudTrail fields we read; everything else is ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudTrailRecord {
    event_name: Option<String>,
    event_source: Option<String>,
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    event_time: Option<String>,
    aws_region: Option<String>,
    recipient_account_id: Option<String>,
    user_identity: Option<UserIdentity>,
    error_code: Option<String>,
    error_message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    arn: Option<String>,
    principal_id: Option<String>,
    invoked_by: Option<String>,
    account_id: Option<String>,
}

/// The call that happened, as every finding reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub event_name: String,
    pub event_source: String,
    /// CloudTrail's `eventID`: stable across EventBridge redeliveries.
    pub event_id: String,
    /// As CloudTrail wrote it; formats vary, so it is reported, never parsed.
    pub event_time: String,
    pub account: String,
    pub region: String,
    /// The caller's ARN, else its principalId, else the service that invoked on its behalf.
    pub actor: String,
}

/// What an event's record names, as [`EventSpec::names`] says where to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// The resource the reactor judges: its id or ARN.
    Resource(String),
    /// A part of that resource (a log group, a bucket): its kind and name as the record gives
    /// it. The reactor judges the resource the part belongs to, if it belongs to one.
    Part { kind: &'static str, id: String },
    /// Nothing: the resource is the account's one in the Region (a logging configuration).
    Account,
}

/// A call this reactor must check: it succeeded and names what it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub call: Call,
    pub named: Named,
    /// The key the caller asked for, if the record shows one. Never evidence: the verdict
    /// uses the key the resource's own API reports. It only lets DescribeKey start at once,
    /// concurrently with the re-read, instead of one round trip later.
    pub key_hint: Option<KeyRef>,
}

impl Trigger {
    /// The id or ARN of the resource, when the record names the resource itself.
    pub fn resource_id(&self) -> Option<&str> {
        match &self.named {
            Named::Resource(id) => Some(id),
            _ => None,
        }
    }
}

/// What intake decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Check(Trigger),
    /// A call that changed nothing (it failed): reported as IGNORED, never acted on.
    Ignored {
        call: Call,
        reason: String,
    },
}

/// One CloudTrail event a reactor handles, and what its record names.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub names: Names,
    /// Where the record may name the KMS key the caller asked for (a prefetch hint only).
    pub key_hint_paths: &'static [&'static str],
}

/// Where an event's record names what it changed: JSON pointers into the record, tried in
/// order (hidden or empty values are skipped).
#[derive(Debug, Clone, Copy)]
pub enum Names {
    /// The resource itself.
    Resource(&'static [&'static str]),
    /// A part of a resource, of this kind (`logs` for a log group, `s3` for a bucket).
    Part {
        kind: &'static str,
        paths: &'static [&'static str],
    },
    /// Nothing: the account's one resource of its kind in the Region.
    Account,
}

impl Names {
    fn paths(&self) -> &'static [&'static str] {
        match self {
            Names::Resource(paths) | Names::Part { paths, .. } => paths,
            Names::Account => &[],
        }
    }
}

/// Parses an event for a reactor that handles `specs`.
pub fn parse(event: &Value, specs: &[EventSpec], rule: Envelope) -> Result<Intake, IntakeError> {
    let (record_value, envelope) = split_envelope(event)?;
    if envelope.is_none() && rule == Envelope::Required {
        return Err(IntakeError::BareRecord);
    }
    let record: CloudTrailRecord = serde_json::from_value(record_value.clone())
        .map_err(|e| IntakeError::Shape(format!("CloudTrail record: {e}")))?;

    let event_name = non_empty(record.event_name).ok_or(IntakeError::Missing("eventName"))?;
    let event_source = non_empty(record.event_source).ok_or(IntakeError::Missing("eventSource"))?;
    // Which reactor an event belongs to is decided first: a record we do not handle is
    // refused by name, whatever else it lacks.
    let Some(spec) = specs
        .iter()
        .find(|s| s.event_name == event_name && s.event_source == event_source)
    else {
        return Err(IntakeError::Unhandled {
            event_source,
            event_name,
            handled: specs
                .iter()
                .map(|s| s.event_name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    // EventBridge names CloudTrail events' source after the service: aws.bedrock for
    // bedrock.amazonaws.com. Anything else was not delivered by a CloudTrail rule.
    if let Some(envelope) = &envelope {
        let expected = format!("aws.{}", event_source.split('.').next().unwrap_or_default());
        if envelope.source != expected {
            return Err(IntakeError::SourceMismatch {
                envelope_source: envelope.source.clone(),
                event_source,
            });
        }
    }
    let event_id = non_empty(record.event_id).ok_or(IntakeError::Missing("eventID"))?;
    let identity = record.user_identity.unwrap_or_default();
    let event_time = non_empty(record.event_time)
        .or_else(|| {
            envelope
                .as_ref()
                .and_then(|e| e.time.map(|t| t.to_rfc3339()))
        })
        .ok_or(IntakeError::Missing("eventTime"))?;
    // The account that owns the resource: EventBridge's `account`, else the recipient;
    // the caller's own account only as a last resort (it differs for cross-account calls).
    let account = envelope
        .as_ref()
        .and_then(|e| non_empty(e.account.clone()))
        .or(non_empty(record.recipient_account_id))
        .or(non_empty(identity.account_id))
        .ok_or(IntakeError::Missing(
            "account (envelope account, recipientAccountId or userIdentity.accountId)",
        ))?;
    let region = envelope
        .as_ref()
        .and_then(|e| non_empty(e.region.clone()))
        .or(non_empty(record.aws_region))
        .ok_or(IntakeError::Missing("awsRegion"))?;
    let actor = non_empty(identity.arn)
        .or(non_empty(identity.principal_id))
        .or(non_empty(identity.invoked_by))
        .unwrap_or_else(|| "unknown".to_owned());

    let call = Call {
        event_name,
        event_source,
        event_id,
        event_time,
        account,
        region,
        actor,
    };

    if let Some(code) = non_empty(record.error_code) {
        let message = non_empty(record.error_message).unwrap_or_default();
        let reason = format!(
            "the call failed ({code}{}) and changed nothing",
            prefixed(&message)
        );
        return Ok(Intake::Ignored { call, reason });
    }

    let named_id = || {
        spec.names
            .paths()
            .iter()
            .filter_map(|p| record_value.pointer(p).and_then(Value::as_str))
            .find(|v| !v.is_empty() && *v != HIDDEN)
            .map(str::to_owned)
            .ok_or_else(|| IntakeError::NoResource {
                event_name: call.event_name.clone(),
                paths: spec.names.paths().join(", "),
            })
    };
    let named = match spec.names {
        Names::Resource(_) => Named::Resource(named_id()?),
        Names::Part { kind, .. } => Named::Part {
            kind,
            id: named_id()?,
        },
        Names::Account => Named::Account,
    };

    let key_hint = spec
        .key_hint_paths
        .iter()
        .filter_map(|p| record_value.pointer(p).and_then(Value::as_str))
        .find_map(|v| KeyRef::parse(v).ok());

    Ok(Intake::Check(Trigger {
        call,
        named,
        key_hint,
    }))
}

/// Which call an event records, `(eventSource, eventName)`, without judging the rest: for
/// choosing the reactor that handles it (the CLI takes any event). `None` when the event is
/// not shaped like one at all; [`parse`] then says why.
pub fn identify(event: &Value) -> Option<(String, String)> {
    let (record, _) = split_envelope(event).ok()?;
    let text = |name| record.get(name).and_then(Value::as_str).map(str::to_owned);
    Some((text("eventSource")?, text("eventName")?))
}

/// Accepts the EventBridge envelope the Lambda receives, or the bare CloudTrail record
/// (what CloudTrail writes to S3, and what most published samples are).
fn split_envelope(event: &Value) -> Result<(&Value, Option<EventBridgeEvent<Value>>), IntakeError> {
    let Some(object) = event.as_object() else {
        return Err(IntakeError::Shape(format!(
            "expected a JSON object, got {}",
            kind_of(event)
        )));
    };
    if object.contains_key("detail-type") {
        let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone())
            .map_err(|e| IntakeError::Shape(format!("EventBridge envelope: {e}")))?;
        if envelope.detail_type != API_CALL_DETAIL_TYPE {
            return Err(IntakeError::DetailType(envelope.detail_type));
        }
        let detail = object
            .get("detail")
            .filter(|d| d.is_object())
            .ok_or(IntakeError::Missing("detail object"))?;
        Ok((detail, Some(envelope)))
    } else if object.contains_key("eventName") {
        Ok((event, None))
    } else {
        Err(IntakeError::Shape(
            "no \"detail-type\" (EventBridge) and no \"eventName\" (CloudTrail)".to_owned(),
        ))
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn prefixed(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
