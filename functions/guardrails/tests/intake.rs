//! Intake over fixtures shaped like real records, and over every public sample we hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::intake::{parse, Envelope, EventSpec, Intake, IntakeError};
use bedrock_cmk_guard::Reactor;
use guardrails::Guardrails;
use serde_json::{json, Value};

/// The events the guardrails reactor declares: intake is tested against the real spec.
const GUARDRAIL_EVENTS: &[EventSpec] = Guardrails::EVENTS;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("events").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(event: &Value) -> bedrock_cmk_guard::intake::Trigger {
    match parse(event, GUARDRAIL_EVENTS, Envelope::Optional) {
        Ok(Intake::Check(trigger)) => trigger,
        other => panic!("expected a trigger, got {other:?}"),
    }
}

#[test]
fn create_guardrail_envelope_gives_arn_account_region_and_actor() {
    let t = check(&fixture("CreateGuardrail.json"));
    assert_eq!(
        t.resource_id().unwrap(),
        "arn:aws:bedrock:us-east-1:111122223333:guardrail/a1b2c3d4e5f6"
    );
    assert_eq!(t.call.event_name, "CreateGuardrail");
    assert_eq!(t.call.account, "111122223333");
    assert_eq!(t.call.region, "us-east-1");
    assert_eq!(
        t.call.actor,
        "arn:aws:sts::111122223333:assumed-role/MLPlatformAdmin/alice"
    );
    assert_eq!(
        t.call.event_id, "c0a8e5f4-2b1d-4e7a-9d6c-8f3b2a1e0d9c",
        "CloudTrail eventID, not the envelope id"
    );
    assert_eq!(t.call.event_time, "2026-11-20T09:14:03Z");
}

#[test]
fn update_guardrail_with_hidden_name_and_no_kms_member_is_checked() {
    let t = check(&fixture("UpdateGuardrail.json"));
    assert_eq!(
        t.resource_id().unwrap(),
        "arn:aws:bedrock:us-west-2:123123123123:guardrail/cmy5azq5koeo"
    );
    assert_eq!(
        t.call.actor,
        "arn:aws:sts::123123123123:assumed-role/DevAdmin/dr.evil"
    );
}

#[test]
fn hidden_values_are_never_taken_for_a_resource_id() {
    let mut event = fixture("UpdateGuardrail.json");
    event["detail"]["responseElements"] = Value::Null;
    event["detail"]["requestParameters"]["guardrailIdentifier"] =
        json!("HIDDEN_DUE_TO_SECURITY_REASONS");
    match parse(&event, GUARDRAIL_EVENTS, Envelope::Optional) {
        Err(IntakeError::NoResource { event_name, .. }) => {
            assert_eq!(event_name, "UpdateGuardrail")
        }
        other => panic!("expected NoResource, got {other:?}"),
    }
    event["detail"]["requestParameters"]["guardrailIdentifier"] = json!("cmy5azq5koeo");
    assert_eq!(check(&event).resource_id(), Some("cmy5azq5koeo"));
}

#[test]
fn failed_calls_are_ignored_with_the_error_code() {
    match parse(
        &fixture("UpdateGuardrail-failed.json"),
        GUARDRAIL_EVENTS,
        Envelope::Optional,
    ) {
        Ok(Intake::Ignored { call, reason }) => {
            assert_eq!(call.event_name, "UpdateGuardrail");
            assert!(reason.contains("AccessDeniedException"), "{reason}");
        }
        other => panic!("expected Ignored, got {other:?}"),
    }
}

#[test]
fn old_records_without_management_event_or_recipient_still_parse() {
    let t = check(&fixture("UpdateGuardrail-old-record.json"));
    assert_eq!(
        t.call.account, "123123123123",
        "falls back to userIdentity.accountId"
    );
    assert_eq!(t.call.region, "us-west-2");
    assert_eq!(t.call.actor, "arn:aws:iam::123123123123:user/ci-deployer");
    assert_eq!(
        t.resource_id().unwrap(),
        "arn:aws:bedrock:us-west-2:123123123123:guardrail/cmy5azq5koeo"
    );
}

#[test]
fn bare_cloudtrail_record_is_accepted() {
    let text = std::fs::read_to_string(fixtures().join(
        "cloudtrail-samples/UpdateGuardrail__panther-bedrock-guardrail-update-delete-t0.json",
    ))
    .unwrap();
    let t = check(&serde_json::from_str(&text).unwrap());
    assert_eq!(t.call.account, "123123123123", "recipientAccountId");
    assert_eq!(
        t.call.event_time, "2025-01-21 17:39:10.000000000",
        "reported as written, never reparsed"
    );
}

