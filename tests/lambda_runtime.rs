//! The function binaries, each run under cargo-lambda's local Lambda runtime
//! (`cargo lambda watch --only-lambda-apis`) and invoked with `cargo lambda invoke`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use bedrock_cmk_guard::finding::{ActionKind, Finding, Status};
use cmk_guard_tests::{
    event, free_port, logging_event, target_dir, wait_for_port, workspace_root, Account, Running,
};

fn cargo_lambda() -> Command {
    let mut c = Command::new("cargo-lambda");
    c.arg("lambda");
    c
}

fn invoke(port: u16, payload: &std::path::Path) -> std::process::Output {
    cargo_lambda()
        .args([
            "invoke",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--data-file",
        ])
        .arg(payload)
        .output()
        .expect("cargo-lambda on PATH (tests/run-all.sh installs it)")
}

/// Everything the invocation printed, answer and errors.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The local runtime and `binary` polling it, for `account`, publishing to `topic_arn`:
/// the port to invoke, and what stops both when dropped.
fn serve(account: &Account, binary: &str, topic_arn: &str) -> (u16, [Running; 2]) {
    let port = free_port();
    let runtime = Running(
        cargo_lambda()
            .args([
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo-lambda on PATH (tests/run-all.sh installs it)"),
    );
    wait_for_port(port, 30);

    let binary = target_dir().join(binary);
    assert!(
        binary.exists(),
        "{} is missing: run cargo build --workspace first",
        binary.display()
    );
    let mut function = Command::new(&binary);
    account.sdk_env(&mut function);
    let function = Running(
        function
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("ALERT_TOPIC_ARN", topic_arn)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (port, [runtime, function])
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cmk-guard-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_function_binary_returns_the_finding_and_rejects_bad_input() {
    let account = Account::new("lambda-runtime").await;
    let (topic_arn, queue_url) = account.alert_topic().await;
    let (_, arn) = account.guardrail("served-by-the-runtime", None).await;
    let (port, _running) = serve(&account, "guardrails", &topic_arn);

    let dir = scratch("lambda");
    let good = dir.join("event.json");
    std::fs::write(
        &good,
        event("CreateGuardrail.json", &account.id, &arn).to_string(),
    )
    .unwrap();
    let out = invoke(port, &good);
    assert!(
        out.status.success(),
        "invoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finding: Finding =
        serde_json::from_slice(&out.stdout).expect("the Lambda result is the Finding JSON");
    assert_eq!(finding.status, Status::NonCompliant);
    assert_eq!(finding.action.kind, ActionKind::Alerted);
    assert_eq!(finding.resource.arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        account.drain(&queue_url).await.len(),
        1,
        "published to the topic"
    );

    // Malformed input takes the Lambda error path (retries, then the DLQ), with a reason.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.bedrock"}"#,
    )
    .unwrap();
    let out = invoke(port, &bad);
    let said = printed(&out);
    assert!(
        !out.status.success(),
        "a bad event must fail the invocation: {said}"
    );
    assert!(
        said.contains("BadEvent") && said.contains("detail"),
        "{said}"
    );
    assert!(account.drain(&queue_url).await.is_empty());

    // A bare CloudTrail record is not what EventBridge delivers: whoever sent it, the function
    // refuses it before reading anything (the CLI takes bare records; the Lambda does not).
    let before = account.calls().len();
    let bare = dir.join("bare.json");
    std::fs::write(
        &bare,
        event("CreateGuardrail.json", &account.id, &arn)["detail"].to_string(),
    )
    .unwrap();
    let out = invoke(port, &bare);
    let said = printed(&out);
    assert!(!out.status.success(), "a bare record must fail: {said}");
    assert!(
        said.contains("BadEvent") && said.contains("bare CloudTrail record"),
        "{said}"
    );
    assert_eq!(
        account.calls().len(),
        before,
        "nothing was read or published"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_invocation_logging_binary_returns_the_finding() {
    let account = Account::new("lambda-runtime-logging").await;
    let (topic_arn, queue_url) = account.alert_topic().await;
    // Destinations as CloudWatch Logs and S3 leave them: no CMK anywhere.
    let d = account.logging(None).await;
    let (port, _running) = serve(&account, "invocation-logging", &topic_arn);

    let dir = scratch("lambda-logging");
    let good = dir.join("event.json");
    let sent = logging_event(
        "PutModelInvocationLoggingConfiguration.json",
        &account.id,
        None,
    );
    std::fs::write(&good, sent.to_string()).unwrap();
    let out = invoke(port, &good);
    assert!(out.status.success(), "invoke failed: {}", printed(&out));
    let finding: Finding =
        serde_json::from_slice(&out.stdout).expect("the Lambda result is the Finding JSON");
    assert_eq!(finding.status, Status::NonCompliant);
    assert_eq!(finding.action.kind, ActionKind::Alerted);
    let failing: Vec<&str> = finding
        .protections
        .iter()
        .filter(|p| p.verdict == Status::NonCompliant)
        .map(|p| p.name.as_str())
        .collect();
    for destination in [&d.log_group, &d.bucket, &d.large_data] {
        assert!(
            failing
                .iter()
                .any(|name| name.ends_with(destination.as_str())),
            "{destination} is named as failing: {failing:?}"
        );
    }
    assert_eq!(account.drain(&queue_url).await.len(), 1, "published");

    // A guardrail event is not this function's: refused, nothing read.
    let before = account.calls().len();
    let other = dir.join("other.json");
    std::fs::write(
        &other,
        event(
            "CreateGuardrail.json",
            &account.id,
            "arn:aws:bedrock:us-east-1:1:guardrail/x",
        )
        .to_string(),
    )
    .unwrap();
    let out = invoke(port, &other);
    let said = printed(&out);
    assert!(
        !out.status.success(),
        "another reactor's event must fail: {said}"
    );
    assert!(said.contains("CreateGuardrail"), "{said}");
    assert_eq!(account.calls().len(), before, "nothing was read");
    let _ = std::fs::remove_dir_all(&dir);
}
