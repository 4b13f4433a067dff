//! The invocation-logging reactor against the emulator: every event in every mode, with the
//! SNS message and the destinations read back; the key-policy preflight; drift on what is no
//! destination; the silent follow-up of its own fixes. Each world has an account of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::finding::{ActionKind, Finding, KeyProblem, Severity, Status};
use cmk_guard_tests::{logging_event, Account, Destinations, LoggingWorld, REGION, SETTINGS};
use serde_json::{json, Value};

/// A world whose three destinations are on a CMK the services may use, in `mode`, with the
/// ledger: each test breaks one thing.
async fn healthy(test: &str, mode: &str, extra: Value) -> (LoggingWorld, String, Destinations) {
    healthy_with(test, mode, |_| extra.clone()).await
}

/// The same, with settings that depend on the world's key.
async fn healthy_with(
    test: &str,
    mode: &str,
    extra: impl Fn(&str) -> Value,
) -> (LoggingWorld, String, Destinations) {
    let w = LoggingWorld::with_ledger(test, None).await;
    let key = w.account.cmk_for(&["logs", "bedrock"]).await;
    let mut settings = json!({"defaults": {"mode": mode, "remediationKeys": {REGION: key}}});
    if let Value::Object(extra) = extra(&key) {
        for (k, v) in extra {
            settings["defaults"][k] = v;
        }
    }
    w.account
        .put_settings(SETTINGS, &settings.to_string())
        .await;
    let d = w.account.logging(Some(&key)).await;
    (w, key, d)
}

/// What each destination is on now: the log group's key (`Err`: gone), each bucket's
/// algorithm and key.
async fn state(a: &Account, d: &Destinations) -> Value {
    let group = match a.log_group_key(&d.log_group).await {
        Ok(key) => json!(key),
        Err(()) => json!("deleted"),
    };
    let bucket = a.bucket_key(&d.bucket).await;
    let large = a.bucket_key(&d.large_data).await;
    json!({"logGroup": group, "bucket": [bucket.0, bucket.1], "largeData": [large.0, large.1]})
}

fn part<'a>(f: &'a Finding, name: &str) -> &'a bedrock_cmk_guard::finding::ProtectionSummary {
    f.protections
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no part {name}: {:?}", f.protections))
}

/// One event in one mode: the world is broken by `breaks`, the event handled, then the
/// finding, the message and the destinations checked against what the mode allows.
struct Case {
    fixture: &'static str,
    /// The log group or bucket the event names (the log group, the bucket, or none).
    names: Names,
    /// The parts the event leaves failing, and whether the guard can fix them.
    failing: &'static [(&'static str, bool)],
    /// More settings, given the world's key.
    settings: fn(&str) -> Value,
}

#[derive(Clone, Copy)]
enum Names {
    Nothing,
    LogGroup,
    Bucket,
}

const MODES: [&str; 4] = ["off", "alert", "dry-run", "remediate"];

async fn breaks(fixture: &str, w: &LoggingWorld, d: &Destinations) {
    let a = &w.account;
    match fixture {
        "PutModelInvocationLoggingConfiguration.json" => {
            a.drop_log_group_key(&d.log_group).await;
            a.bucket_encryption(&d.bucket, "AES256", None).await;
            a.put_logging(d).await;
        }
        "DeleteModelInvocationLoggingConfiguration.json" => {
            a.bedrock
                .delete_model_invocation_logging_configuration()
                .send()
                .await
                .unwrap();
        }
        "DisassociateKmsKey.json" => {
            a.drop_log_group_key(&d.log_group).await;
        }
        "AssociateKmsKey.json" => {
            // A CMK CloudWatch Logs accepts, but not on the account's allow-list.
            let other = a.cmk_for(&["logs"]).await;
            a.logs
                .associate_kms_key()
                .log_group_name(&d.log_group)
                .kms_key_id(&other)
                .send()
                .await
                .unwrap();
        }
        "DeleteLogGroup.json" => {
            a.logs
                .delete_log_group()
                .log_group_name(&d.log_group)
                .send()
                .await
                .unwrap();
        }
        "PutBucketEncryption.json" => a.bucket_encryption(&d.bucket, "aws:kms", None).await,
        "DeleteBucketEncryption.json" => {
            a.s3.delete_bucket_encryption()
                .bucket(&d.bucket)
                .send()
                .await
                .unwrap();
        }
        other => panic!("no way to break the world for {other}"),
    }
}

