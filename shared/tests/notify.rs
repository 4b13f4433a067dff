//! The SNS contract: MessageStructure=json with readable text, the chat custom notification
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! and the Finding JSON; attributes for filtering; a subject SNS accepts.

use bedrock_cmk_guard::finding::*;
use bedrock_cmk_guard::keys::KeyManager;
use bedrock_cmk_guard::notify::{render, title};
use bedrock_cmk_guard::settings::Mode;
use serde_json::Value;

const AWS_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const CMK: &str = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

fn key(arn: &str, manager: KeyManager) -> KeySummary {
    KeySummary {
        reference: arn.to_owned(),
        arn: Some(arn.to_owned()),
        manager: Some(manager),
        state: Some("Enabled".to_owned()),
        account: Some("111122223333".to_owned()),
    }
}

fn part(name: &str, key_now: Option<KeySummary>, action: ActionKind) -> ProtectionSummary {
    ProtectionSummary {
        name: name.to_owned(),
        key: key_now,
        verdict: Status::NonCompliant,
        severity: Severity::Medium,
        reason: format!("{name} is not on a customer-managed key"),
        fixable: name == "DRAFT",
        action,
        key_after: None,
        problem: Some(KeyProblem::AwsManaged),
    }
}

fn finding(kind: ActionKind) -> Finding {
    Finding {
        schema: SCHEMA.to_owned(),
        check: "bedrock-guardrail-cmk".to_owned(),
        status: Status::NonCompliant,
        severity: Severity::Medium,
        account: "111122223333".to_owned(),
        region: "us-east-1".to_owned(),
        resource: Resource {
            kind: "AWS::Bedrock::Guardrail".to_owned(),
            arn: Some("arn:aws:bedrock:us-east-1:111122223333:guardrail/a1b2c3d4e5f6".to_owned()),
            name: Some("support-bot".to_owned()),
        },
        key: Some(KeySummary {
            reference:
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .to_owned(),
            arn: Some(
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .to_owned(),
            ),
            manager: Some(KeyManager::Aws),
            state: Some("Enabled".to_owned()),
            account: Some("111122223333".to_owned()),
        }),
        protections: vec![ProtectionSummary {
            // A fix that keys a part proves the key it put there.
            key_after: (kind == ActionKind::Remediated).then(|| key(CMK, KeyManager::Customer)),
            ..part("DRAFT", Some(key(AWS_KEY, KeyManager::Aws)), kind)
        }],
        reason: "the guardrail is encrypted with an AWS-managed key".to_owned(),
        trigger: TriggerSummary {
            event_name: "UpdateGuardrail".to_owned(),
            event_id: "c0a8e5f4-2b1d-4e7a-9d6c-8f3b2a1e0d9c".to_owned(),
            event_time: "2026-11-20T09:14:03Z".to_owned(),
            actor: "arn:aws:sts::111122223333:assumed-role/MLPlatformAdmin/alice".to_owned(),
        },
        mode: Some(Mode::Alert),
        action: Action {
            kind,
            detail: Some("Console: Amazon Bedrock > Guardrails > support-bot".to_owned()),
            error: None,
            steps: Vec::new(),
        },
        previous_status: None,
    }
}

#[test]
fn one_body_three_renderings() {
    let f = finding(ActionKind::Alerted);
    let message = render(&f);
    let body: Value = serde_json::from_str(&message.body).unwrap();

    let text = body["default"].as_str().unwrap();
    assert_eq!(body["email"], body["default"]);
    for needle in [
        "support-bot",
        "111122223333",
        "us-east-1",
        "assumed-role/MLPlatformAdmin/alice",
        "UpdateGuardrail",
        "AWS-managed key",
        "manager AWS",
        "To fix: Console: Amazon Bedrock > Guardrails > support-bot",
    ] {
        assert!(text.contains(needle), "text lacks {needle:?}:\n{text}");
    }

    let chat: Value = serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["textType"], "client-markdown");
    assert_eq!(
        chat["metadata"]["threadId"],
        f.resource.arn.clone().unwrap()
    );
    assert!(chat["content"]["title"]
        .as_str()
        .unwrap()
        .contains("support-bot"));
    assert!(chat["content"]["description"]
        .as_str()
        .unwrap()
        .contains("MLPlatformAdmin/alice"));
    assert!(chat["content"]["nextSteps"][0]
        .as_str()
        .unwrap()
        .contains("Guardrails > support-bot"));

    for machine in ["sqs", "lambda"] {
        let parsed: Finding = serde_json::from_str(body[machine].as_str().unwrap()).unwrap();
        assert_eq!(parsed, f, "{machine} carries the Finding itself");
    }

    let attributes: Vec<(&str, &str)> = message
        .attributes
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("check", "bedrock-guardrail-cmk"),
            ("status", "NON_COMPLIANT"),
            ("severity", "MEDIUM"),
            ("account", "111122223333"),
            ("region", "us-east-1"),
            ("action", "alerted"),
        ]
    );
}

