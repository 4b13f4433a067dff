//! The model-jobs and data-jobs reactors against the emulator: every event in every mode,
//! with the SNS message and the job read back; jobs on a CMK; a job that already made its
//! model; a job that ended with nothing; a job that cannot be read. Each world has an account
//! of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bedrock_cmk_guard::finding::{ActionKind, Finding, KeyProblem, Severity, Status};
use bedrock_cmk_guard::pipeline::{handle, HandlerError, Options};
use bedrock_cmk_guard::Reactor;
use cmk_guard_tests::{
    job_event, Account, DataJobsWorld, Guarded, JobKind, ModelJobsWorld, REGION, SETTINGS,
};
use serde_json::json;
use tokio::time::Instant;

const MODES: [&str; 4] = ["off", "alert", "dry-run", "remediate"];

/// What one event about one job did: the finding, what reached the subscriber, and the
/// job's status after.
struct Outcome {
    finding: Finding,
    messages: Vec<Finding>,
    after: String,
}

async fn handled<R: Reactor + Default>(
    w: &Guarded<R>,
    kind: JobKind,
    key: Option<&str>,
) -> Outcome {
    let arn = w.account.job(kind, key).await;
    let finding = w.run(&job_event(kind, &w.account.id, &arn)).await;
    let messages = w.messages().await;
    let after = w.account.job_status(kind, &arn).await;
    assert_eq!(finding.resource.arn.as_deref(), Some(arn.as_str()));
    Outcome {
        finding,
        messages,
        after,
    }
}

/// A world with a ledger in `mode`, whose settings name a CMK of its own as the remediation
/// key (the key a stopped job is to be run again with).
async fn in_mode<R: Reactor + Default>(test: &str, mode: &str) -> Guarded<R> {
    let w = Guarded::<R>::with_ledger(test, None).await;
    let key = w.account.cmk(None).await;
    let settings = json!({"defaults": {"mode": mode, "remediationKeys": {REGION: key}}});
    w.account
        .put_settings(SETTINGS, &settings.to_string())
        .await;
    w
}

/// Still being made: a job that runs, or a custom model being created.
fn running(status: &str) -> bool {
    matches!(status, "InProgress" | "Submitted" | "Creating")
}

/// Whether the guard stops this kind while it runs: customization, evaluation and batch jobs
/// have a Stop; import and copy jobs do not, and a custom model is made, not run.
fn stoppable(kind: JobKind) -> bool {
    matches!(
        kind,
        JobKind::Customization | JobKind::Evaluation | JobKind::Batch
    )
}

/// One kind, made without a key, announced in each mode: NON_COMPLIANT every time; told in
/// every mode but `off`; stopped in `remediate` (and said so, never as keyed) when it can
/// be, and left as it was otherwise.
async fn without_a_key_in_every_mode(kind: JobKind) {
    for mode in MODES {
        let at = format!("{kind:?} in {mode}");
        let test = format!("nokey-{kind:?}-{mode}");
        let o = if kind.is_model_job() {
            handled(
                &in_mode::<model_jobs::ModelJobs>(&test, mode).await,
                kind,
                None,
            )
            .await
        } else {
            handled(
                &in_mode::<data_jobs::DataJobs>(&test, mode).await,
                kind,
                None,
            )
            .await
        };
        let f = &o.finding;
        assert_eq!(f.status, Status::NonCompliant, "{at}: {}", f.reason);
        assert_eq!(f.severity, Severity::Medium, "{at}");
        let [part] = f.protections.as_slice() else {
            panic!("{at}: one part: {:?}", f.protections)
        };
        assert_eq!(part.problem, Some(KeyProblem::AwsOwned), "{at}");
        assert_eq!(
            part.fixable,
            stoppable(kind),
            "{at}: only a running job can be stopped"
        );
        assert_eq!(part.key_after, None, "{at}: a stop puts no key anywhere");
        let expected_reason = if kind == JobKind::Batch {
            "bucket's default encryption"
        } else {
            "names no KMS key"
        };
        assert!(f.reason.contains(expected_reason), "{at}: {}", f.reason);
        let detail = f.action.detail.clone().unwrap_or_default();
        let stops = stoppable(kind) && mode == "remediate";
        if stops {
            assert_eq!(o.after, "Stopping", "{at}: the job is stopped");
        } else {
            assert!(
                running(&o.after),
                "{at}: the job is left running: {}",
                o.after
            );
        }
        if mode == "off" {
            assert_eq!(f.action.kind, ActionKind::None, "{at}");
            assert!(o.messages.is_empty(), "{at}: off publishes nothing");
            continue;
        }
        let expected_action = match (stoppable(kind), mode) {
            (true, "remediate") => ActionKind::Remediated,
            (true, "dry-run") => ActionKind::WouldRemediate,
            _ => ActionKind::Alerted,
        };
        assert_eq!(f.action.kind, expected_action, "{at}: {detail}");
        match expected_action {
            ActionKind::Remediated => assert!(detail.starts_with("Stopped "), "{at}: {detail}"),
            ActionKind::WouldRemediate => {
                assert!(detail.starts_with("Would stop "), "{at}: {detail}")
            }
            _ => assert!(
                !detail.starts_with("Stopped") && !detail.starts_with("Would stop"),
                "{at}: nothing stopped: {detail}"
            ),
        }
        assert!(
            !f.action.steps.is_empty(),
            "{at}: the steps to run it again"
        );
        // Once stopped, nobody is told to stop it; while it runs, they are (where they can).
        let says_stop = f.action.steps.iter().any(|s| s.starts_with("Stop the job"));
        assert_eq!(
            says_stop,
            stoppable(kind) && !stops,
            "{at}: {:?}",
            f.action.steps
        );
        let [told] = o.messages.as_slice() else {
            panic!("{at}: one message, got {}", o.messages.len())
        };
        assert_eq!(told.status, Status::NonCompliant, "{at}");
        assert_eq!(told.action.kind, expected_action, "{at}");
        assert_eq!(told.action.steps, f.action.steps, "{at}");
    }
}

