//! The SNS contract: MessageStructure=json with readable text, the chat custom notification
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! and the Finding JSON; attributes for filtering; a subject SNS accepts.

use bedrock_cmk_guard::finding::*;
use bedrock_cmk_guard::keys::KeyManager;
use bedrock_cmk_guard::notify::{render, title};
use bedrock_cmk_guard::settings::Mode;
use serde_json::Value;

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
        },
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
    assert_eq!(json["schema"], "bedrock-cmk-guard/finding@1");
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
