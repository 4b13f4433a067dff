//! Intake of the data-job events over the project's fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::intake::{parse, Envelope, Intake};
use bedrock_cmk_guard::jobs::located;
use bedrock_cmk_guard::Reactor;
use data_jobs::{DataJobs, Kind};
use serde_json::Value;

#[test]
fn every_fixture_names_its_job_and_where_it_lives() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/events");
    for (fixture, kind) in [
        ("CreateEvaluationJob.json", Kind::Evaluation),
        ("CreateModelInvocationJob.json", Kind::Batch),
    ] {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(fixture)).unwrap()).unwrap();
        let Ok(Intake::Check(t)) = parse(&event, DataJobs::EVENTS, Envelope::Required) else {
            panic!("{fixture}: no trigger")
        };
        assert_eq!(Kind::of(t.resource_id().unwrap()), Some(kind), "{fixture}");
        let at = located(&t, "aws");
        assert_eq!(
            (at.account.as_str(), at.region.as_str()),
            ("111122223333", "us-east-1")
        );
    }
}
