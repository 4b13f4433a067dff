//! Intake of the model-job events: the project's fixtures, and every public sample we hold
//! (Cloud Custodian's trimmed, real CreateModelCustomizationJob record among them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::intake::{parse, Envelope, Intake, IntakeError, Trigger};
use bedrock_cmk_guard::Reactor;
use model_jobs::{located, Kind, ModelJobs};
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn load(path: std::path::PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(event: &Value) -> Trigger {
    match parse(event, ModelJobs::EVENTS, Envelope::Optional) {
        Ok(Intake::Check(trigger)) => trigger,
        other => panic!("expected a trigger, got {other:?}"),
    }
}

#[test]
fn every_fixture_names_its_job_or_model_and_where_it_lives() {
    for (fixture, kind) in [
        ("CreateModelCustomizationJob.json", Kind::Customization),
        ("CreateCustomModel.json", Kind::CustomModel),
        ("CreateModelImportJob.json", Kind::Import),
        ("CreateModelCopyJob.json", Kind::Copy),
    ] {
        let t = check(&load(fixtures().join("events").join(fixture)));
        let arn = t.resource_id().unwrap();
        assert_eq!(Kind::of(arn), Some(kind), "{fixture}: {arn}");
        let at = located(&t, "aws");
        assert_eq!(
            (at.account.as_str(), at.region.as_str()),
            ("111122223333", "us-east-1")
        );
    }
}

#[test]
fn the_real_trimmed_customization_record_is_checked_where_the_job_lives() {
    let mut event = load(
        fixtures().join("cloudtrail-samples/CreateModelCustomizationJob__cloud-custodian.json"),
    );
    // Trimmed by its publisher: without an eventID nothing could tell a redelivery apart, so
    // intake refuses it, and says why.
    let err = parse(&event, ModelJobs::EVENTS, Envelope::Optional).unwrap_err();
    assert!(err.to_string().contains("no eventID"), "{err}");
    event["eventID"] = "3f1c2d4e-0000-4000-8000-000000000001".into();
    event["eventTime"] = "2024-05-02T10:00:00Z".into();
    let t = check(&event);
    assert_eq!(
        t.resource_id(),
        Some("arn:aws:bedrock:us-east-1:644160558196:model-customization-job/cohere.command-text-v14:7:4k/q4ad8z8tioq8")
    );
    let at = located(&t, "aws");
    assert_eq!(at.account, "644160558196");
    assert_eq!(at.region, "us-east-1");
}

/// Every public sample parses to a trigger, or a clear error: never a panic, and never a
/// trigger for a record that is not one of these calls.
#[test]
fn every_public_sample_survives_intake() {
    let dir = fixtures().join("cloudtrail-samples");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match parse(&load(path), ModelJobs::EVENTS, Envelope::Optional) {
            Ok(Intake::Check(_)) => {
                assert!(name.starts_with("CreateModelCustomizationJob"), "{name}")
            }
            Ok(Intake::Ignored { .. }) => {
                panic!("{name}: no failed model-job call among the samples")
            }
            Err(IntakeError::Unhandled { event_name, .. }) => {
                assert!(name.starts_with(&event_name), "{name}: read {event_name}")
            }
            Err(IntakeError::DetailType(_)) => {}
            Err(e @ IntakeError::Missing(_)) => {
                assert!(
                    name.starts_with("CreateModelCustomizationJob"),
                    "{name}: {e}"
                )
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