/// The follow-up event of a fix of this part: what CloudTrail records for the guard's own
/// write, which must re-check to COMPLIANT and stay silent.
fn own_event(part: &str, account: &str, d: &Destinations) -> Value {
    let mut e = if part.starts_with("log group") {
        logging_event("AssociateKmsKey.json", account, Some(&d.log_group))
    } else {
        logging_event("PutBucketEncryption.json", account, Some(&d.bucket))
    };
    e["detail"]["userIdentity"]["arn"] = json!(format!(
        "arn:aws:sts::{account}:assumed-role/bedrock-cmk-guard/invocation-logging"
    ));
    e
}

async fn run_case(case: &Case) {
    for mode in MODES {
        let test = format!("{}-{mode}", case.fixture.trim_end_matches(".json"));
        let (w, key, d) = healthy_with(&test, mode, case.settings).await;
        breaks(case.fixture, &w, &d).await;
        let before = state(&w.account, &d).await;
        let named = match case.names {
            Names::Nothing => None,
            Names::LogGroup => Some(d.log_group.as_str()),
            Names::Bucket => Some(d.bucket.as_str()),
        };
        let f = w
            .run(&logging_event(case.fixture, &w.account.id, named))
            .await;
        let at = format!("{} in {mode}", case.fixture);
        assert_eq!(f.status, Status::NonCompliant, "{at}: {}", f.reason);
        assert_eq!(f.check, "bedrock-invocation-logging-cmk");
        for (name, _) in case.failing {
            let name = name
                .replace("{bucket}", &d.bucket)
                .replace("{group}", &d.log_group);
            assert_eq!(
                part(&f, &name).verdict,
                Status::NonCompliant,
                "{at}: {name}"
            );
        }
        let failing: Vec<&str> = f
            .protections
            .iter()
            .filter(|p| p.verdict != Status::Compliant)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            failing.len(),
            case.failing.len(),
            "{at}: only the broken parts fail: {failing:?}"
        );
        let fixable = case.failing.iter().any(|(_, fixable)| *fixable);
        let expected = match (mode, fixable) {
            ("off", _) => ActionKind::None,
            ("alert", _) | (_, false) => ActionKind::Alerted,
            ("dry-run", true) => ActionKind::WouldRemediate,
            _ => ActionKind::Remediated,
        };
        assert_eq!(f.action.kind, expected, "{at}: {:?}", f.action);
        let messages = w.messages().await;
        match mode {
            "off" => assert!(messages.is_empty(), "{at}: off publishes nothing"),
            _ => {
                assert_eq!(
                    messages.len(),
                    1,
                    "{at}: one card per change, not one per part"
                );
                assert_eq!(messages[0], f, "{at}: the message is the finding");
            }
        }
        let after = state(&w.account, &d).await;
        if expected != ActionKind::Remediated {
            assert_eq!(after, before, "{at}: nothing changed");
            continue;
        }
        // Each fixable part is now on the key, read back; the rest as they were.
        for (name, fixable) in case.failing {
            let name = name
                .replace("{bucket}", &d.bucket)
                .replace("{group}", &d.log_group);
            let p = part(&f, &name);
            assert_eq!(
                p.action,
                if *fixable {
                    ActionKind::Remediated
                } else {
                    ActionKind::Alerted
                },
                "{at}: {name}"
            );
            if !*fixable {
                continue;
            }
            assert_eq!(
                p.key_after.as_ref().and_then(|k| k.arn.as_deref()),
                Some(key.as_str())
            );
            if name.starts_with("log group") {
                assert_eq!(after["logGroup"], json!(key), "{at}");
            } else {
                assert_eq!(after["bucket"], json!(["aws:kms", key]), "{at}");
                // A bucket moved off SSE-S3 gets a bucket key; one already on SSE-KMS (with
                // aws/s3) keeps its bucket-key setting: only the key changes.
                let was_on_kms = case.fixture == "PutBucketEncryption.json";
                assert_eq!(
                    w.account.bucket_key(&d.bucket).await.2,
                    Some(!was_on_kms),
                    "{at}: bucket key"
                );
            }
            let own = w.run(&own_event(&name, &w.account.id, &d)).await;
            assert_eq!(
                own.status,
                Status::Compliant,
                "{at}: own event of {name}: {}",
                own.reason
            );
            assert!(
                w.messages().await.is_empty(),
                "{at}: the fix's own event is silent"
            );
        }
    }
}

