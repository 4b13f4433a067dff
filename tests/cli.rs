//! `cmk-guard check`: what scripts and people trying the tool rely on — the Finding JSON on
//! stdout, nothing changed in dry-run, clear errors and exit codes for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use bedrock_cmk_guard::clients::Env;
use bedrock_cmk_guard::finding::{ActionKind, Finding, Status};
use bedrock_cmk_guard::pipeline::{handle, Options};
use bedrock_cmk_guard::settings::Mode;
use cmk_guard_tests::{event, job_event, target_dir, Account, JobKind, REGION};
use guardrails::Guardrails;
use serde_json::json;

fn cmk_guard(account: &Account, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let binary = target_dir().join("cmk-guard");
    assert!(
        binary.exists(),
        "{} is missing: run cargo build --workspace first",
        binary.display()
    );
    let mut command = Command::new(binary);
    account.sdk_env(&mut command);
    command.args(args);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn write(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cmk-guard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn dry_run_prints_the_finding_and_changes_nothing() {
    let a = Account::new("cli-dry-run").await;
    let key = a.cmk(None).await;
    a.put_settings(
        "/cli/settings",
        &json!({"defaults": {"remediationKeys": {REGION: key}}}).to_string(),
    )
    .await;
    let (id, arn) = a.guardrail("cli", Some("alias/aws/bedrock")).await;
    let file = write(
        "dry-run.json",
        &event("UpdateGuardrail.json", &a.id, &arn).to_string(),
    );

    let out = cmk_guard(
        &a,
        &[
            "check",
            "--event",
            file.to_str().unwrap(),
            "--mode",
            "dry-run",
        ],
        &[("CONFIG_PARAMETER", "/cli/settings")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding: Finding =
        serde_json::from_slice(&out.stdout).expect("stdout is the Finding JSON and nothing else");
    assert_eq!(finding.status, Status::NonCompliant);
    assert_eq!(
        finding.mode,
        Some(Mode::DryRun),
        "--mode replaces the settings' alert"
    );
    assert_eq!(finding.action.kind, ActionKind::WouldRemediate);
    assert!(finding.action.detail.unwrap().contains(&key));
    assert_ne!(
        a.draft(&id).await.kms_key_arn(),
        Some(key.as_str()),
        "dry-run changed nothing"
    );
    assert!(!a
        .calls()
        .iter()
        .any(|c| c.ends_with("UpdateGuardrail") || c.ends_with("Publish")));

    // The same event from standard input, as a bare CloudTrail record.
    let record = event("UpdateGuardrail.json", &a.id, &arn)["detail"].clone();
    let file = write("record.json", &record.to_string());
    let out = cmk_guard(&a, &["check", "--event", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding: Finding = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (finding.mode, finding.action.kind),
        (Some(Mode::Alert), ActionKind::Alerted),
        "no settings: alert"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_exit_code() {
    let a = Account::new("cli-errors").await;
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["check".into()],
            2,
            "required arguments were not provided",
        ),
        (
            vec!["check".into(), "--event".into(), "/nonexistent.json".into()],
            2,
            "/nonexistent.json",
        ),
        (
            vec![
                "check".into(),
                "--event".into(),
                write("not.json", "{{").to_string_lossy().into(),
            ],
            2,
            "is not JSON",
        ),
        (
            vec![
                "check".into(),
                "--event".into(),
                write("x.json", "{}").to_string_lossy().into(),
                "--mode".into(),
                "fix".into(),
            ],
            2,
            "invalid value 'fix' for '--mode <MODE>'",
        ),
        (vec!["sweep".into()], 2, "unrecognized subcommand 'sweep'"),
        (
            vec![
                "check".into(),
                "--event".into(),
                write(
                    "other.json",
                    &json!({"eventName": "InvokeModel", "eventSource": "bedrock.amazonaws.com"})
                        .to_string(),
                )
                .to_string_lossy()
                .into(),
            ],
            1,
            "InvokeModel is not an event this reactor handles",
        ),
    ];
    for (args, code, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cmk_guard(&a, &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

/// The fix an alert suggests (`cmk-guard check ... --mode remediate --force`) works after the
/// guard's Lambda has already handled the event: without --force the ledger says "handled".
#[tokio::test]
async fn force_applies_the_suggested_fix_to_an_event_the_ledger_already_saw() {
    let a = Account::new("cli-force").await;
    let key = a.cmk(None).await;
    let table = a.state_table().await;
    a.put_settings(
        "/cli/settings",
        &json!({"defaults": {"remediationKeys": {REGION: key}}}).to_string(),
    )
    .await;
    let (id, arn) = a.guardrail("cli-force", None).await;
    let file = write(
        "force.json",
        &event("CreateGuardrail.json", &a.id, &arn).to_string(),
    );
    let env = [
        ("CONFIG_PARAMETER", "/cli/settings"),
        ("STATE_TABLE", table.as_str()),
    ];
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--event", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = cmk_guard(&a, &args, &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Finding>(&out.stdout).unwrap()
    };

    let alerted = check(&[]);
    assert_eq!(alerted.action.kind, ActionKind::Alerted);
    assert!(
        alerted
            .action
            .steps
            .iter()
            .any(|s| s.contains("--mode remediate --force")),
        "the alert suggests it: {:?}",
        alerted.action.steps
    );
    let refused = check(&["--mode", "remediate"]);
    assert_eq!(refused.action.kind, ActionKind::None);
    assert!(refused.action.detail.unwrap().contains("already handled"));
    assert!(a.draft(&id).await.kms_key_arn().is_none());

    let fixed = check(&["--mode", "remediate", "--force"]);
    assert_eq!(
        fixed.action.kind,
        ActionKind::Remediated,
        "{:?}",
        fixed.action
    );
    assert_eq!(a.draft(&id).await.kms_key_arn(), Some(key.as_str()));
}

/// Trying the CLI against the real ledger, without a topic, prints only: the deployed
/// function must still tell the problem, not take it as told.
#[tokio::test]
async fn a_local_run_without_a_topic_never_silences_the_deployed_function() {
    let a = Account::new("cli-no-topic").await;
    let table = a.state_table().await;
    let (_, arn) = a.guardrail("cli-no-topic", None).await;
    let file = write(
        "no-topic.json",
        &event("CreateGuardrail.json", &a.id, &arn).to_string(),
    );
    let out = cmk_guard(
        &a,
        &["check", "--event", file.to_str().unwrap()],
        &[("STATE_TABLE", table.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (topic, queue) = a.alert_topic().await;
    let ctx = a.context(Env {
        alert_topic_arn: Some(topic),
        state_table: Some(table),
        app: Some("guardrails".to_owned()),
        ..Env::default()
    });
    let update = event("UpdateGuardrail.json", &a.id, &arn);
    let f = handle(&Guardrails::new(), &ctx, &update, &Options::default())
        .await
        .unwrap();
    assert_eq!(f.action.kind, ActionKind::Alerted, "{:?}", f.action);
    assert_eq!(a.drain(&queue).await.len(), 1);
}

/// The CLI runs whichever reactor handles the event: a log group's event reaches the
/// invocation-logging reactor.
#[tokio::test]
async fn the_cli_runs_the_reactor_of_the_event() {
    let a = Account::new("cli-logging").await;
    let key = a.cmk_for(&["logs", "bedrock"]).await;
    let d = a.logging(Some(&key)).await;
    a.drop_log_group_key(&d.log_group).await;
    let file = write(
        "disassociate.json",
        &cmk_guard_tests::logging_event("DisassociateKmsKey.json", &a.id, Some(&d.log_group))
            ["detail"]
            .to_string(),
    );
    let out = cmk_guard(&a, &["check", "--event", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding: Finding = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finding.check, "bedrock-invocation-logging-cmk");
    assert_eq!(finding.status, Status::NonCompliant);
    assert!(finding.protections.iter().any(
        |p| p.name == format!("log group {}", d.log_group) && p.verdict == Status::NonCompliant
    ));
}

/// `cmk-guard check` runs every job event through its reactor: the model-jobs events under
/// `bedrock-custom-model-cmk`, the data-jobs events under `bedrock-data-job-cmk`.
#[tokio::test]
async fn every_job_event_is_checked() {
    let a = Account::new("cli-jobs").await;
    for kind in JobKind::ALL {
        let arn = a.job(kind, None).await;
        let file = write(
            &format!("{kind:?}.json"),
            &job_event(kind, &a.id, &arn).to_string(),
        );
        let out = cmk_guard(&a, &["check", "--event", file.to_str().unwrap()], &[]);
        assert!(
            out.status.success(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let finding: Finding = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            finding.status,
            Status::NonCompliant,
            "{kind:?}: {}",
            finding.reason
        );
        assert_eq!(finding.resource.arn.as_deref(), Some(arn.as_str()));
        let check = if kind.is_model_job() {
            "bedrock-custom-model-cmk"
        } else {
            "bedrock-data-job-cmk"
        };
        assert_eq!(finding.check, check, "{kind:?}");
    }
}

/// The functions a deployed stack has (template.yaml), by the names doctor looks for.
const FUNCTIONS: [&str; 4] = [
    "guardrails",
    "invocation-logging",
    "model-jobs",
    "data-jobs",
];

/// A deployment as the central stack leaves it, built in the emulator: the four functions
/// (their environment naming topic, settings and member role), one enabled rule each with a
/// dead-letter queue, a logging trail, the topic on a CMK that admits CloudWatch with a
/// confirmed subscription, and a valid settings document. Returns the topic's ARN.
async fn deploy(a: &Account, stack: &str) -> String {
    let (topic, _queue) = a.alert_topic().await;
    let key = a.cmk(None).await;
    let mut policy = cmk_guard_tests::key_policy(&a.id, &[]);
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "AlarmsPublish", "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"
    }));
    a.kms
        .put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    set_topic_key(a, &topic, &key).await;
    a.put_settings("/doctor/settings", r#"{"defaults":{"mode":"alert"}}"#)
        .await;

    let lambda = aws_sdk_lambda::Client::new(&a.config);
    let events = aws_sdk_eventbridge::Client::new(&a.config);
    let dlq = format!("arn:aws:sqs:{REGION}:{}:{stack}-dlq", a.id);
    for f in FUNCTIONS {
        let name = format!("{stack}-{f}");
        let role = a.iam_role(&format!("{stack}-{REGION}-{f}"), "lambda.amazonaws.com");
        let env = aws_sdk_lambda::types::Environment::builder()
            .variables("ALERT_TOPIC_ARN", &topic)
            .variables("CONFIG_PARAMETER", "/doctor/settings")
            .variables("MEMBER_ROLE_NAME", format!("{stack}-{REGION}-{f}-member"))
            .build();
        let created = lambda
            .create_function()
            .function_name(&name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(one_file_zip()))
                    .build(),
            )
            .environment(env)
            .send()
            .await
            .unwrap();
        let rule = format!("{stack}-{f}-rule");
        events
            .put_rule()
            .name(&rule)
            .event_pattern(r#"{"source":["aws.bedrock"]}"#)
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(&rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id(f)
                    .arn(created.function_arn().unwrap())
                    .dead_letter_config(
                        aws_sdk_eventbridge::types::DeadLetterConfig::builder()
                            .arn(&dlq)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    let bucket = format!("{stack}-trail-{}", a.id);
    a.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&a.config);
    cloudtrail
        .create_trail()
        .name("management-events")
        .s3_bucket_name(&bucket)
        .send()
        .await
        .unwrap();
    cloudtrail
        .start_logging()
        .name("management-events")
        .send()
        .await
        .unwrap();
    topic
}

/// Puts the alert topic on `key` (SetTopicAttributes KmsMasterKeyId).
async fn set_topic_key(a: &Account, topic: &str, key: &str) {
    a.sns
        .set_topic_attributes()
        .topic_arn(topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(key)
        .send()
        .await
        .unwrap();
}

/// A zip archive holding one empty `bootstrap` (stored, not compressed): Lambda wants code.
fn one_file_zip() -> Vec<u8> {
    let name = b"bootstrap";
    let crc_of_empty = 0u32;
    let mut local = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    local.extend(crc_of_empty.to_le_bytes());
    local.extend([0u8; 8]); // compressed and uncompressed sizes: 0
    local.extend((name.len() as u16).to_le_bytes());
    local.extend([0, 0]);
    local.extend(name);
    let mut central = vec![0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    central.extend(crc_of_empty.to_le_bytes());
    central.extend([0u8; 8]);
    central.extend((name.len() as u16).to_le_bytes());
    central.extend([0u8; 12]); // extra, comment, disk, internal and external attributes
    central.extend(0u32.to_le_bytes()); // offset of the local header
    central.extend(name);
    let mut end = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0];
    end.extend((central.len() as u32).to_le_bytes());
    end.extend((local.len() as u32).to_le_bytes());
    end.extend([0, 0]);
    [local, central, end].concat()
}

fn doctor(a: &Account, stack: &str, extra: &[&str]) -> (i32, Vec<String>) {
    let mut args = vec!["doctor", "--stack", stack];
    args.extend(extra);
    let out = cmk_guard(a, &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_owned).collect(),
    )
}

fn line<'a>(lines: &'a [String], starts: &str, check: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(starts) && l.contains(check))
        .unwrap_or_else(|| panic!("no {starts:?} line for {check:?} in:\n{}", lines.join("\n")))
}

#[tokio::test]
async fn doctor_passes_a_sound_deployment_and_names_each_broken_part() {
    let a = Account::new("doctor").await;
    let stack = "guard";
    let topic = deploy(&a, stack).await;

    let (status, lines) = doctor(&a, stack, &[]);
    assert_eq!(status, 0, "{}", lines.join("\n"));
    for f in FUNCTIONS {
        line(&lines, "ok", &format!("function {stack}-{f}"));
        line(&lines, "ok", &format!("rules for {stack}-{f}"));
    }
    line(&lines, "ok", &format!("trail in {REGION}"));
    line(&lines, "ok", "lets CloudWatch alarms publish");
    line(&lines, "ok", "subscriptions");
    line(&lines, "ok", "settings /doctor/settings");

    // Break one thing of each kind; each is named, and the run fails.
    let events = aws_sdk_eventbridge::Client::new(&a.config);
    events
        .disable_rule()
        .name(format!("{stack}-model-jobs-rule"))
        .send()
        .await
        .unwrap();
    aws_sdk_cloudtrail::Client::new(&a.config)
        .stop_logging()
        .name("management-events")
        .send()
        .await
        .unwrap();
    set_topic_key(&a, &topic, "alias/aws/sns").await;
    for s in a
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap()
        .subscriptions()
    {
        a.sns
            .unsubscribe()
            .subscription_arn(s.subscription_arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    a.put_settings("/doctor/settings", r#"{"defaults":{"mode":"fix-it"}}"#)
        .await;

    let (status, lines) = doctor(&a, stack, &[]);
    assert_eq!(status, 1, "{}", lines.join("\n"));
    assert!(line(&lines, "FAIL", &format!("rules for {stack}-model-jobs")).contains("DISABLED"));
    line(&lines, "ok", &format!("rules for {stack}-guardrails"));
    assert!(line(&lines, "FAIL", "trail in").contains("is not logging"));
    assert!(line(&lines, "FAIL", "alert topic").contains("AWS-managed"));
    assert!(line(&lines, "FAIL", "subscriptions").contains("nobody is subscribed"));
    assert!(line(&lines, "FAIL", "settings").contains("mode"));
    assert!(lines.last().unwrap().contains("5 failed"), "{lines:?}");
}

#[tokio::test]
async fn doctor_says_what_it_cannot_find_or_cannot_know() {
    let a = Account::new("doctor-missing").await;
    let topic = deploy(&a, "guard").await;

    // A stack name that is not deployed: every function is missing, nothing passes quietly.
    let (status, lines) = doctor(&a, "not-deployed", &[]);
    assert_eq!(status, 1, "{}", lines.join("\n"));
    assert!(
        line(&lines, "FAIL", "function not-deployed-guardrails").contains("--stack"),
        "{lines:?}"
    );

    // Member roles: assumable in one account; refused in another, which these credentials
    // (not the function's role) cannot judge: UNKNOWN, never ok, and the run fails.
    let member = cmk_guard_tests::unique_account("doctor-member");
    let (status, lines) = doctor(&a, "guard", &["--accounts", &member]);
    assert_eq!(status, 0, "{}", lines.join("\n"));
    assert!(line(
        &lines,
        "ok",
        &format!("role/guard-{REGION}-guardrails-member")
    )
    .contains(&member));
    a.emulate(
        json!({"faults": [{"operation": "sts:AssumeRole", "code": "AccessDenied", "status": 403}]}),
    );
    let (status, lines) = doctor(&a, "guard", &["--accounts", &member]);
    assert_eq!(status, 1, "{}", lines.join("\n"));
    assert!(line(&lines, "UNKNOWN", "guardrails-member").contains("trusts only"));

    let (status, _) = doctor(&a, "guard", &["--accounts", "12345"]);
    assert_eq!(status, 2, "a malformed account id is a usage error");

    // A CMK whose policy does not admit CloudWatch: the alarms could not publish.
    let closed = a.cmk(None).await;
    set_topic_key(&a, &topic, &closed).await;
    let (status, lines) = doctor(&a, "guard", &[]);
    assert_eq!(status, 1, "{}", lines.join("\n"));
    assert!(line(&lines, "FAIL", "alert topic").contains("does not let cloudwatch.amazonaws.com"));
}
