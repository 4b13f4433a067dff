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
    a.logs
        .disassociate_kms_key()
        .log_group_name(&d.log_group)
        .send()
        .await
        .unwrap();
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
