//! SNS rendering and publishing. One publish per finding worth telling, with
//! `MessageStructure=json` so each protocol gets its own form:
//! `default`/`email` readable text, `https` a chat custom notification, `sqs`/`lambda` the
//! Finding JSON. Message attributes let subscribers filter without parsing the body.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;

use crate::finding::{ActionKind, Finding, Status};

/// A rendered SNS message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    /// The `MessageStructure=json` body.
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// "AWS::Bedrock::Guardrail" -> "Bedrock guardrail".
fn noun(finding: &Finding) -> String {
    let mut parts = finding.resource.kind.split("::").skip(1);
    match (parts.next(), parts.next()) {
        (Some(service), Some(kind)) => format!("{service} {}", kind.to_lowercase()),
        _ => finding.resource.kind.clone(),
    }
}

fn display_name(finding: &Finding) -> String {
    finding
        .resource
        .name
        .clone()
        .or_else(|| finding.resource.arn.clone())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

/// One line that says what happened.
pub fn title(finding: &Finding) -> String {
    let what = format!("{} \"{}\"", noun(finding), display_name(finding));
    match (finding.status, finding.action.kind) {
        (_, ActionKind::Remediated) => format!("Fixed: {what} now uses a customer-managed KMS key"),
        (_, ActionKind::WouldRemediate) => format!("Dry run: {what} would be re-encrypted with a customer-managed KMS key"),
        (_, ActionKind::Failed) => format!("Remediation FAILED: {what} is still not encrypted with an allowed customer-managed KMS key"),
        (Status::Error, _) => format!("Could not verify the encryption of {what}"),
        (Status::NonCompliant, _) => format!("{what} is not encrypted with an allowed customer-managed KMS key"),
        (Status::Compliant, _) => format!("{what} is encrypted with an allowed customer-managed KMS key"),
        (Status::Ignored, _) => format!("Ignored: {}", finding.trigger.event_name),
    }
}

fn key_line(finding: &Finding) -> String {
    match &finding.key {
        None => "none named (Bedrock uses a key AWS owns)".to_owned(),
        Some(k) => {
            let arn = k.arn.as_deref().unwrap_or(&k.reference);
            match (&k.manager, &k.state) {
                (Some(m), Some(s)) => format!(
                    "{arn} (manager {}, state {s})",
                    serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                _ => arn.to_owned(),
            }
        }
    }
}

fn action_line(finding: &Finding) -> String {
    let detail = finding.action.detail.as_deref().unwrap_or("");
    match finding.action.kind {
        ActionKind::Remediated => format!("Done: {detail}"),
        ActionKind::WouldRemediate => format!("Would do (dry-run; nothing was changed): {detail}"),
        ActionKind::Failed => format!(
            "The automatic fix failed: {}. To fix by hand: {detail}",
            finding.action.error.as_deref().unwrap_or("unknown error")
        ),
        ActionKind::Alerted | ActionKind::None => format!("To fix: {detail}"),
    }
}

/// The text for e-mail and anything without its own rendering.
pub fn text(finding: &Finding) -> String {
    let t = &finding.trigger;
    let mut lines = vec![
        format!(
            "{} [{} / {}]",
            title(finding),
            finding.status.as_str(),
            finding.severity.as_str()
        ),
        String::new(),
        format!(
            "Resource:  {} {}",
            noun(finding),
            finding.resource.arn.as_deref().unwrap_or("(unknown ARN)")
        ),
        format!(
            "Account:   {}   Region: {}",
            finding.account, finding.region
        ),
        format!(
            "Changed by {} with {} at {} (CloudTrail event {})",
            t.actor, t.event_name, t.event_time, t.event_id
        ),
        format!("KMS key:   {}", key_line(finding)),
        format!("Why:       {}", finding.reason),
        String::new(),
        action_line(finding),
        String::new(),
    ];
    let mode = finding.mode.map(|m| m.as_str()).unwrap_or("n/a");
    lines.push(format!(
        "Mode {mode} · check {} · {}",
        finding.check, finding.schema
    ));
    lines.join("\n")
}

/// The chat custom-notification form (AWS Chatbot / Amazon Q Developer in chat applications).
pub fn chat(finding: &Finding) -> serde_json::Value {
    let t = &finding.trigger;
    let arn = finding.resource.arn.clone().unwrap_or_default();
    let description = format!(
        "*Resource:* `{arn}`\n*Account / Region:* {} / {}\n*Changed by:* `{}` ({} at {})\n*KMS key:* {}\n*Why:* {}",
        finding.account,
        finding.region,
        t.actor,
        t.event_name,
        t.event_time,
        key_line(finding),
        finding.reason
    );
    let mut related = vec![arn.clone()];
    if let Some(key_arn) = finding.key.as_ref().and_then(|k| k.arn.clone()) {
        related.push(key_arn);
    }
    json!({
        "version": "1.0",
        "source": "custom",
        "id": t.event_id,
        "content": {
            "textType": "client-markdown",
            "title": title(finding),
            "description": description,
            "nextSteps": [action_line(finding)],
            "keywords": [finding.status.as_str(), finding.severity.as_str(), finding.account, finding.region],
        },
        "metadata": {
            "threadId": arn,
            "summary": title(finding),
            "eventType": finding.check,
            "relatedResources": related,
            "additionalContext": {
                "account": finding.account,
                "region": finding.region,
                "action": finding.action.kind.as_str(),
                "eventId": t.event_id,
            },
        },
    })
}

/// SNS subjects: at most 100 printable ASCII characters, no line breaks; the name goes last
/// so a cut loses the least.
fn subject(finding: &Finding) -> String {
    let what = match (finding.status, finding.action.kind) {
        (_, ActionKind::Remediated) => "Fixed",
        (_, ActionKind::WouldRemediate) => "Dry run, would fix",
        (_, ActionKind::Failed) => "Fix FAILED",
        (Status::Error, _) => "Cannot verify",
        (Status::NonCompliant, _) => "No allowed CMK",
        (Status::Compliant, _) => "Compliant",
        (Status::Ignored, _) => "Ignored",
    };
    let raw = format!(
        "[cmk-guard] {what}: {} \"{}\"",
        noun(finding),
        display_name(finding)
    );
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= 100 {
        clean
    } else {
        format!("{}...", &clean[..97])
    }
}

pub fn render(finding: &Finding) -> Message {
    let text = text(finding);
    let finding_json = finding.to_json();
    let body = json!({
        "default": text,
        "email": text,
        "https": chat(finding).to_string(),
        "sqs": finding_json,
        "lambda": finding_json,
    });
    Message {
        subject: subject(finding),
        body: body.to_string(),
        attributes: vec![
            ("check", finding.check.clone()),
            ("status", finding.status.as_str().to_owned()),
            ("severity", finding.severity.as_str().to_owned()),
            ("account", finding.account.clone()),
            ("region", finding.region.clone()),
            ("action", finding.action.kind.as_str().to_owned()),
        ],
    }
}

/// Publishes one finding; returns the SNS message id.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    finding: &Finding,
) -> Result<String, String> {
    let message = render(finding);
    let mut request = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(message.subject)
        .message_structure("json")
        .message(message.body);
    for (name, value) in message.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| format!("message attribute {name}: {e}"))?;
        request = request.message_attributes(name, attribute);
    }
    let out = request
        .send()
        .await
        .map_err(|e| format!("sns:Publish to {topic_arn}: {}", DisplayErrorContext(&e)))?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}
