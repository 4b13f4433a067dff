//! SNS rendering and publishing. One publish per finding worth telling, with
//! `MessageStructure=json` so each protocol gets its own form:
//! `default`/`email` readable text, `https` a chat custom notification, `sqs`/`lambda` the
//! Finding JSON. Message attributes let subscribers filter without parsing the body.
//!
//! Written for a person woken at 3 a.m.: the title says what happened and what is still open,
//! a fixed key reads "was -> now", and what a person must do comes as short numbered steps.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;

use crate::finding::{ActionKind, Finding, KeyProblem, KeySummary, ProtectionSummary, Status};

/// Parts listed in a message; the rest are counted, and the finding JSON has them all.
const MAX_PARTS_SHOWN: usize = 10;
/// Steps shown in a message; the finding JSON has them all.
const MAX_STEPS_SHOWN: usize = 10;
/// A chat card's description is kept under this many characters (chat apps cut long cards).
const MAX_CHAT_DESCRIPTION: usize = 3500;
/// Resources a chat card links to; the finding JSON has them all.
const MAX_RELATED_RESOURCES: usize = 20;
/// SNS takes 256 KiB per message, attributes and subject included; what the body may use.
pub const MAX_BODY_BYTES: usize = 250 * 1024;
/// The readable text (sent twice: `default` and `email`) is cut beyond this.
const MAX_TEXT_BYTES: usize = 32 * 1024;

/// A rendered SNS message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    /// The `MessageStructure=json` body.
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// "AWS::Bedrock::Guardrail" -> "Bedrock guardrail";
/// "AWS::Bedrock::ModelInvocationLoggingConfiguration" -> "Bedrock model invocation logging
/// configuration".
fn noun(finding: &Finding) -> String {
    let mut parts = finding.resource.kind.split("::").skip(1);
    match (parts.next(), parts.next()) {
        (Some(service), Some(kind)) => format!("{service} {}", words(kind)),
        _ => finding.resource.kind.clone(),
    }
}

