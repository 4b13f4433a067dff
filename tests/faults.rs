//! Faults, for every reactor: throttling, 5xx, slow answers, AccessDenied on the resource's
//! read, a key that cannot be described, a key disabled or deleted while it is checked, the
//! ledger unavailable; and a slow SNS. Under each the reactor retries what is
//! retryable with the SDK's retry configuration, never says COMPLIANT without evidence,
//! reports ERROR with the reason, and fails the invocation (so the event is retried, then
//! kept in the DLQ) when nothing could be decided.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bedrock_cmk_guard::finding::{ActionKind, Status};
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
    /// The CMK the resource is on.
    key: String,
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
        key,
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
        key,
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
        key,
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
        key,
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

/// A Lambda with 6 s left gives one SDK attempt 1 s and the whole call 2 s
/// (`clients::timeouts_for`).
const SHORT_BUDGET: Duration = Duration::from_secs(6);

/// The read answers later than one attempt may wait: the SDK tries again and the event is
/// decided. When every answer is later than the whole call may take, nothing is decided
/// and the invocation fails; once the service is quick again, the retry decides it (the
/// claim was given back).
async fn slow_answers_are_retried_then_given_back<R: Reactor + Default>(c: Case<R>) {
    fault(
        &c,
        json!([{"operation": c.read, "delaySeconds": 1.5, "count": 1}]),
    );
    let f =
        c.w.try_run_within(&c.event, SHORT_BUDGET)
            .await
            .expect("decided after a retry");
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(served(&c, c.read), 2, "one slow read abandoned, one retry");

    let event = cmk_guard_tests::again(c.event.clone());
    fault(&c, json!([{"operation": c.read, "delaySeconds": 2.5}]));
    match c.w.try_run_within(&event, SHORT_BUDGET).await {
        Err(HandlerError::Retry { reason, .. }) => assert!(reason.contains(c.read), "{reason}"),
        other => panic!("expected the invocation to fail for a retry, got {other:?}"),
    }
    fault(&c, json!([]));
    let f =
        c.w.try_run_within(&event, SHORT_BUDGET)
            .await
            .expect("the retry decides");
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert!(c.w.messages().await.is_empty(), "nothing told");
}

/// The key is disabled, or scheduled for deletion, while the resource is being checked
/// (between the event and KMS's answer): the finding is what KMS answered, never COMPLIANT.
async fn a_key_lost_mid_check_is_never_compliant<R: Reactor + Default>(c: Case<R>, delete: bool) {
    fault(
        &c,
        json!([{"operation": "kms:DescribeKey", "delaySeconds": 1.0, "count": 2}]),
    );
    let run = c.w.try_run_retrying(&c.event);
    let lose = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let kms = &c.w.account.kms;
        if delete {
            let scheduled = kms
                .schedule_key_deletion()
                .key_id(&c.key)
                .pending_window_in_days(7);
            scheduled.send().await.expect("deletion scheduled");
        } else {
            kms.disable_key()
                .key_id(&c.key)
                .send()
                .await
                .expect("disabled");
        }
    };
    let (f, ()) = tokio::join!(run, lose);
    let f = f.expect("a finding");
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    let said = if delete { "deletion" } else { "disabled" };
    assert!(f.reason.contains(said), "{}", f.reason);
    assert_eq!(c.w.messages().await.len(), 1, "told");
}

/// SNS answers a Publish later than one SDK attempt may wait: the guard waits for it rather
/// than sending it again (SNS may have taken the first), so one alert arrives, not two.
#[tokio::test]
async fn a_slow_publish_is_awaited_not_sent_twice() {
    let w = World::with_ledger("slow-publish", None).await;
    let (_, arn) = w.account.guardrail("slowly-told", None).await;
    w.account.emulate(
        json!({"faults": [{"operation": "sns:Publish", "delaySeconds": 1.5, "count": 1}]}),
    );
    let e = event("CreateGuardrail.json", &w.account.id, &arn);
    let f = w.try_run_within(&e, SHORT_BUDGET).await.expect("told");
    assert_eq!(f.action.kind, ActionKind::Alerted);
    let publishes = w
        .account
        .calls()
        .iter()
        .filter(|op| *op == "sns:Publish")
        .count();
    assert_eq!(publishes, 1, "sent once");
    assert_eq!(w.messages().await.len(), 1);
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
            async fn slow_answers_are_retried_then_given_back() {
                super::slow_answers_are_retried_then_given_back(super::$case("fault-slow").await)
                    .await;
            }

            #[tokio::test]
            async fn a_key_disabled_mid_check_is_never_compliant() {
                let c = super::$case("fault-disabled").await;
                super::a_key_lost_mid_check_is_never_compliant(c, false).await;
            }

            #[tokio::test]
            async fn a_key_deleted_mid_check_is_never_compliant() {
                let c = super::$case("fault-deleted").await;
                super::a_key_lost_mid_check_is_never_compliant(c, true).await;
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