fn plain(_: &str) -> Value {
    json!({})
}

#[tokio::test]
async fn put_configuration_in_every_mode() {
    run_case(&Case {
        fixture: "PutModelInvocationLoggingConfiguration.json",
        names: Names::Nothing,
        failing: &[("log group {group}", true), ("bucket {bucket}", true)],
        settings: plain,
    })
    .await;
}

#[tokio::test]
async fn logging_switched_off_in_every_mode() {
    run_case(&Case {
        fixture: "DeleteModelInvocationLoggingConfiguration.json",
        names: Names::Nothing,
        failing: &[("logging", false)],
        settings: plain,
    })
    .await;
}

#[tokio::test]
async fn log_group_key_removed_in_every_mode() {
    run_case(&Case {
        fixture: "DisassociateKmsKey.json",
        names: Names::LogGroup,
        failing: &[("log group {group}", true)],
        settings: plain,
    })
    .await;
}

#[tokio::test]
async fn log_group_on_a_key_not_allowed_in_every_mode() {
    run_case(&Case {
        fixture: "AssociateKmsKey.json",
        names: Names::LogGroup,
        failing: &[("log group {group}", true)],
        // Only the world's key (also its remediation key) is allowed.
        settings: |key| json!({"allowedKeys": [key]}),
    })
    .await;
}

#[tokio::test]
async fn log_group_deleted_in_every_mode() {
    run_case(&Case {
        fixture: "DeleteLogGroup.json",
        names: Names::LogGroup,
        failing: &[("log group {group}", false)],
        settings: plain,
    })
    .await;
}

#[tokio::test]
async fn bucket_encryption_put_in_every_mode() {
    run_case(&Case {
        fixture: "PutBucketEncryption.json",
        names: Names::Bucket,
        failing: &[("bucket {bucket}", true)],
        settings: plain,
    })
    .await;
}

#[tokio::test]
async fn bucket_encryption_deleted_in_every_mode() {
    run_case(&Case {
        fixture: "DeleteBucketEncryption.json",
        names: Names::Bucket,
        failing: &[("bucket {bucket}", true)],
        settings: plain,
    })
    .await;
}

// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn logging_off_is_high_and_the_alert_says_how_to_turn_it_back_on() {
    let (w, _, _) = healthy("logging-off", "remediate", json!({})).await;
    w.account
        .bedrock
        .delete_model_invocation_logging_configuration()
        .send()
        .await
        .unwrap();
    let f = w
        .run(&logging_event(
            "DeleteModelInvocationLoggingConfiguration.json",
            &w.account.id,
            None,
        ))
        .await;
    assert_eq!(
        (f.status, f.severity),
        (Status::NonCompliant, Severity::High)
    );
    assert!(
        f.reason
            .contains("model invocation logging is off in us-east-1"),
        "{}",
        f.reason
    );
    assert_eq!(f.action.kind, ActionKind::Alerted, "never claims to fix it");
    assert!(
        f.action.steps[0].contains("put-model-invocation-logging-configuration"),
        "{:?}",
        f.action.steps
    );
    assert_eq!(
        f.resource.arn.as_deref(),
        Some(
            format!(
                "arn:aws:bedrock:{REGION}:{}:model-invocation-logging-configuration",
                w.account.id
            )
            .as_str()
        )
    );
    // The person reading the alert sees what it is about in words, and where.
    let [card] = w.chat_cards(0).try_into().expect("one alert");
    let title = card["content"]["title"].as_str().unwrap_or_default();
    assert_eq!(
        title,
        format!(
            "Bedrock model invocation logging configuration \"{REGION}\": logging off or missing"
        )
    );
    assert_eq!(f.protections[0].problem, Some(KeyProblem::Absent));
}