#[tokio::test]
async fn customization_job_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::Customization).await;
}

#[tokio::test]
async fn custom_model_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::CustomModel).await;
}

#[tokio::test]
async fn import_job_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::Import).await;
}

#[tokio::test]
async fn copy_job_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::Copy).await;
}

#[tokio::test]
async fn evaluation_job_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::Evaluation).await;
}

#[tokio::test]
async fn batch_job_without_a_key_in_every_mode() {
    without_a_key_in_every_mode(JobKind::Batch).await;
}

/// On an allowed CMK: COMPLIANT, and nothing told.
#[tokio::test]
async fn every_kind_on_a_cmk_is_compliant_and_quiet() {
    let m = ModelJobsWorld::with_ledger(
        "cmk-model-jobs",
        Some(json!({"defaults": {"mode": "alert"}})),
    )
    .await;
    let d = DataJobsWorld::new_in(
        cmk_guard_tests::Account::new("cmk-data-jobs").await,
        Some(json!({"defaults": {"mode": "alert"}})),
    )
    .await;
    for kind in JobKind::ALL {
        let o = if kind.is_model_job() {
            let key = m.account.cmk(None).await;
            handled(&m, kind, Some(&key)).await
        } else {
            let key = d.account.cmk(None).await;
            handled(&d, kind, Some(&key)).await
        };
        assert_eq!(
            o.finding.status,
            Status::Compliant,
            "{kind:?}: {}",
            o.finding.reason
        );
        assert!(o.messages.is_empty(), "{kind:?}");
    }
}