#[test]
fn malformed_input_is_a_clear_error() {
    let cases: Vec<(Value, &str)> = vec![
        (json!("just a string"), "expected a JSON object"),
        (json!([1, 2]), "expected a JSON object"),
        (json!({"hello": "world"}), "no \"detail-type\""),
        (
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            "detail-type is \"Scheduled Event\"",
        ),
        (
            json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.bedrock", "detail": "x"}),
            "detail object",
        ),
        (
            json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.bedrock", "detail": {"eventSource": "bedrock.amazonaws.com"}}),
            "no eventName",
        ),
        (
            json!({"eventName": "UpdateGuardrail", "eventSource": "bedrock.amazonaws.com", "eventID": 7}),
            "CloudTrail record",
        ),
        (
            json!({"eventName": "UpdateGuardrail", "eventSource": "bedrock.amazonaws.com", "eventID": "e", "eventTime": "t", "awsRegion": "us-east-1"}),
            "account",
        ),
    ];
    for (event, expected) in cases {
        let err = parse(&event, GUARDRAIL_EVENTS, Envelope::Optional).expect_err("must be refused");
        assert!(err.to_string().contains(expected), "{event}: {err}");
    }
}

#[test]
fn events_of_other_services_are_refused_by_name() {
    let mut event = fixture("CreateGuardrail.json");
    event["detail"]["eventName"] = json!("ApplyGuardrail");
    let err = parse(&event, GUARDRAIL_EVENTS, Envelope::Optional).unwrap_err();
    assert!(matches!(err, IntakeError::Unhandled { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("CreateGuardrail, UpdateGuardrail, CreateGuardrailVersion, DeleteGuardrail"),
        "{err}"
    );
}

#[test]
fn a_new_version_names_its_guardrail() {
    let t = check(&fixture("CreateGuardrailVersion.json"));
    assert_eq!(t.call.event_name, "CreateGuardrailVersion");
    assert_eq!(t.resource_id(), Some("a1b2c3d4e5f6"));
}

/// The Lambda acts only on what EventBridge delivered: a bare record sent by any invoker
/// must not make it read (or assume roles into) accounts on a made-up event.
#[test]
fn the_lambda_path_refuses_bare_records_and_foreign_sources() {
    let text = std::fs::read_to_string(fixtures().join(
        "cloudtrail-samples/UpdateGuardrail__panther-bedrock-guardrail-update-delete-t0.json",
    ))
    .unwrap();
    let bare: Value = serde_json::from_str(&text).unwrap();
    let err = parse(&bare, GUARDRAIL_EVENTS, Envelope::Required).unwrap_err();
    assert_eq!(err, IntakeError::BareRecord);
    assert!(err.to_string().contains("CLI takes bare records"), "{err}");

    let envelope = fixture("UpdateGuardrail.json");
    assert!(matches!(
        parse(&envelope, GUARDRAIL_EVENTS, Envelope::Required),
        Ok(Intake::Check(_))
    ));

    let mut forged = envelope;
    forged["source"] = json!("my.app");
    let err = parse(&forged, GUARDRAIL_EVENTS, Envelope::Required).unwrap_err();
    assert!(matches!(err, IntakeError::SourceMismatch { .. }), "{err}");
    assert!(err.to_string().contains("\"my.app\""), "{err}");
}

/// Every public sample parses to a trigger, an ignored call or a clear error: never a panic,
/// and never a guardrail trigger for a record that is not a successful guardrail call.
#[test]
fn every_public_sample_survives_intake() {
    let dir = fixtures().join("cloudtrail-samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        seen += 1;
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match parse(&event, GUARDRAIL_EVENTS, Envelope::Optional) {
            Ok(Intake::Check(t)) => assert!(
                name.starts_with("UpdateGuardrail") || name.starts_with("DeleteGuardrail"),
                "{name} gave a trigger {t:?}"
            ),
            Ok(Intake::Ignored { .. }) => {
                panic!("{name}: no failed guardrail call among the samples")
            }
            Err(IntakeError::Unhandled { event_name, .. }) => {
                assert!(
                    name.starts_with(&event_name),
                    "{name}: read event name {event_name}"
                )
            }
            Err(IntakeError::DetailType(t)) => assert_eq!(event["detail-type"], json!(t), "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(seen >= 39, "only {seen} samples found in {}", dir.display());
}

#[test]
fn a_key_named_in_the_request_becomes_a_hint_and_hidden_or_malformed_ones_do_not() {
    let mut event = fixture("CreateGuardrail.json");
    assert_eq!(check(&event).key_hint, None, "the fixture names no key");
    event["detail"]["requestParameters"]["kmsKeyId"] = json!("alias/guardrails");
    assert_eq!(
        check(&event).key_hint.map(|k| k.to_string()),
        Some("alias/guardrails".to_owned())
    );
    for useless in ["HIDDEN_DUE_TO_SECURITY_REASONS", "not a key", ""] {
        event["detail"]["requestParameters"]["kmsKeyId"] = json!(useless);
        assert_eq!(check(&event).key_hint, None, "{useless:?}");
    }
}