/// Drift on a bucket or log group the configuration does not use costs one read and says
/// nothing: no settings, no ledger, no message.
#[tokio::test]
async fn drift_on_what_is_no_destination_is_ignored_after_one_read() {
    let (w, _, _) = healthy("unrelated", "remediate", json!({})).await;
    let a = &w.account;
    a.s3.create_bucket()
        .bucket(format!("unrelated-{}", a.id))
        .send()
        .await
        .unwrap();
    a.logs
        .create_log_group()
        .log_group_name("/unrelated")
        .send()
        .await
        .unwrap();
    for (fixture, name) in [
        ("DeleteBucketEncryption.json", format!("unrelated-{}", a.id)),
        ("DisassociateKmsKey.json", "/unrelated".to_owned()),
    ] {
        let before = a.calls().len();
        let f = w.run(&logging_event(fixture, &a.id, Some(&name))).await;
        assert_eq!(f.status, Status::Ignored, "{fixture}: {}", f.reason);
        assert!(
            f.reason.contains(&name) && f.reason.contains("is not a destination"),
            "{}",
            f.reason
        );
        assert_eq!(
            a.calls()[before..],
            ["bedrock:GetModelInvocationLoggingConfiguration"],
            "{fixture}: one read"
        );
    }
    assert!(w.messages().await.is_empty());
    // A log group named by its ARN (resourceIdentifier) is recognised as the destination.
    let mut e = logging_event("DisassociateKmsKey.json", &a.id, None);
    e["detail"]["requestParameters"] = json!({
        "resourceIdentifier": format!("arn:aws:logs:{REGION}:{}:log-group:/bedrock/invocations:*", a.id)
    });
    assert_eq!(w.run(&e).await.status, Status::Compliant);
}

/// Never break delivery to fix encryption: a key whose policy does not let the service use
/// it is not put in place, and the alert gives the statement to add.
#[tokio::test]
async fn a_key_the_services_may_not_use_is_never_put_in_place() {
    let (w, _, d) = healthy("preflight", "alert", json!({})).await;
    let a = &w.account;
    a.drop_log_group_key(&d.log_group).await;
    a.bucket_encryption(&d.bucket, "AES256", None).await;
    // The remediation key lets CloudWatch Logs use it, but not Bedrock.
    let logs_only = a.cmk_for(&["logs"]).await;
    a.put_settings(
        SETTINGS,
        &json!({"defaults": {"mode": "remediate", "remediationKeys": {REGION: logs_only}}})
            .to_string(),
    )
    .await;
    let f = w
        .run(&logging_event(
            "PutModelInvocationLoggingConfiguration.json",
            &a.id,
            None,
        ))
        .await;
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(
        part(&f, &format!("log group {}", d.log_group)).action,
        ActionKind::Remediated
    );
    let bucket = part(&f, &format!("bucket {}", d.bucket));
    assert_eq!(bucket.action, ActionKind::Alerted);
    let detail = f.action.detail.clone().unwrap();
    assert!(
        detail.contains("does not let bedrock.amazonaws.com use it (kms:GenerateDataKey)"),
        "{detail}"
    );
    assert!(
        detail.contains("kms:EncryptionContext:aws:s3:arn"),
        "the statement to add: {detail}"
    );
    assert!(
        f.action
            .steps
            .iter()
            .any(|s| s.contains("put-bucket-encryption")),
        "{:?}",
        f.action.steps
    );
    assert_eq!(
        a.log_group_key(&d.log_group).await,
        Ok(Some(logs_only.clone()))
    );
    assert_eq!(
        a.bucket_key(&d.bucket).await.0,
        "AES256",
        "the bucket was left alone"
    );
    let title = w.chat_cards(0)[0]["content"]["title"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        title.starts_with("Partly fixed:")
            && title.contains(&format!("still open: bucket {}", d.bucket)),
        "{title}"
    );

    // A key no service may use: nothing is written at all.
    let neither = a.cmk(None).await;
    a.drop_log_group_key(&d.log_group).await;
    a.put_settings(
        SETTINGS,
        &json!({"defaults": {"mode": "remediate", "remediationKeys": {REGION: neither}}})
            .to_string(),
    )
    .await;
    let before = a.calls().len();
    let f = w
        .run(&logging_event(
            "PutModelInvocationLoggingConfiguration.json",
            &a.id,
            None,
        ))
        .await;
    assert_eq!(f.action.kind, ActionKind::Alerted);
    let detail = f.action.detail.unwrap();
    assert!(
        detail.contains(&format!("does not let logs.{REGION}.amazonaws.com use it")),
        "{detail}"
    );
    assert!(
        detail.contains("kms:EncryptionContext:aws:logs:arn"),
        "{detail}"
    );
    assert_eq!(a.log_group_key(&d.log_group).await, Ok(None));
    let writes: Vec<String> = a.calls()[before..]
        .iter()
        .filter(|c| *c == "logs:AssociateKmsKey" || *c == "s3:PutBucketEncryption")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:?}");
}