#[test]
fn finding_json_follows_the_schema_names() {
    let json: Value = serde_json::to_value(finding(ActionKind::WouldRemediate)).unwrap();
    assert_eq!(json["schema"], "bedrock-cmk-guard/finding@2");
    assert_eq!(json["protections"][0]["name"], "DRAFT");
    assert_eq!(json["protections"][0]["verdict"], "NON_COMPLIANT");
    assert_eq!(
        json["protections"][0]["key"], json["key"],
        "key is the first protection's"
    );
    assert!(json["protections"][0]["keyAfter"].is_null());
    assert_eq!(json["protections"][0]["problem"], "aws_managed");
    assert!(json["previousStatus"].is_null());
    assert_eq!(json["status"], "NON_COMPLIANT");
    assert_eq!(json["resource"]["type"], "AWS::Bedrock::Guardrail");
    assert_eq!(json["key"]["ref"], json["key"]["arn"]);
    assert_eq!(json["key"]["manager"], "AWS");
    assert_eq!(json["trigger"]["eventName"], "UpdateGuardrail");
    assert_eq!(
        json["trigger"]["eventId"],
        "c0a8e5f4-2b1d-4e7a-9d6c-8f3b2a1e0d9c"
    );
    assert_eq!(json["mode"], "alert");
    assert_eq!(json["action"]["kind"], "would_remediate");
    let mut no_key = finding(ActionKind::Alerted);
    no_key.key = None;
    assert!(serde_json::to_value(no_key).unwrap()["key"].is_null());
}

#[test]
fn titles_say_what_was_done() {
    let title = |kind| title(&finding(kind));
    assert!(title(ActionKind::Remediated).starts_with("Fixed"));
    assert!(title(ActionKind::WouldRemediate).starts_with("Dry run"));
    assert!(title(ActionKind::Failed).contains("FAILED"));
    assert_eq!(
        title(ActionKind::Alerted),
        "Bedrock guardrail \"support-bot\" is not encrypted with an allowed customer-managed KMS key"
    );
    let subject = |kind| render(&finding(kind)).subject;
    assert_eq!(
        subject(ActionKind::Alerted),
        "[cmk-guard] No allowed CMK: Bedrock guardrail \"support-bot\""
    );
    assert_eq!(
        subject(ActionKind::Remediated),
        "[cmk-guard] Fixed: Bedrock guardrail \"support-bot\""
    );
}

/// A job the guard stopped carries no key afterwards: it is told as stopped, never as a
/// resource that "now uses" a customer-managed key.
#[test]
fn a_stop_is_told_as_a_stop_not_as_a_key() {
    let mut f = finding(ActionKind::Remediated);
    f.resource.name = Some("support-ft".to_owned());
    f.protections[0].key_after = None;
    let told = title(&f);
    assert!(told.starts_with("Stopped: "), "{told}");
    assert!(!told.contains("now uses"), "{told}");
    assert!(render(&f).subject.starts_with("[cmk-guard] Stopped: "));
}

#[test]
fn subjects_fit_sns_limits() {
    let mut f = finding(ActionKind::Alerted);
    f.resource.name = Some("ünïcode-and-a-very-long-name-".repeat(8));
    let subject = render(&f).subject;
    assert!(subject.len() <= 100, "{} chars", subject.len());
    assert!(
        subject.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{subject}"
    );
}

