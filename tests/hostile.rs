//! Hostile input at the intake: whatever arrives — arbitrary JSON, real CloudTrail records
//! mutated, oversized, deeply nested, wrongly typed or not UTF-8 at all — ends as a Trigger,
//! IGNORED, or an error that says what is wrong. Never a panic, never silence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bedrock_cmk_guard::intake::{self, Envelope, EventSpec, Intake};
use bedrock_cmk_guard::Reactor;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every reactor's events, as each function's intake sees them.
fn every_reactor() -> [&'static [EventSpec]; 4] {
    [
        guardrails::Guardrails::EVENTS,
        invocation_logging::InvocationLogging::EVENTS,
        model_jobs::ModelJobs::EVENTS,
        data_jobs::DataJobs::EVENTS,
    ]
}

/// Parses `event` for every reactor, enveloped or not; each answer must be a decision or an
/// error with words in it.
fn judged_by_every_reactor(event: &Value) {
    for specs in every_reactor() {
        for rule in [Envelope::Required, Envelope::Optional] {
            match intake::parse(event, specs, rule) {
                Ok(Intake::Check(trigger)) => {
                    assert!(!trigger.call.event_name.is_empty());
                }
                Ok(Intake::Ignored { .. }) => {}
                Err(e) => assert!(
                    e.to_string().len() > 10,
                    "an error that says nothing: {e:?}"
                ),
            }
        }
    }
}

/// The real records: the project's event fixtures and the public CloudTrail samples.
fn real_records() -> Vec<Value> {
    let root = cmk_guard_tests::workspace_root();
    let mut records = Vec::new();
    for dir in ["tests/fixtures/events", "tests/fixtures/cloudtrail-samples"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            records.push(serde_json::from_str(&text).unwrap());
        }
    }
    assert!(records.len() > 40, "{} records", records.len());
    records
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        // Names the intake looks for, so random objects reach deep into its paths.
        prop::sample::select(vec![
            "aws.bedrock",
            "bedrock.amazonaws.com",
            "AWS API Call via CloudTrail",
            "CreateGuardrail",
            "UpdateGuardrail",
            "PutBucketEncryption",
            "logs.amazonaws.com",
            "arn:aws:bedrock:us-east-1:111122223333:guardrail/abc",
            "111122223333",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the intake reads, and anything else.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "detail-type",
            "source",
            "account",
            "region",
            "detail",
            "eventName",
            "eventSource",
            "awsRegion",
            "recipientAccountId",
            "userIdentity",
            "requestParameters",
            "responseElements",
            "errorCode",
            "eventID",
            "eventTime",
            "arn",
            "accountId",
            "guardrailIdentifier",
            "guardrailArn",
            "jobArn",
            "bucketName",
            "logGroupName",
            "resources",
            "ARN",
            "type",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z-]{1,12}",
    ]
}

/// One mutation of a real record at a random place: a member removed, replaced by arbitrary
/// JSON, turned into another type, or buried in arrays.
#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    Stringify,
    Bury(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        any_json().prop_map(Mutation::Replace),
        Just(Mutation::Stringify),
        (1usize..40).prop_map(Mutation::Bury),
    ]
}

/// Applies `m` at the `pick`-th member (depth first) of `value`.
fn mutate(value: &mut Value, pick: usize, m: &Mutation) {
    let mut paths = Vec::new();
    collect_paths(value, String::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    let path = paths[pick % paths.len()].clone();
    let (parent, key) = path.rsplit_once('/').unwrap_or(("", &path));
    let Some(target) = value.pointer_mut(&path) else {
        return;
    };
    match m {
        Mutation::Replace(v) => *target = v.clone(),
        Mutation::Stringify => *target = Value::String(target.to_string()),
        Mutation::Bury(depth) => {
            for _ in 0..*depth {
                *target = Value::Array(vec![target.take()]);
            }
        }
        Mutation::Remove => {
            let key = key.to_owned();
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn collect_paths(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                collect_paths(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{path}/{i}");
                out.push(p.clone());
                collect_paths(v, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_is_decided_or_refused_in_words(event in any_json()) {
        judged_by_every_reactor(&event);
    }

    #[test]
    fn mutated_real_records_are_decided_or_refused_in_words(
        which in any::<usize>(),
        mutations in prop::collection::vec((any::<usize>(), mutation()), 1..5),
    ) {
        let records = real_records();
        let mut event = records[which % records.len()].clone();
        for (pick, m) in &mutations {
            mutate(&mut event, *pick, m);
        }
        judged_by_every_reactor(&event);
    }
}

/// The mutations are not idle: removing eventName from a record the guardrails reactor
/// handles turns a Check into an error that names the field.
#[test]
fn a_record_without_its_event_name_is_refused_by_name() {
    let mut event = real_records()
        .into_iter()
        .find(|e| e["detail"]["eventName"] == "CreateGuardrail")
        .unwrap();
    let specs = guardrails::Guardrails::EVENTS;
    assert!(matches!(
        intake::parse(&event, specs, Envelope::Required),
        Ok(Intake::Check(_))
    ));
    event["detail"].as_object_mut().unwrap().remove("eventName");
    let e = intake::parse(&event, specs, Envelope::Required).unwrap_err();
    assert!(e.to_string().contains("eventName"), "{e}");
}

/// Oversized and wrongly typed fields: a 4 MB user agent is carried, a number where an ARN
/// belongs is refused, in words.
#[test]
fn oversized_and_wrongly_typed_fields_are_handled() {
    let record = real_records()
        .into_iter()
        .find(|e| e["detail"]["eventName"] == "UpdateGuardrail")
        .unwrap();
    let mut big = record.clone();
    big["detail"]["userAgent"] = Value::String("x".repeat(4 << 20));
    judged_by_every_reactor(&big);
    let mut wrong = record;
    wrong["detail"]["requestParameters"] = json!({"guardrailIdentifier": 42});
    wrong["detail"]["responseElements"] = json!(["not", "an", "object"]);
    judged_by_every_reactor(&wrong);
}

fn cmk_guard_check(file: &Path) -> std::process::Output {
    std::process::Command::new(cmk_guard_tests::target_dir().join("cmk-guard"))
        .args(["check", "--event", file.to_str().unwrap(), "--timeout", "1"])
        .env_clear()
        .output()
        .unwrap()
}

/// What never becomes JSON — bytes that are not UTF-8, nesting deeper than any event —
/// is refused before any AWS call, with exit status 2 and the reason.
#[test]
fn non_utf8_and_deeply_nested_files_are_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("cmk-guard-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("binary.json");
    std::fs::write(&binary, b"{\"detail\": \"\xff\xfe\x00\"}").unwrap();
    let deep = dir.join("deep.json");
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    for (file, why) in [(&binary, "UTF-8"), (&deep, "recursion limit")] {
        let out = cmk_guard_check(file);
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{}: {stderr}", file.display());
    }
}