/// A job that already made its model is judged from the model, which the finding names, and
/// the steps say to re-create and delete it.
#[tokio::test]
async fn a_job_that_made_its_model_is_judged_from_the_model() {
    let w = in_mode::<model_jobs::ModelJobs>("made-model", "remediate").await;
    w.account.emulate(json!({"jobCompletionSeconds": 0}));
    let arn = w.account.job(JobKind::Customization, None).await;
    let f = w
        .run(&job_event(JobKind::Customization, &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    let part = &f.protections[0];
    assert!(part.name.starts_with("model "), "{}", part.name);
    assert!(
        f.reason.contains("made by model customization job"),
        "{}",
        f.reason
    );
    assert!(
        f.action
            .steps
            .iter()
            .any(|s| s.contains("delete-custom-model")),
        "{:?}",
        f.action.steps
    );
    assert_eq!(f.action.kind, ActionKind::Alerted);
}

/// A job that ended without a model holds nothing: IGNORED, with the reason, and nothing told.
#[tokio::test]
async fn a_job_that_ended_with_nothing_is_ignored() {
    let w = in_mode::<model_jobs::ModelJobs>("ended-empty", "alert").await;
    w.account.emulate(json!({"jobStopSeconds": 0}));
    let arn = w.account.job(JobKind::Customization, None).await;
    w.account
        .bedrock
        .stop_model_customization_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap();
    let f = w
        .run(&job_event(JobKind::Customization, &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::Ignored, "{}", f.reason);
    assert!(f.reason.contains("ended Stopped"), "{}", f.reason);
    assert!(w.messages().await.is_empty());
}

/// A job the function may not read is an ERROR that names the call, never COMPLIANT.
#[tokio::test]
async fn a_job_that_cannot_be_read_is_an_error() {
    let w = in_mode::<data_jobs::DataJobs>("unreadable-job", "alert").await;
    let key = w.account.cmk(None).await;
    let arn = w.account.job(JobKind::Evaluation, Some(&key)).await;
    w.account.emulate(json!({"faults": [{"operation": "bedrock:GetEvaluationJob", "code": "AccessDeniedException", "status": 403}]}));
    let f = w
        .run(&job_event(JobKind::Evaluation, &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::Error, "{}", f.reason);
    assert!(
        f.reason
            .contains("bedrock:GetEvaluationJob failed: AccessDeniedException"),
        "{}",
        f.reason
    );
    assert_eq!(w.messages().await.len(), 1, "an error is told");
}

/// A remediation key changes nothing here: a model's key is set when it is made, so the
/// finding says why a person re-creates it, and never claims a fix.
#[tokio::test]
async fn remediate_with_a_key_still_never_claims_a_fix() {
    let (w, _key) = ModelJobsWorld::remediating("remediating-jobs").await;
    let arn = w.account.job(JobKind::Import, None).await;
    let f = w
        .run(&job_event(JobKind::Import, &w.account.id, &arn))
        .await;
    assert_eq!(f.action.kind, ActionKind::Alerted);
    assert!(
        f.action
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be stopped"),
        "{:?}",
        f.action.detail
    );
}

/// How many times the emulator served `operation` for this account.
fn served(w: &Guarded<impl Reactor + Default>, operation: &str) -> usize {
    w.account
        .calls()
        .iter()
        .filter(|c| c.ends_with(operation))
        .count()
}

/// A job that completed before the event is handled cannot be stopped: the guard alerts
/// with the steps, never calls Stop, and never reports it fixed.
#[tokio::test]
async fn a_completed_job_is_not_stopped() {
    let w = in_mode::<data_jobs::DataJobs>("completed-evaluation", "remediate").await;
    w.account.emulate(json!({"jobCompletionSeconds": 0}));
    let o = handled(&w, JobKind::Evaluation, None).await;
    assert_eq!(o.after, "Completed");
    let f = &o.finding;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert_eq!(f.action.kind, ActionKind::Alerted, "{:?}", f.action);
    assert!(!f.protections[0].fixable);
    assert_eq!(served(&w, ":StopEvaluationJob"), 0);
    assert!(
        f.action
            .steps
            .iter()
            .any(|s| s.contains("batch-delete-evaluation-jobs")),
        "{:?}",
        f.action.steps
    );
    assert_eq!(o.messages.len(), 1);
}

/// Bedrock refuses the Stop (the job ended between the judgment and the Stop): nothing is
/// claimed; the alert says why and what a person does.
#[tokio::test]
async fn a_stop_bedrock_refuses_is_alerted_never_claimed() {
    let w = in_mode::<data_jobs::DataJobs>("stop-refused", "remediate").await;
    w.account.emulate(json!({"faults": [{"operation": "bedrock:StopEvaluationJob", "code": "ValidationException", "status": 400}]}));
    let o = handled(&w, JobKind::Evaluation, None).await;
    let f = &o.finding;
    assert_eq!(f.action.kind, ActionKind::Alerted, "{:?}", f.action);
    let detail = f.action.detail.clone().unwrap_or_default();
    assert!(
        detail.contains(
            "could not be stopped: bedrock:StopEvaluationJob failed: ValidationException"
        ),
        "{detail}"
    );
    assert!(running(&o.after), "{}", o.after);
    let [told] = o.messages.as_slice() else {
        panic!("one message, got {}", o.messages.len())
    };
    assert_eq!(told.action.kind, ActionKind::Alerted);
    assert!(told
        .action
        .steps
        .iter()
        .any(|s| s.starts_with("Stop the job")));
}

/// A Stop that fails for now (a 5xx) sends the event back; the retry stops the job, and
/// the stop is told once.
#[tokio::test]
async fn a_stop_that_fails_for_now_is_retried_and_told_once() {
    let w = in_mode::<model_jobs::ModelJobs>("stop-retried", "remediate").await;
    w.account.emulate(json!({"faults": [{"operation": "bedrock:StopModelCustomizationJob", "code": "InternalServerException", "status": 500, "count": 1}]}));
    let arn = w.account.job(JobKind::Customization, None).await;
    let event = job_event(JobKind::Customization, &w.account.id, &arn);
    assert!(w.try_run(&event).await.is_err(), "the event goes back");
    assert!(running(
        &w.account.job_status(JobKind::Customization, &arn).await
    ));
    assert!(w.messages().await.is_empty(), "nothing told yet");
    let f = w.run(&event).await;
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(
        w.account.job_status(JobKind::Customization, &arn).await,
        "Stopping"
    );
    assert_eq!(w.messages().await.len(), 1);
}

/// The same event delivered again stops nothing twice and tells nothing twice.
#[tokio::test]
async fn a_redelivered_event_stops_once() {
    let w = in_mode::<data_jobs::DataJobs>("redelivered-stop", "remediate").await;
    let arn = w.account.job(JobKind::Batch, None).await;
    let event = job_event(JobKind::Batch, &w.account.id, &arn);
    let first = w.run(&event).await;
    assert_eq!(
        first.action.kind,
        ActionKind::Remediated,
        "{:?}",
        first.action
    );
    let again = w.run(&event).await;
    assert_ne!(
        again.action.kind,
        ActionKind::Remediated,
        "{:?}",
        again.action
    );
    assert_eq!(served(&w, ":StopModelInvocationJob"), 1);
    assert_eq!(w.messages().await.len(), 1);
}

/// After the guard stopped a job, another event about it tells nothing new: a customization
/// job being stopped makes no model (IGNORED); an evaluation job being stopped still holds
/// what it copied, the problem already told.
#[tokio::test]
async fn after_a_stop_another_event_about_the_job_tells_nothing_new() {
    let m = in_mode::<model_jobs::ModelJobs>("after-stop-model", "remediate").await;
    let arn = m.account.job(JobKind::Customization, None).await;
    let stopped = m
        .run(&job_event(JobKind::Customization, &m.account.id, &arn))
        .await;
    assert_eq!(stopped.action.kind, ActionKind::Remediated);
    let later_event = job_event(JobKind::Customization, &m.account.id, &arn);
    let later = m.run(&later_event).await;
    assert_eq!(later.status, Status::Ignored, "{}", later.reason);
    assert!(
        later.reason.contains("is being stopped"),
        "{}",
        later.reason
    );
    // Its redelivery is answered as handled, not "in progress" until the claim lapses.
    let again = m.try_run(&later_event).await.expect("a finding");
    assert!(
        again
            .action
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("already handled"),
        "{}",
        again.to_json()
    );
    assert_eq!(m.messages().await.len(), 1, "only the stop was told");

    let d = in_mode::<data_jobs::DataJobs>("after-stop-data", "remediate").await;
    let arn = d.account.job(JobKind::Evaluation, None).await;
    let stopped = d
        .run(&job_event(JobKind::Evaluation, &d.account.id, &arn))
        .await;
    assert_eq!(stopped.action.kind, ActionKind::Remediated);
    let later = d
        .run(&job_event(JobKind::Evaluation, &d.account.id, &arn))
        .await;
    assert_eq!(later.status, Status::NonCompliant, "{}", later.reason);
    assert_eq!(later.action.kind, ActionKind::None, "{}", later.to_json());
    assert_eq!(d.messages().await.len(), 1, "only the stop was told");
}

/// A run that dies right after it sent the Stop: a retry while the dead run's time could
/// still be running is turned back; the one after finds the job being stopped (no longer
/// judged) and tells what the dead run left, once, without stopping anything again.
#[tokio::test]
async fn a_run_that_dies_after_its_stop_is_reported_by_the_retry() {
    let w = in_mode::<model_jobs::ModelJobs>("stop-crash", "remediate").await;
    let a = &w.account;
    let arn = a.job(JobKind::Customization, None).await;
    // The Stop is answered late: the run dies while it waits, after the Stop was sent.
    a.emulate(json!({"faults": [{"operation": "bedrock:StopModelCustomizationJob", "delaySeconds": 1.5, "count": 1}]}));
    let e = job_event(JobKind::Customization, &a.id, &arn);
    // Time enough to begin a fix even on a busy machine (a fix needs 7 s left; the whole
    // suite runs at once, and reading the job and the ledger can take seconds then).
    let deadline = Instant::now() + Duration::from_secs(20);
    let options = Options {
        deadline: Some(deadline),
        ..Options::default()
    };
    let ctx = a.context(w.env.clone());
    let mut run = Box::pin(handle(&w.reactor, &ctx, &e, &options));
    loop {
        tokio::select! {
            finished = &mut run => panic!("the run should still be waiting: {finished:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if served(&w, ":StopModelCustomizationJob") == 1 {
                    break;
                }
            }
        }
    }
    drop(run);
    // The emulator carries out the Stop it was sent once the delay is over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.job_status(JobKind::Customization, &arn).await, "Stopping");

    match w.try_run(&e).await {
        Err(HandlerError::InProgress(_)) => {}
        other => panic!("expected InProgress, got {other:?}"),
    }
    // The claim lapses 3 s after the deadline (the ledger counts whole seconds).
    tokio::time::sleep_until(deadline + Duration::from_millis(4500)).await;
    let f = w.run(&e).await;
    let detail = f.action.detail.clone().unwrap_or_default();
    assert!(detail.contains("interrupted while fixing"), "{detail}");
    assert!(detail.contains("is being stopped"), "{detail}");
    assert_eq!(
        f.action.kind,
        ActionKind::Alerted,
        "never claimed: {:?}",
        f.action
    );
    let messages = w.messages().await;
    assert_eq!(
        messages.len(),
        1,
        "what the dead run left is told exactly once"
    );
    assert_eq!(messages[0].action.detail.as_deref(), Some(detail.as_str()));
    assert_eq!(served(&w, ":StopModelCustomizationJob"), 1);
    // The event is done: one more delivery tells nothing.
    w.run(&e).await;
    assert!(w.messages().await.is_empty(), "told once only");
}

/// A world that remediates with a CMK of its own and submits stopped jobs again.
async fn resubmitting<R: Reactor + Default>(test: &str) -> (Guarded<R>, String) {
    let w = Guarded::<R>::with_ledger(test, None).await;
    let key = w.account.cmk(None).await;
    let settings = json!({"defaults": {"mode": "remediate", "remediationKeys": {REGION: key}, "resubmitJobs": true}});
    w.account
        .put_settings(SETTINGS, &settings.to_string())
        .await;
    (w, key)
}

/// The ARN of the job a finding says it submitted.
fn submitted_arn(detail: &str) -> String {
    let after = detail
        .split_once("Submitted it again as")
        .unwrap_or_else(|| panic!("no resubmission in: {detail}"))
        .1;
    let start = after.find("(arn:").expect("the new job's ARN") + 1;
    let len = after[start..].find(')').expect("the ARN's end");
    after[start..start + len].to_owned()
}

/// What a job was asked to do, as Bedrock reports it: every request member but its name,
/// token and key (hyperparameters sorted); and the key, apart.
async fn request_of(a: &Account, kind: JobKind, arn: &str) -> (String, Option<String>) {
    let b = &a.bedrock;
    match kind {
        JobKind::Customization => {
            let j = b
                .get_model_customization_job()
                .job_identifier(arn)
                .send()
                .await
                .unwrap();
            let hyper: BTreeMap<_, _> = j
                .hyper_parameters()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let request = format!(
                "{:?}",
                (
                    j.role_arn(),
                    j.base_model_arn(),
                    j.customization_type(),
                    hyper,
                    j.training_data_config(),
                    j.validation_data_config(),
                    j.output_data_config(),
                    j.vpc_config(),
                    j.customization_config()
                )
            );
            (request, j.output_model_kms_key_arn().map(str::to_owned))
        }
        JobKind::Evaluation => {
            let j = b
                .get_evaluation_job()
                .job_identifier(arn)
                .send()
                .await
                .unwrap();
            let request = format!(
                "{:?}",
                (
                    j.job_description(),
                    j.role_arn(),
                    j.application_type(),
                    j.evaluation_config(),
                    j.inference_config(),
                    j.output_data_config()
                )
            );
            (request, j.customer_encryption_key_id().map(str::to_owned))
        }
        JobKind::Batch => {
            let j = b
                .get_model_invocation_job()
                .job_identifier(arn)
                .send()
                .await
                .unwrap();
            let out = j
                .output_data_config()
                .and_then(|o| o.as_s3_output_data_config().ok())
                .unwrap();
            let request = format!(
                "{:?}",
                (
                    j.role_arn(),
                    j.model_id(),
                    j.input_data_config(),
                    out.s3_uri(),
                    out.s3_bucket_owner(),
                    j.vpc_config(),
                    j.timeout_duration_in_hours(),
                    j.model_invocation_type()
                )
            );
            (request, out.s3_encryption_key_id().map(str::to_owned))
        }
        other => panic!("{other:?} is not resubmitted"),
    }
}

/// With `resubmitJobs`, a job stopped for want of a CMK is submitted again: proven field
/// for field against the original request (every member, the tags), with the key, under a
/// name derived from the old one and the event; the message names both jobs.
async fn resubmitted_field_for_field<R: Reactor + Default>(kind: JobKind) {
    let (w, key) = resubmitting::<R>(&format!("resubmit-{kind:?}")).await;
    let a = &w.account;
    let old = a.full_job(kind).await;
    let event = job_event(kind, &a.id, &old);
    let f = w.run(&event).await;
    let detail = f.action.detail.clone().unwrap_or_default();
    assert_eq!(f.action.kind, ActionKind::Remediated, "{kind:?}: {detail}");
    let new = submitted_arn(&detail);
    assert_ne!(new, old);
    assert_eq!(a.job_status(kind, &old).await, "Stopping", "{kind:?}");
    assert!(running(&a.job_status(kind, &new).await), "{kind:?}");

    let (old_request, old_key) = request_of(a, kind, &old).await;
    let (new_request, new_key) = request_of(a, kind, &new).await;
    assert_eq!(new_request, old_request, "{kind:?}: the same request");
    assert_eq!(old_key, None);
    assert_eq!(
        new_key.as_deref(),
        Some(key.as_str()),
        "{kind:?}: on the key"
    );
    assert_eq!(
        a.job_tags(&new).await,
        a.job_tags(&old).await,
        "{kind:?}: the same tags"
    );
    assert_eq!(a.job_tags(&new).await.len(), 2);
    // Named after the old job and the event, within Bedrock's limits.
    let event_id = event["detail"]["eventID"].as_str().unwrap();
    let tag: String = event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let name = detail.split('"').nth(3).unwrap_or_default().to_owned();
    assert!(
        name.ends_with(&format!("-cmk-{}", tag.to_ascii_lowercase())),
        "{name}"
    );
    assert!(name.len() <= 63, "{name}");

    let [told] = w.messages().await.try_into().expect("one message");
    // The same event again submits nothing twice; the new job's own Create event (the
    // guard's) finds it on the key: silent.
    let creates = || {
        a.calls()
            .iter()
            .filter(|c| c.starts_with("bedrock:Create"))
            .count()
    };
    let created = creates();
    w.run(&event).await;
    assert_eq!(creates(), created, "{kind:?}: no second submission");
    let own = w.run(&job_event(kind, &a.id, &new)).await;
    assert_eq!(own.status, Status::Compliant, "{kind:?}: {}", own.reason);
    assert!(w.messages().await.is_empty(), "{kind:?}: nothing more told");
    let told_detail = told.action.detail.unwrap_or_default();
    assert!(
        told_detail.contains(&old_name(a, kind, &old).await) && told_detail.contains(&new),
        "{told_detail}"
    );
    assert!(
        !told
            .action
            .steps
            .iter()
            .any(|s| s.starts_with("Run it again")),
        "{:?}",
        told.action.steps
    );
}

async fn old_name(a: &Account, kind: JobKind, arn: &str) -> String {
    let b = &a.bedrock;
    match kind {
        JobKind::Customization => b
            .get_model_customization_job()
            .job_identifier(arn)
            .send()
            .await
            .unwrap()
            .job_name()
            .to_owned(),
        JobKind::Evaluation => b
            .get_evaluation_job()
            .job_identifier(arn)
            .send()
            .await
            .unwrap()
            .job_name()
            .to_owned(),
        _ => b
            .get_model_invocation_job()
            .job_identifier(arn)
            .send()
            .await
            .unwrap()
            .job_name()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[tokio::test]
async fn a_stopped_customization_job_is_submitted_again_field_for_field() {
    resubmitted_field_for_field::<model_jobs::ModelJobs>(JobKind::Customization).await;
}

#[tokio::test]
async fn a_stopped_evaluation_job_is_submitted_again_field_for_field() {
    resubmitted_field_for_field::<data_jobs::DataJobs>(JobKind::Evaluation).await;
}

#[tokio::test]
async fn a_stopped_batch_job_is_submitted_again_field_for_field() {
    resubmitted_field_for_field::<data_jobs::DataJobs>(JobKind::Batch).await;
}

/// Runs `event` with a 12 s deadline and drops the run (as a crash would) once the emulator
/// has been sent `operation`; returns the deadline.
async fn crash_after<R: Reactor + Default>(
    w: &Guarded<R>,
    event: &serde_json::Value,
    operation: &str,
) -> Instant {
    // Time enough to begin a fix even on a busy machine (a fix needs 7 s left; the whole
    // suite runs at once, and reading the job and the ledger can take seconds then).
    let deadline = Instant::now() + Duration::from_secs(20);
    let options = Options {
        deadline: Some(deadline),
        ..Options::default()
    };
    let ctx = w.account.context(w.env.clone());
    let before = served(w, operation);
    let mut run = Box::pin(handle(&w.reactor, &ctx, event, &options));
    loop {
        tokio::select! {
            finished = &mut run => panic!("the run should still be waiting: {finished:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if served(w, operation) > before {
                    break;
                }
            }
        }
    }
    drop(run);
    deadline
}

/// The run stops the job and dies before it submits it again: the retry after the dead
/// run's deadline submits it, reports the whole fix once, and one more delivery does nothing.
#[tokio::test]
async fn a_crash_between_stop_and_resubmission_is_finished_by_the_retry() {
    let (w, key) = resubmitting::<model_jobs::ModelJobs>("crash-before-resubmit").await;
    let a = &w.account;
    let old = a.full_job(JobKind::Customization).await;
    // The Stop is answered late: the run dies waiting, after the Stop was sent.
    a.emulate(json!({"faults": [{"operation": "bedrock:StopModelCustomizationJob", "delaySeconds": 1.5, "count": 1}]}));
    let e = job_event(JobKind::Customization, &a.id, &old);
    let created = || served(&w, ":CreateModelCustomizationJob") - 1; // beside the old job's
    let deadline = crash_after(&w, &e, ":StopModelCustomizationJob").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.job_status(JobKind::Customization, &old).await, "Stopping");
    assert_eq!(created(), 0, "the crash came first");
    assert!(w.messages().await.is_empty());

    tokio::time::sleep_until(deadline + Duration::from_millis(4500)).await;
    let f = w.run(&e).await;
    let detail = f.action.detail.clone().unwrap_or_default();
    assert_eq!(f.action.kind, ActionKind::Remediated, "{detail}");
    assert!(detail.contains("interrupted while fixing"), "{detail}");
    assert!(
        detail.contains("Finished now: Submitted it again as"),
        "{detail}"
    );
    let new = submitted_arn(&detail);
    assert_eq!(
        request_of(a, JobKind::Customization, &new).await.0,
        request_of(a, JobKind::Customization, &old).await.0
    );
    assert_eq!(
        request_of(a, JobKind::Customization, &new)
            .await
            .1
            .as_deref(),
        Some(key.as_str())
    );
    assert_eq!(created(), 1);
    assert_eq!(w.messages().await.len(), 1, "the fix is told once");
    w.run(&e).await;
    assert!(w.messages().await.is_empty(), "and only once");
    assert_eq!(created(), 1);
}

/// The run dies after it sent the new job's Create: the retry's Create carries the same
/// token, so Bedrock answers with the job the dead run made: one new job, reported once.
#[tokio::test]
async fn a_redelivered_submission_finds_the_job_it_made() {
    let (w, _key) = resubmitting::<data_jobs::DataJobs>("crash-after-resubmit").await;
    let a = &w.account;
    let old = a.full_job(JobKind::Batch).await;
    a.emulate(json!({"faults": [{"operation": "bedrock:CreateModelInvocationJob", "delaySeconds": 1.5, "count": 1}]}));
    let e = job_event(JobKind::Batch, &a.id, &old);
    let created = || served(&w, ":CreateModelInvocationJob") - 1; // beside the old job's
    let deadline = crash_after(&w, &e, ":CreateModelInvocationJob").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        a.job_status(JobKind::Batch, &old).await,
        "Stopping",
        "stopped before"
    );
    assert!(w.messages().await.is_empty());

    tokio::time::sleep_until(deadline + Duration::from_millis(4500)).await;
    let f = w.run(&e).await;
    let detail = f.action.detail.clone().unwrap_or_default();
    assert_eq!(f.action.kind, ActionKind::Remediated, "{detail}");
    let new = submitted_arn(&detail);
    assert_eq!(created(), 2, "submitted twice ...");
    let jobs = a.bedrock.list_model_invocation_jobs().send().await.unwrap();
    let arns: Vec<&str> = jobs
        .invocation_job_summaries()
        .iter()
        .map(|j| j.job_arn())
        .collect();
    assert_eq!(
        arns.len(),
        2,
        "... yet one new job beside the old: {arns:?}"
    );
    assert!(arns.contains(&new.as_str()) && arns.contains(&old.as_str()));
    assert_eq!(w.messages().await.len(), 1);
}

/// A job that cannot be submitted again (here the stack was deployed without
/// AllowJobResubmission: AccessDenied) is still stopped; the finding says it was not
/// submitted again, and why, and the steps say how to run it again.
#[tokio::test]
async fn a_job_not_submitted_again_is_stopped_and_says_why() {
    let (w, _key) = resubmitting::<data_jobs::DataJobs>("resubmit-denied").await;
    let a = &w.account;
    let old = a.full_job(JobKind::Evaluation).await;
    a.emulate(json!({"faults": [{"operation": "bedrock:CreateEvaluationJob", "code": "AccessDeniedException", "status": 403}]}));
    let f = w.run(&job_event(JobKind::Evaluation, &a.id, &old)).await;
    let detail = f.action.detail.clone().unwrap_or_default();
    assert_eq!(f.action.kind, ActionKind::Remediated, "the stop: {detail}");
    assert_eq!(a.job_status(JobKind::Evaluation, &old).await, "Stopping");
    assert!(
        detail.contains(
            "Not submitted again: bedrock:CreateEvaluationJob failed: AccessDeniedException"
        ),
        "{detail}"
    );
    assert!(!detail.contains("Submitted it again"), "{detail}");
    assert!(
        f.action.steps.iter().any(|s| s.starts_with("Run it again")),
        "{:?}",
        f.action.steps
    );
}

/// Jobs of another account are read, stopped and submitted again through the member role
/// (MEMBER_ROLE_NAME) in that account: every kind of both functions, and an import job whose
/// model exists (read as the imported model). The central account only assumes the role.
async fn through_the_member_role<R: Reactor + Default>(kinds: &[JobKind], role: &str) {
    let central = Account::new("jobs-central").await;
    let member = Account::new("jobs-member").await;
    let key = member.cmk(None).await;
    let doc = json!({"accounts": {member.id.clone(): {"mode": "remediate", "remediationKeys": {REGION: key}, "resubmitJobs": true}}});
    let mut w = Guarded::<R>::new_in(central, Some(doc)).await;
    w.env.member_role_name = Some(role.to_owned());
    for &kind in kinds {
        let arn = if stoppable(kind) {
            member.full_job(kind).await
        } else {
            member.job(kind, None).await
        };
        let f = w.run(&job_event(kind, &member.id, &arn)).await;
        assert_eq!(f.account, member.id, "{kind:?}");
        assert_eq!(f.status, Status::NonCompliant, "{kind:?}: {}", f.reason);
        let detail = f.action.detail.clone().unwrap_or_default();
        if stoppable(kind) {
            assert_eq!(f.action.kind, ActionKind::Remediated, "{kind:?}: {detail}");
            assert_eq!(member.job_status(kind, &arn).await, "Stopping", "{kind:?}");
            let new = submitted_arn(&detail);
            assert!(new.contains(&member.id), "{kind:?}: {new}");
            assert!(running(&member.job_status(kind, &new).await), "{kind:?}");
        } else {
            assert_eq!(f.action.kind, ActionKind::Alerted, "{kind:?}: {detail}");
        }
    }
    if kinds.contains(&JobKind::Import) {
        member.emulate(json!({"jobCompletionSeconds": 0}));
        let arn = member.job(JobKind::Import, None).await;
        let f = w.run(&job_event(JobKind::Import, &member.id, &arn)).await;
        assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
        assert!(
            f.protections[0].name.starts_with("model "),
            "judged from the imported model: {}",
            f.protections[0].name
        );
    }
    let central_bedrock = w
        .account
        .calls()
        .iter()
        .filter(|c| c.starts_with("bedrock:"))
        .count();
    assert_eq!(central_bedrock, 0, "no job is read in the central account");
    assert!(w.account.calls().iter().any(|c| c == "sts:AssumeRole"));
    assert!(member.calls().iter().any(|c| c.starts_with("bedrock:Get")));
}

#[tokio::test]
async fn another_accounts_model_jobs_are_handled_through_the_member_role() {
    through_the_member_role::<model_jobs::ModelJobs>(
        &[
            JobKind::Customization,
            JobKind::CustomModel,
            JobKind::Import,
            JobKind::Copy,
        ],
        "bedrock-cmk-guard-model-jobs-member",
    )
    .await;
}

#[tokio::test]
async fn another_accounts_data_jobs_are_handled_through_the_member_role() {
    through_the_member_role::<data_jobs::DataJobs>(
        &[JobKind::Evaluation, JobKind::Batch],
        "bedrock-cmk-guard-data-jobs-member",
    )
    .await;
}

/// An import job that made its model is judged from the imported model.
#[tokio::test]
async fn an_import_job_that_made_its_model_is_judged_from_the_imported_model() {
    let w = in_mode::<model_jobs::ModelJobs>("made-imported-model", "alert").await;
    w.account.emulate(json!({"jobCompletionSeconds": 0}));
    let arn = w.account.job(JobKind::Import, None).await;
    let f = w
        .run(&job_event(JobKind::Import, &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert!(
        f.protections[0].name.starts_with("model "),
        "{}",
        f.protections[0].name
    );
    assert_eq!(served(&w, ":GetImportedModel"), 1);
    assert_eq!(w.messages().await.len(), 1);
}

/// A read that fails for now (a 5xx) gives the event back (the ledger forgets its claim);
/// the retry judges the job and tells it once.
#[tokio::test]
async fn a_read_that_fails_for_now_gives_the_event_back() {
    let w = in_mode::<data_jobs::DataJobs>("read-retried", "alert").await;
    w.account.emulate(json!({"faults": [{"operation": "bedrock:GetEvaluationJob", "code": "InternalServerException", "status": 500, "count": 1}]}));
    let arn = w.account.job(JobKind::Evaluation, None).await;
    let event = job_event(JobKind::Evaluation, &w.account.id, &arn);
    assert!(w.try_run(&event).await.is_err(), "the event goes back");
    assert!(w.messages().await.is_empty(), "nothing told yet");
    assert_eq!(served(&w, ":DeleteItem"), 1, "the claim is given back");
    let f = w.run(&event).await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert_eq!(w.messages().await.len(), 1);
}