#[test]
fn after_a_fix_the_card_shows_the_key_as_was_and_now() {
    let mut f = finding(ActionKind::Remediated);
    f.protections[0].key_after = Some(key(CMK, KeyManager::Customer));
    let chat = bedrock_cmk_guard::notify::chat(&f);
    let description = chat["content"]["description"].as_str().unwrap();
    assert!(
        description.contains(&format!(
            "was {AWS_KEY} (manager AWS, state Enabled) -> now {CMK} (manager CUSTOMER"
        )),
        "{description}"
    );
    let related: Vec<&str> = chat["metadata"]["relatedResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        related.contains(&AWS_KEY) && related.contains(&CMK),
        "{related:?}"
    );
}

#[test]
fn manual_fixes_are_numbered_steps_in_next_steps() {
    let mut f = finding(ActionKind::Alerted);
    f.action.steps = vec!["Open the console.".to_owned(), "Choose a CMK.".to_owned()];
    let chat = bedrock_cmk_guard::notify::chat(&f);
    let steps: Vec<&str> = chat["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(steps[1..], ["1. Open the console.", "2. Choose a CMK."]);
    let text = bedrock_cmk_guard::notify::text(&f);
    assert!(
        text.contains("Steps:\n  1. Open the console.\n  2. Choose a CMK."),
        "{text}"
    );
}

#[test]
fn a_partial_fix_says_in_its_title_what_is_still_open() {
    let mut f = finding(ActionKind::Remediated);
    f.protections
        .push(part("version 1", None, ActionKind::Alerted));
    f.protections
        .push(part("version 2", None, ActionKind::Alerted));
    assert_eq!(
        title(&f),
        "Partly fixed: Bedrock guardrail \"support-bot\": DRAFT now on a customer-managed KMS key; still open: version 1, version 2"
    );
    assert!(render(&f).subject.starts_with("[cmk-guard] Partly fixed:"));
    let text = bedrock_cmk_guard::notify::text(&f);
    assert!(
        text.contains("- version 1: none named (a key AWS owns) [not compliant, needs a person]"),
        "{text}"
    );
    assert!(text.contains("- DRAFT: "), "{text}");
}

#[test]
fn the_end_of_a_problem_is_told_as_resolved() {
    let mut f = finding(ActionKind::None);
    f.status = Status::Compliant;
    f.severity = Severity::Info;
    f.protections[0].verdict = Status::Compliant;
    f.previous_status = Some(Status::NonCompliant);
    f.action.detail = Some("Resolved: last reported NON_COMPLIANT".to_owned());
    assert!(
        title(&f).starts_with("Resolved: Bedrock guardrail \"support-bot\""),
        "{}",
        title(&f)
    );
    let message = render(&f);
    assert!(message.subject.starts_with("[cmk-guard] Resolved:"));
    assert!(message
        .attributes
        .contains(&("status", "COMPLIANT".to_owned())));
    // Without a problem before, a compliant finding is no resolution.
    f.previous_status = Some(Status::Compliant);
    assert!(!title(&f).starts_with("Resolved"));
}

/// Logging switched off, or a destination deleted, is not "not encrypted": the title, the
/// subject and the key line say that the part is off or missing.
#[test]
fn a_part_that_is_off_or_missing_is_called_so() {
    let mut f = finding(ActionKind::Alerted);
    f.resource = Resource {
        kind: "AWS::Bedrock::ModelInvocationLoggingConfiguration".to_owned(),
        arn: Some(
            "arn:aws:bedrock:us-east-1:111122223333:model-invocation-logging-configuration"
                .to_owned(),
        ),
        name: Some("us-east-1".to_owned()),
    };
    let mut gone = part("log group /bedrock/invocations", None, ActionKind::Alerted);
    gone.problem = Some(KeyProblem::Absent);
    let bucket = part("bucket logs", None, ActionKind::Alerted);
    f.protections = vec![gone.clone(), bucket];
    assert_eq!(
        title(&f),
        "Bedrock model invocation logging configuration \"us-east-1\": log group /bedrock/invocations off or missing; bucket logs not encrypted with an allowed customer-managed KMS key"
    );
    let message = render(&f);
    assert!(
        message.subject.starts_with("[cmk-guard] Off or missing: "),
        "{}",
        message.subject
    );
    let body: Value = serde_json::from_str(&message.body).unwrap();
    let text = body["default"].as_str().unwrap();
    assert!(
        text.contains(
            "log group /bedrock/invocations: nothing to encrypt: it is off or does not exist"
        ),
        "{text}"
    );
    f.protections = vec![gone];
    assert_eq!(
        title(&f),
        "Bedrock model invocation logging configuration \"us-east-1\": log group /bedrock/invocations off or missing"
    );
}

/// A finding with thousands of parts and a very long reason: every rendering fits SNS's
/// limit, and the shortened ones say so and where the whole finding is.
fn huge() -> Finding {
    let mut f = finding(ActionKind::Alerted);
    let template = f.protections[0].clone();
    f.protections = (0..4000)
        .map(|i| ProtectionSummary {
            name: format!("version {i}"),
            reason: format!("version {i} {}", "is on a key AWS owns ".repeat(8)),
            ..template.clone()
        })
        .collect();
    f.action.steps = (0..500)
        .map(|i| format!("Step {i}: {}", "x".repeat(100)))
        .collect();
    f.reason = "the guardrail and its versions are not on a CMK; ".repeat(3000);
    f
}

#[test]
fn a_finding_too_large_for_sns_is_shortened_with_a_pointer_never_dropped() {
    let f = huge();
    assert!(
        f.to_json().len() > 256 * 1024,
        "the test needs a finding over the limit"
    );
    let message = render(&f);
    assert!(
        message.body.len() <= bedrock_cmk_guard::notify::MAX_BODY_BYTES,
        "{} bytes",
        message.body.len()
    );
    let body: Value = serde_json::from_str(&message.body).unwrap();
    let pointer = format!("event {}", f.trigger.event_id);

    let machine: Value = serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(body["lambda"], body["sqs"]);
    assert!(machine["truncated"].as_str().unwrap().contains(&pointer));
    // Still a finding of the same schema, with what identifies and decides it whole.
    for field in [
        "schema", "check", "status", "severity", "account", "region", "resource", "trigger",
        "action",
    ] {
        assert!(machine.get(field).is_some(), "{field} kept");
    }
    assert_eq!(machine["resource"]["arn"], f.resource.arn.clone().unwrap());
    let kept = machine["protections"].as_array().unwrap().len();
    assert!((1..4000).contains(&kept), "{kept} parts kept");
    // Identifiers are never cut (a cut ARN would name something else); prose may end in "…".
    let parsed: Finding = serde_json::from_value(machine).unwrap();
    let (kept, whole) = (&parsed.protections[0], &f.protections[0]);
    assert_eq!(
        (&kept.name, &kept.key, kept.verdict, kept.action),
        (&whole.name, &whole.key, whole.verdict, whole.action)
    );
    assert!(whole.reason.starts_with(kept.reason.trim_end_matches('…')));
    assert!(f.reason.starts_with(parsed.reason.trim_end_matches('…')));

    let text = body["default"].as_str().unwrap();
    let headline = title(&f);
    assert!(
        headline.len() < 300 && headline.contains("and 3995 more"),
        "{headline}"
    );
    assert!(text.starts_with(&headline), "{}", &text[..200]);
    assert!(text.contains(&pointer), "the text says where the rest is");
    let chat: Value = serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
    assert!(chat["content"]["description"]
        .as_str()
        .unwrap()
        .contains(&f.trigger.event_id));
    assert!(
        chat["metadata"]["relatedResources"]
            .as_array()
            .unwrap()
            .len()
            <= 20
    );
}

#[test]
fn a_finding_that_fits_is_sent_whole() {
    let f = finding(ActionKind::Alerted);
    let body: Value = serde_json::from_str(&render(&f).body).unwrap();
    assert_eq!(body["sqs"].as_str().unwrap(), f.to_json());
    assert!(!body["default"].as_str().unwrap().contains("shortened"));
}