#[tokio::test]
async fn a_key_per_kind_of_destination() {
    let (w, _, d) = healthy("per-kind", "alert", json!({})).await;
    let a = &w.account;
    let for_logs = a.cmk_for(&["logs"]).await;
    let for_s3 = a.cmk_for(&["bedrock"]).await;
    a.put_settings(
        SETTINGS,
        &json!({"defaults": {"mode": "remediate", "remediationKeys": {REGION: {"logs": for_logs, "s3": for_s3}}}}).to_string(),
    )
    .await;
    a.drop_log_group_key(&d.log_group).await;
    a.bucket_encryption(&d.bucket, "AES256", None).await;
    a.s3.delete_bucket_encryption()
        .bucket(&d.large_data)
        .send()
        .await
        .unwrap();
    let f = w
        .run(&logging_event(
            "PutModelInvocationLoggingConfiguration.json",
            &a.id,
            None,
        ))
        .await;
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(a.log_group_key(&d.log_group).await, Ok(Some(for_logs)));
    assert_eq!(a.bucket_key(&d.bucket).await.1, Some(for_s3.clone()));
    assert_eq!(a.bucket_key(&d.large_data).await.1, Some(for_s3));
    assert_eq!(
        f.protections
            .iter()
            .filter(|p| p.action == ActionKind::Remediated)
            .count(),
        3
    );
}

#[tokio::test]
async fn what_a_bucket_is_encrypted_with_decides_its_verdict() {
    let (w, _, d) = healthy("bucket-cases", "alert", json!({})).await;
    let a = &w.account;
    let bucket = format!("bucket {}", d.bucket);
    for (algorithm, key, status, reason) in [
        ("AES256", None, Status::NonCompliant, "SSE-S3 (AES256)"),
        (
            "aws:kms",
            None,
            Status::NonCompliant,
            "without a key id, so S3 encrypts with the AWS-managed key aws/s3",
        ),
        (
            "aws:kms",
            Some("alias/aws/s3"),
            Status::NonCompliant,
            "an AWS-managed key",
        ),
        (
            "aws:kms:dsse",
            Some("CMK"),
            Status::Compliant,
            "(Enabled, allowed)",
        ),
    ] {
        let cmk = a.cmk_for(&["bedrock"]).await;
        let key = key.map(|k| {
            if k == "CMK" {
                cmk.clone()
            } else {
                k.to_owned()
            }
        });
        a.bucket_encryption(&d.bucket, algorithm, key.as_deref())
            .await;
        let f = w
            .run(&logging_event(
                "PutBucketEncryption.json",
                &a.id,
                Some(&d.bucket),
            ))
            .await;
        let p = part(&f, &bucket);
        assert_eq!(p.verdict, status, "{algorithm} {key:?}: {}", p.reason);
        assert!(
            p.reason.contains(reason),
            "{algorithm} {key:?}: {}",
            p.reason
        );
    }
}

/// A destination the function cannot read is an ERROR of its own, never COMPLIANT; the
/// others are still judged and fixed.
#[tokio::test]
async fn an_unreadable_destination_is_an_error_and_the_rest_is_still_fixed() {
    let (w, key, d) = healthy("unreadable", "remediate", json!({})).await;
    let a = &w.account;
    a.drop_log_group_key(&d.log_group).await;
    a.emulate(json!({"faults": [{"operation": "s3:GetBucketEncryption", "code": "AccessDenied", "status": 403}]}));
    let f = w
        .run(&logging_event(
            "DisassociateKmsKey.json",
            &a.id,
            Some(&d.log_group),
        ))
        .await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    let bucket = part(&f, &format!("bucket {}", d.bucket));
    assert_eq!(bucket.verdict, Status::Error);
    assert!(
        bucket
            .reason
            .contains("s3:GetBucketEncryption failed: AccessDenied"),
        "{}",
        bucket.reason
    );
    assert_eq!(
        part(&f, &format!("log group {}", d.log_group)).action,
        ActionKind::Remediated
    );
    assert_eq!(a.log_group_key(&d.log_group).await, Ok(Some(key)));
}

