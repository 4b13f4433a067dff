//! Faults, for every reactor: throttling, 5xx, AccessDenied on the resource's read, a key
//! that cannot be described, the ledger unavailable. Under each the reactor retries what is
//! retryable with the SDK's retry configuration, never says COMPLIANT without evidence,
//! reports ERROR with the reason, and fails the invocation (so the event is retried, then
//! kept in the DLQ) when nothing could be decided.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::finding::Status;
use bedrock_cmk_guard::pipeline::HandlerError;
use bedrock_cmk_guard::Reactor;
use cmk_guard_tests::{
    event, job_event, logging_event, DataJobsWorld, Guarded, JobKind, LoggingWorld, ModelJobsWorld,
    World,
};
use serde_json::{json, Value};

/// One reactor's world: a resource on a CMK (COMPLIANT when everything can be read, so a
/// fault that were mistaken for evidence would show as COMPLIANT), its event, and the call
/// that reads it.
struct Case<R: Reactor> {
    w: Guarded<R>,
    event: Value,
    read: &'static str,
}

async fn guardrails_case(test: &str) -> Case<::guardrails::Guardrails> {
    let w = World::with_ledger(test, None).await;
    let key = w.account.cmk(None).await;
    let (_, arn) = w.account.guardrail("faulty", Some(&key)).await;
    let event = event("CreateGuardrail.json", &w.account.id, &arn);
    Case {
        w,
        event,
        read: "bedrock:GetGuardrail",
    }
}

async fn invocation_logging_case(test: &str) -> Case<::invocation_logging::InvocationLogging> {
    let w = LoggingWorld::with_ledger(test, None).await;
    let key = w.account.cmk_for(&["logs", "bedrock"]).await;
    w.account.logging(Some(&key)).await;
    let event = logging_event(
        "PutModelInvocationLoggingConfiguration.json",
        &w.account.id,
        None,
    );
    Case {
        w,
        event,
        read: "bedrock:GetModelInvocationLoggingConfiguration",
    }
}

async fn model_jobs_case(test: &str) -> Case<::model_jobs::ModelJobs> {
    let w = ModelJobsWorld::with_ledger(test, None).await;
    let key = w.account.cmk(None).await;
    let arn = w.account.job(JobKind::Customization, Some(&key)).await;
    let event = job_event(JobKind::Customization, &w.account.id, &arn);
    Case {
        w,
        event,
        read: "bedrock:GetModelCustomizationJob",
    }
}

async fn data_jobs_case(test: &str) -> Case<::data_jobs::DataJobs> {
    let w = DataJobsWorld::with_ledger(test, None).await;
    let key = w.account.cmk(None).await;
    let arn = w.account.job(JobKind::Evaluation, Some(&key)).await;
    let event = job_event(JobKind::Evaluation, &w.account.id, &arn);
    Case {
        w,
        event,
        read: "bedrock:GetEvaluationJob",
    }
}

/// How many requests of `operation` the emulator saw for this account, faulted or not.
fn served(c: &Case<impl Reactor>, operation: &str) -> usize {
    c.w.account
        .calls()
        .iter()
        .filter(|op| *op == operation)
        .count()
}

fn fault(c: &Case<impl Reactor>, faults: Value) {
    c.w.account.emulate(json!({ "faults": faults }));
}

/// Throttled once: the SDK's retry reads again and the event is decided as if nothing
/// happened.
async fn throttling_is_retried_by_the_sdk<R: Reactor + Default>(c: Case<R>) {
    fault(
        &c,
        json!([{"operation": c.read, "code": "ThrottlingException", "status": 429, "count": 1}]),
    );
    let f =
        c.w.try_run_retrying(&c.event)
            .await
            .expect("decided after a retry");
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(served(&c, c.read), 2, "one throttled read, one retry");
}