/// "ModelInvocationLoggingConfiguration" -> "model invocation logging configuration".
fn words(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn display_name(finding: &Finding) -> String {
    finding
        .resource
        .name
        .clone()
        .or_else(|| finding.resource.arn.clone())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

/// A COMPLIANT finding about a resource last reported as a problem.
pub fn is_resolution(finding: &Finding) -> bool {
    finding.status == Status::Compliant
        && finding.previous_status.is_some_and(Status::is_problem)
        && finding.action.kind == ActionKind::None
}

/// The parts that still need a person after this finding's action.
fn still_open(finding: &Finding) -> Vec<&str> {
    finding
        .protections
        .iter()
        .filter(|p| p.verdict != Status::Compliant && p.action != ActionKind::Remediated)
        .map(|p| p.name.as_str())
        .collect()
}

/// Whether the fix stopped what was writing without a CMK (a job) rather than putting a key
/// on anything: every part it changed carries no key after it.
fn stopped_only(finding: &Finding) -> bool {
    let mut changed = finding
        .protections
        .iter()
        .filter(|p| p.action == ActionKind::Remediated)
        .peekable();
    changed.peek().is_some() && changed.all(|p| p.key_after.is_none())
}

fn changed_parts(finding: &Finding, kind: ActionKind) -> Vec<&str> {
    finding
        .protections
        .iter()
        .filter(|p| p.action == kind)
        .map(|p| p.name.as_str())
        .collect()
}

/// Parts named in a title; the rest are counted (a title is a headline, not the list).
const MAX_PARTS_IN_TITLE: usize = 5;

/// "a, b, c" or "a, b, c, d, e and 12 more".
fn name_list(names: &[&str]) -> String {
    if names.len() <= MAX_PARTS_IN_TITLE {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..MAX_PARTS_IN_TITLE].join(", "),
        names.len() - MAX_PARTS_IN_TITLE
    )
}

/// One line that says what happened, and what is still open after a partial fix.
pub fn title(finding: &Finding) -> String {
    let what = format!("{} \"{}\"", noun(finding), display_name(finding));
    let open = still_open(finding);
    match (finding.status, finding.action.kind) {
        (_, ActionKind::Remediated) if stopped_only(finding) => format!(
            "Stopped: {what}, which ran without an allowed customer-managed KMS key (what is left is below)"
        ),
        (_, ActionKind::Remediated) if open.is_empty() => {
            format!("Fixed: {what} now uses a customer-managed KMS key")
        }
        (_, ActionKind::Remediated) => format!(
            "Partly fixed: {what}: {} now on a customer-managed KMS key; still open: {}",
            name_list(&changed_parts(finding, ActionKind::Remediated)),
            name_list(&open)
        ),
        (_, ActionKind::WouldRemediate) => {
            let would = changed_parts(finding, ActionKind::WouldRemediate);
            let rest: Vec<&str> = open.into_iter().filter(|p| !would.contains(p)).collect();
            let mut t = format!("Dry run: {what} would be fixed automatically");
            if !rest.is_empty() {
                t.push_str(&format!(" ({}); still needs a person: {}", name_list(&would), name_list(&rest)));
            }
            t
        }
        (_, ActionKind::Failed) => format!("Remediation FAILED: {what} is still not encrypted with an allowed customer-managed KMS key"),
        _ if is_resolution(finding) => format!("Resolved: {what} is encrypted with an allowed customer-managed KMS key"),
        (Status::Error, _) => format!("Could not verify the encryption of {what}"),
        (Status::NonCompliant, _) => non_compliant_title(&what, finding),
        (Status::Compliant, _) => format!("{what} is encrypted with an allowed customer-managed KMS key"),
        (Status::Ignored, _) => format!("Ignored: {}", finding.trigger.event_name),
    }
}

/// A problem in words: a part that is off or gone is not "not encrypted", it is missing.
fn non_compliant_title(what: &str, finding: &Finding) -> String {
    const NOT_ON_A_CMK: &str = "not encrypted with an allowed customer-managed KMS key";
    let open = finding
        .protections
        .iter()
        .filter(|p| p.verdict != Status::Compliant && p.action != ActionKind::Remediated);
    let (missing, rest): (Vec<&ProtectionSummary>, Vec<&ProtectionSummary>) =
        open.partition(|p| p.problem == Some(KeyProblem::Absent));
    let names = |parts: &[&ProtectionSummary]| {
        name_list(&parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
    };
    match (missing.is_empty(), rest.is_empty()) {
        (true, _) if finding.protections.len() > 1 => {
            format!("{what}: {} {NOT_ON_A_CMK}", names(&rest))
        }
        (true, _) => format!("{what} is {NOT_ON_A_CMK}"),
        (false, true) => format!("{what}: {} off or missing", names(&missing)),
        (false, false) => format!(
            "{what}: {} off or missing; {} {NOT_ON_A_CMK}",
            names(&missing),
            names(&rest)
        ),
    }
}

/// A part's key in words; a part with nothing on it says why.
fn part_key_text(p: &ProtectionSummary) -> String {
    match (p.problem, &p.key) {
        (Some(KeyProblem::Absent), _) => {
            "nothing to encrypt: it is off or does not exist".to_owned()
        }
        (Some(KeyProblem::Unencrypted), _) => "no encryption configured".to_owned(),
        (_, key) => key_text(key.as_ref()),
    }
}

fn key_text(key: Option<&KeySummary>) -> String {
    match key {
        None => "none named (a key AWS owns)".to_owned(),
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

/// The key of a part, as "was -> now" after a fix.
fn part_key(p: &ProtectionSummary) -> String {
    match &p.key_after {
        Some(after) => format!("was {} -> now {}", part_key_text(p), key_text(Some(after))),
        None => part_key_text(p),
    }
}

fn part_state(p: &ProtectionSummary) -> &'static str {
    match (p.action, p.verdict) {
        (ActionKind::Remediated, _) => "FIXED",
        (ActionKind::WouldRemediate, _) => "would be fixed",
        (ActionKind::Failed, _) => "fix FAILED",
        (_, Status::Compliant) => "ok",
        (_, Status::Error) => "could not verify",
        (_, Status::NonCompliant) if p.fixable => "not compliant",
        (_, Status::NonCompliant) => "not compliant, needs a person",
        (_, Status::Ignored) => "ignored",
    }
}

/// One line per part (at most [`MAX_PARTS_SHOWN`]).
fn part_lines(finding: &Finding) -> Vec<String> {
    let mut lines: Vec<String> = finding
        .protections
        .iter()
        .take(MAX_PARTS_SHOWN)
        .map(|p| format!("{}: {} [{}]", p.name, part_key(p), part_state(p)))
        .collect();
    if finding.protections.len() > MAX_PARTS_SHOWN {
        lines.push(format!(
            "... and {} more parts: the full finding is in the function's log (CloudTrail event {})",
            finding.protections.len() - MAX_PARTS_SHOWN,
            finding.trigger.event_id
        ));
    }
    lines
}

fn action_line(finding: &Finding) -> String {
    let detail = finding.action.detail.as_deref().unwrap_or("");
    match finding.action.kind {
        ActionKind::Remediated => format!("Done: {detail}"),
        ActionKind::WouldRemediate => format!("Would do (dry-run; nothing was changed): {detail}"),
        ActionKind::Failed => format!(
            "The automatic fix failed: {}. {detail}",
            finding.action.error.as_deref().unwrap_or("unknown error")
        ),
        ActionKind::None if is_resolution(finding) => detail.to_owned(),
        ActionKind::Alerted | ActionKind::None => format!("To fix: {detail}"),
    }
}

/// The numbered steps a person follows (at most [`MAX_STEPS_SHOWN`]).
fn numbered_steps(finding: &Finding) -> Vec<String> {
    let steps = &finding.action.steps;
    let mut out: Vec<String> = steps
        .iter()
        .take(MAX_STEPS_SHOWN)
        .enumerate()
        .map(|(i, s)| format!("{}. {s}", i + 1))
        .collect();
    if steps.len() > MAX_STEPS_SHOWN {
        out.push(format!(
            "... {} more steps in the finding JSON",
            steps.len() - MAX_STEPS_SHOWN
        ));
    }
    out
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
    ];
    match finding.protections.as_slice() {
        [] => lines.push(format!("KMS key:   {}", key_text(finding.key.as_ref()))),
        [only] => lines.push(format!("KMS key:   {}", part_key(only))),
        _ => {
            lines.push("KMS keys:".to_owned());
            lines.extend(part_lines(finding).into_iter().map(|l| format!("  - {l}")));
        }
    }
    lines.push(format!("Why:       {}", finding.reason));
    lines.push(String::new());
    lines.push(action_line(finding));
    let steps = numbered_steps(finding);
    if !steps.is_empty() {
        lines.push(String::new());
        lines.push("Steps:".to_owned());
        lines.extend(steps.into_iter().map(|s| format!("  {s}")));
    }
    lines.push(String::new());
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
    let keys = match finding.protections.as_slice() {
        [] => format!("*KMS key:* {}", key_text(finding.key.as_ref())),
        [only] => format!("*KMS key:* {}", part_key(only)),
        _ => format!(
            "*KMS keys:*\n{}",
            part_lines(finding)
                .iter()
                .map(|l| format!("• {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let mut description = format!(
        "*Resource:* `{arn}`\n*Account / Region:* {} / {}\n*Changed by:* `{}` ({} at {})\n{keys}\n*Why:* {}",
        finding.account, finding.region, t.actor, t.event_name, t.event_time, finding.reason
    );
    if description.chars().count() > MAX_CHAT_DESCRIPTION {
        description = description
            .chars()
            .take(MAX_CHAT_DESCRIPTION - 80)
            .collect();
        description.push_str(&format!(
            "… (cut; the full finding is in the function's log, event {})",
            t.event_id
        ));
    }
    let mut next_steps = vec![action_line(finding)];
    next_steps.extend(numbered_steps(finding));
    let mut related = vec![arn.clone()];
    for p in &finding.protections {
        for key in [&p.key, &p.key_after].into_iter().flatten() {
            if let Some(key_arn) = &key.arn {
                if !related.contains(key_arn) && related.len() < MAX_RELATED_RESOURCES {
                    related.push(key_arn.clone());
                }
            }
        }
    }
    json!({
        "version": "1.0",
        "source": "custom",
        "id": t.event_id,
        "content": {
            "textType": "client-markdown",
            "title": title(finding),
            "description": description,
            "nextSteps": next_steps,
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
    let partly = !still_open(finding).is_empty();
    let what = match (finding.status, finding.action.kind) {
        (_, ActionKind::Remediated) if stopped_only(finding) => "Stopped",
        (_, ActionKind::Remediated) if partly => "Partly fixed",
        (_, ActionKind::Remediated) => "Fixed",
        (_, ActionKind::WouldRemediate) => "Dry run, would fix",
        (_, ActionKind::Failed) => "Fix FAILED",
        _ if is_resolution(finding) => "Resolved",
        (Status::Error, _) => "Cannot verify",
        (Status::NonCompliant, _)
            if finding
                .protections
                .iter()
                .any(|p| p.problem == Some(KeyProblem::Absent)) =>
        {
            "Off or missing"
        }
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

/// Where the whole finding is when a message had to be shortened.
fn full_finding_pointer(finding: &Finding) -> String {
    format!(
        "shortened to fit SNS's 256 KB message limit; the whole finding is in the function's log (the \"finding\" line of event {})",
        finding.trigger.event_id
    )
}

/// The text cut at `MAX_TEXT_BYTES` (on a character boundary), with the pointer.
fn fit_text(text: String, finding: &Finding) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES - 512;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n\n[…] {}", &text[..end], full_finding_pointer(finding))
}

/// The finding JSON within `budget` bytes: while it is too large, the largest array is halved
/// or, when no array can shrink, the longest string is; the top level then says so and where
/// the whole finding is. Never dropped: what is left is still a finding of the same schema.
fn fit_finding_json(finding: &Finding, budget: usize) -> String {
    let whole = finding.to_json();
    if whole.len() <= budget {
        return whole;
    }
    let Ok(mut value) = serde_json::to_value(finding) else {
        return whole;
    };
    while serde_json::to_string(&value).map_or(0, |s| s.len()) > budget {
        if !shrink_largest(&mut value) {
            break;
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "truncated".to_owned(),
            serde_json::Value::String(full_finding_pointer(finding)),
        );
    }
    value.to_string()
}

/// Halves whichever is larger: the largest array of more than one item, or the longest
/// prose string (identifiers such as ARNs are never cut: a cut ARN names something else).
/// False when nothing can shrink.
fn shrink_largest(value: &mut serde_json::Value) -> bool {
    let mut array: Option<(usize, String)> = None;
    let mut string: Option<(usize, String)> = None;
    find_largest(value, String::new(), &mut array, &mut string);
    let array_first = match (&array, &string) {
        (Some((a, _)), Some((s, _))) => a >= s,
        (found, _) => found.is_some(),
    };
    let path = if array_first { array } else { string };
    match path.and_then(|(_, path)| value.pointer_mut(&path)) {
        Some(serde_json::Value::Array(items)) => {
            let keep = (items.len() / 2).max(1);
            items.truncate(keep);
            true
        }
        Some(serde_json::Value::String(text)) => {
            let keep = text.chars().count() / 2;
            *text = text.chars().take(keep).chain("…".chars()).collect();
            true
        }
        _ => false,
    }
}

/// The JSON pointers of the largest shrinkable array and the longest long string.
fn find_largest(
    value: &serde_json::Value,
    path: String,
    array: &mut Option<(usize, String)>,
    string: &mut Option<(usize, String)>,
) {
    let bigger =
        |best: &Option<(usize, String)>, size: usize| best.as_ref().is_none_or(|(b, _)| size > *b);
    match value {
        serde_json::Value::Array(items) => {
            let size = serde_json::to_string(value).map_or(0, |s| s.len());
            if items.len() > 1 && bigger(array, size) {
                *array = Some((size, path.clone()));
            }
            for (i, item) in items.iter().enumerate() {
                find_largest(item, format!("{path}/{i}"), array, string);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                find_largest(item, format!("{path}/{key}"), array, string);
            }
        }
        serde_json::Value::String(text)
            if text.chars().count() > 64
                && text.contains(char::is_whitespace)
                && bigger(string, text.len()) =>
        {
            *string = Some((text.len(), path));
        }
        _ => {}
    }
}

pub fn render(finding: &Finding) -> Message {
    let text = fit_text(text(finding), finding);
    let chat = chat(finding).to_string();
    // The finding JSON goes twice (sqs, lambda), escaped inside the body: give it what the
    // rest leaves, and less until the whole body fits.
    let mut budget = MAX_BODY_BYTES;
    let body = loop {
        let finding_json = fit_finding_json(finding, budget);
        let body = json!({
            "default": text,
            "email": text,
            "https": chat,
            "sqs": finding_json,
            "lambda": finding_json,
        })
        .to_string();
        if body.len() <= MAX_BODY_BYTES || budget < 1024 {
            break body;
        }
        budget = budget
            .saturating_sub(body.len() - MAX_BODY_BYTES)
            .min(budget * 3 / 4);
    };
    Message {
        subject: subject(finding),
        body,
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
/// A slow Publish is waited for, for the whole operation timeout, rather than abandoned when
/// one attempt times out and sent again: SNS may have taken the first, and a second copy is
/// a second alert. Errors are still retried.
fn publish_config(sns: &aws_sdk_sns::Client) -> aws_sdk_sns::config::Builder {
    let override_ = aws_sdk_sns::config::Builder::default();
    match sns.config().timeout_config() {
        Some(timeouts) => match timeouts.operation_timeout() {
            Some(whole) => override_.timeout_config(
                timeouts
                    .to_builder()
                    .operation_attempt_timeout(whole)
                    .build(),
            ),
            None => override_,
        },
        None => override_,
    }
}

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
        .customize()
        .config_override(publish_config(sns))
        .send()
        .await
        .map_err(|e| format!("sns:Publish to {topic_arn}: {}", DisplayErrorContext(&e)))?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}