/// A fix changes the key and nothing it need not: a bucket on dual-layer encryption with the
/// AWS-managed key stays dual-layer, and its bucket-key setting stays as it was.
#[tokio::test]
async fn a_bucket_on_dual_layer_encryption_stays_dual_layer_when_fixed() {
    let (w, key, d) = healthy("dsse-fix", "remediate", json!({})).await;
    let a = &w.account;
    a.bucket_encryption(&d.bucket, "aws:kms:dsse", None).await;
    let f = w
        .run(&logging_event(
            "PutBucketEncryption.json",
            &a.id,
            Some(&d.bucket),
        ))
        .await;
    let p = part(&f, &format!("bucket {}", d.bucket));
    assert_eq!(p.action, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(
        a.bucket_key(&d.bucket).await,
        ("aws:kms:dsse".to_owned(), Some(key.clone()), Some(false))
    );
    let detail = f.action.detail.unwrap_or_default();
    assert!(
        detail.contains(&format!("to aws:kms:dsse with {key};")),
        "{detail}"
    );
}

/// Another account's destinations are read, preflighted and fixed through the member role
/// (MEMBER_ROLE_NAME) in that account, with that account's remediation key.
#[tokio::test]
async fn another_accounts_destinations_are_read_and_fixed_through_the_member_role() {
    let central = Account::new("logging-central").await;
    let member = Account::new("logging-member").await;
    let key = member.cmk_for(&["logs", "bedrock"]).await;
    let d = member.logging(Some(&key)).await;
    member.drop_log_group_key(&d.log_group).await;
    member.bucket_encryption(&d.bucket, "AES256", None).await;
    let doc = json!({"accounts": {member.id.clone(): {"mode": "remediate", "remediationKeys": {REGION: key}}}});
    let mut w = LoggingWorld::new_in(central, Some(doc)).await;
    w.env.member_role_name = Some("bedrock-cmk-guard-invocation-logging-member".to_owned());
    let f = w
        .run(&logging_event(
            "PutModelInvocationLoggingConfiguration.json",
            &member.id,
            None,
        ))
        .await;
    assert_eq!(f.account, member.id);
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(
        member.log_group_key(&d.log_group).await,
        Ok(Some(key.clone()))
    );
    assert_eq!(
        member.bucket_key(&d.bucket).await.1.as_deref(),
        Some(key.as_str())
    );
    let central_reads = w
        .account
        .calls()
        .iter()
        .filter(|c| c.starts_with("bedrock:") || c.starts_with("logs:") || c.starts_with("s3:"))
        .count();
    assert_eq!(central_reads, 0, "nothing is read in the central account");
    assert!(member.calls().iter().any(|c| c == "kms:GetKeyPolicy"));
    assert_eq!(
        w.messages().await.len(),
        1,
        "published to the central topic"
    );
}

/// A read that fails for now (a 5xx) gives the event back (the ledger forgets its claim);
/// the retry judges the configuration and tells it once.
#[tokio::test]
async fn a_read_that_fails_for_now_gives_the_event_back() {
    let (w, _, d) = healthy("read-retried", "alert", json!({})).await;
    let a = &w.account;
    a.drop_log_group_key(&d.log_group).await;
    a.emulate(json!({"faults": [{"operation": "bedrock:GetModelInvocationLoggingConfiguration", "code": "InternalServerException", "status": 500, "count": 1}]}));
    let event = logging_event("DisassociateKmsKey.json", &a.id, Some(&d.log_group));
    assert!(w.try_run(&event).await.is_err(), "the event goes back");
    assert!(w.messages().await.is_empty(), "nothing told yet");
    let released = a
        .calls()
        .iter()
        .filter(|c| c.as_str() == "dynamodb:DeleteItem")
        .count();
    assert_eq!(released, 1, "the claim is given back");
    let f = w.run(&event).await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert_eq!(w.messages().await.len(), 1);
}