/// A read that keeps failing with 5xx: nothing decided, nothing told, the invocation fails.
async fn a_read_that_keeps_failing_fails_the_invocation<R: Reactor + Default>(c: Case<R>) {
    fault(
        &c,
        json!([{"operation": c.read, "code": "InternalServerException", "status": 500}]),
    );
    match c.w.try_run_retrying(&c.event).await {
        Err(HandlerError::Retry { reason, .. }) => assert!(reason.contains(c.read), "{reason}"),
        other => panic!("expected the invocation to fail for a retry, got {other:?}"),
    }
    assert!(c.w.messages().await.is_empty(), "nothing told");
}

/// AccessDenied on the read: an ERROR that names the call, never COMPLIANT.
async fn access_denied_is_an_error_that_names_the_call<R: Reactor + Default>(c: Case<R>) {
    fault(
        &c,
        json!([{"operation": c.read, "code": "AccessDeniedException", "status": 403}]),
    );
    let f = c.w.try_run_retrying(&c.event).await.expect("a finding");
    assert_eq!(f.status, Status::Error, "{}", f.reason);
    assert!(
        f.reason.contains(c.read) || f.reason.contains("AccessDenied"),
        "{}",
        f.reason
    );
    assert_eq!(c.w.messages().await.len(), 1, "the ERROR is told");
}

/// The key cannot be described: the resource is read, but without evidence about its key
/// it is an ERROR, never COMPLIANT.
async fn an_undescribable_key_is_never_compliant<R: Reactor + Default>(c: Case<R>) {
    fault(
        &c,
        json!([{"operation": "kms:DescribeKey", "code": "AccessDeniedException", "status": 400}]),
    );
    let f = c.w.try_run_retrying(&c.event).await.expect("a finding");
    assert_eq!(f.status, Status::Error, "{}", f.reason);
    assert!(
        f.reason.contains("DescribeKey") || f.reason.contains("AccessDenied"),
        "{}",
        f.reason
    );
}

/// The ledger answers 5xx to everything: the event is given back (not judged twice later,
/// not lost), nothing is told.
async fn an_unavailable_ledger_fails_the_invocation<R: Reactor + Default>(c: Case<R>) {
    let down: Vec<Value> = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"]
        .iter()
        .map(|op| json!({"operation": format!("dynamodb:{op}"), "code": "InternalServerError", "status": 500}))
        .collect();
    fault(&c, Value::Array(down));
    match c.w.try_run_retrying(&c.event).await {
        Err(HandlerError::Retry { reason, .. }) => assert!(reason.contains("dynamodb"), "{reason}"),
        other => panic!("expected the invocation to fail for a retry, got {other:?}"),
    }
    assert!(c.w.messages().await.is_empty(), "nothing told");
}

macro_rules! every_fault {
    ($reactor:ident, $case:ident) => {
        mod $reactor {

            #[tokio::test]
            async fn throttling_is_retried_by_the_sdk() {
                super::throttling_is_retried_by_the_sdk(super::$case("fault-throttle").await).await;
            }

            #[tokio::test]
            async fn a_read_that_keeps_failing_fails_the_invocation() {
                super::a_read_that_keeps_failing_fails_the_invocation(
                    super::$case("fault-5xx").await,
                )
                .await;
            }

            #[tokio::test]
            async fn access_denied_is_an_error_that_names_the_call() {
                super::access_denied_is_an_error_that_names_the_call(
                    super::$case("fault-denied").await,
                )
                .await;
            }

            #[tokio::test]
            async fn an_undescribable_key_is_never_compliant() {
                super::an_undescribable_key_is_never_compliant(super::$case("fault-key").await)
                    .await;
            }

            #[tokio::test]
            async fn an_unavailable_ledger_fails_the_invocation() {
                super::an_unavailable_ledger_fails_the_invocation(
                    super::$case("fault-ledger").await,
                )
                .await;
            }
        }
    };
}

every_fault!(guardrails, guardrails_case);
every_fault!(invocation_logging, invocation_logging_case);
every_fault!(model_jobs, model_jobs_case);
every_fault!(data_jobs, data_jobs_case);
