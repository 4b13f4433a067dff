//! How a job reactor fixes a job that runs without an allowed CMK: a job's key cannot be
//! changed, so the job is stopped (proven by reading it back) and, where the settings ask
//! for it, submitted again with the key: the same request, as JSON, named after the event so
//! that a retry finds what an earlier run made (proven member for member).
//!
//! The Bedrock calls differ per kind of job ([`JobCalls`], implemented by each reactor); the
//! flow around them is here, once.

use std::error::Error;
use std::future::Future;
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Map, Value};

use crate::aws::AwsError;
use crate::jobs::{phase, stopped_by_now, text, Phase, Read};
use crate::raw::differences;
use crate::reactor::{FixError, Fixed};

/// A failed Stop call, sorted: the job was no longer running (Bedrock answers a Stop on an
/// ended job with ValidationException, on a job being stopped with ConflictException), or
/// anything else.
#[derive(Debug, Clone, PartialEq)]
pub enum StopError {
    NotRunning(AwsError),
    Other(AwsError),
}

impl StopError {
    pub fn of<E>(call: &'static str, e: &SdkError<E, HttpResponse>) -> StopError
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let error = AwsError::from_sdk(call, e);
        match AwsError::code_of(e) {
            Some("ValidationException" | "ConflictException") => StopError::NotRunning(error),
            _ => StopError::Other(error),
        }
    }
}

/// Stops a running job, proven: re-reads it first (a job that is no longer running is left
/// alone, and the result says why), stops it, and reads it back (`Stopping` or `Stopped`).
/// `reread` answers the job's status; `Ok` is the status read back.
pub async fn stop_job<R, RF, S, SF>(noun: &str, reread: R, stop: S) -> Result<String, FixError>
where
    R: Fn() -> RF,
    RF: Future<Output = Result<String, Read>>,
    S: FnOnce() -> SF,
    SF: Future<Output = Result<(), StopError>>,
{
    let status = match reread().await {
        Ok(status) => status,
        Err(Read::Gone) => return Err(FixError::Refused(format!("{noun} no longer exists"))),
        Err(Read::Failed(e)) if e.retryable => return Err(FixError::Retry(e)),
        Err(Read::Failed(e)) => {
            return Err(FixError::Refused(format!(
                "{noun} could not be re-read: {e}"
            )))
        }
    };
    if phase(&status) != Phase::Running {
        return Err(FixError::Refused(format!(
            "{noun} is {status} now, no longer running: it cannot be stopped"
        )));
    }
    match stop().await {
        Ok(()) => {}
        Err(StopError::NotRunning(e)) => {
            return Err(FixError::Refused(format!(
                "{noun} could not be stopped: {e}"
            )))
        }
        Err(StopError::Other(e)) if e.retryable => return Err(FixError::Retry(e)),
        Err(StopError::Other(e)) => {
            return Err(FixError::Refused(format!(
                "{noun} could not be stopped: {e}"
            )))
        }
    }
    match reread().await {
        Ok(status) if stopped_by_now(&status) => Ok(status),
        Ok(status) => Err(FixError::Failed {
            error: format!("the Stop of {noun} was accepted, but it reads {status}"),
        }),
        Err(Read::Gone) => Err(FixError::Failed {
            error: format!("the Stop of {noun} was accepted, but it no longer exists"),
        }),
        Err(Read::Failed(e)) => Err(FixError::Failed {
            error: format!("the Stop of {noun} was accepted, but the read-back failed: {e}"),
        }),
    }
}

// ------------------------------------------------------------------ submitting a job again

/// A request body sent exactly as given: it replaces, just before signing, the body the SDK
/// serialized from its typed input. A job is submitted again from the JSON its Get answer
/// held, so every member of the request (deep ones, and any this SDK does not know) goes back
/// exactly as Bedrock reported it. Attach with `.customize().interceptor(RawRequest::new(..))`.
#[derive(Debug, Clone)]
pub struct RawRequest(Arc<Vec<u8>>);

impl RawRequest {
    pub fn new(body: &Value) -> Self {
        RawRequest(Arc::new(body.to_string().into_bytes()))
    }
}

impl Intercept for RawRequest {
    fn name(&self) -> &'static str {
        "RawRequest"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.as_slice().to_vec());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

/// A tag: key and value.
pub type Tag = (String, String);

/// How one kind of job is submitted again from its Get answer. The Create input and the Get
/// output share the shapes of these members (bedrock service model, 2023-04-20), so they are
/// carried as JSON, whole.
#[derive(Debug)]
pub struct Resubmit {
    /// The Create call, as IAM names it.
    pub create: &'static str,
    /// Get members the Create request takes as they are.
    pub carried: &'static [&'static str],
    /// Get members the Create request takes under another name.
    pub renamed: &'static [(&'static str, &'static str)],
    /// Get members holding a name the new job must not share: (Get member, Create member).
    pub names: &'static [(&'static str, &'static str)],
    /// Whether names are lowercase only (evaluation jobs).
    pub lowercase: bool,
    /// Get members that describe the job rather than the request: status, times, ARNs,
    /// metrics, the token and key it was created with.
    pub output_only: &'static [&'static str],
    /// Where the key goes in the Create request (JSON pointer).
    pub key_in: &'static str,
    /// Where the Get answer reports it (JSON pointer).
    pub key_out: &'static str,
    /// The Create member for the job's own tags.
    pub tags: &'static str,
}

/// The name of the job (or model) submitted again: the old name, cut to fit, and a suffix
/// from the event, within the 63 characters every Bedrock job and model name allows. The same
/// event always gives the same name.
pub fn derived_name(old: &str, event_id: &str, lowercase: bool) -> String {
    let mut tag: String = event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    if tag.is_empty() {
        tag.push('0');
    }
    let suffix = format!("-cmk-{}", tag.to_ascii_lowercase());
    let cut: String = old.chars().take(63 - suffix.len()).collect();
    let cut = if lowercase {
        cut.to_ascii_lowercase()
    } else {
        cut
    };
    // Model names allow no two separators in a row, and every name ends alphanumeric.
    let base = cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{base}{suffix}")
}

/// The `clientRequestToken` of the job submitted again: the same for every delivery of the
/// event, so Bedrock answers a second submission with the job the first one made.
pub fn request_token(event_id: &str) -> String {
    let id: String = event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(200)
        .collect();
    format!("cmk-guard-{id}")
}

/// The Create request that submits the job of Get answer `raw` again with `key`, named
/// after the event, with the job's `tags`. `Err` names what the request would lose: a member
/// of the answer this version does not know (it may be one the request needs).
pub fn resubmission(
    spec: &Resubmit,
    raw: &Value,
    event_id: &str,
    key: &str,
    tags: &[Tag],
) -> Result<Value, String> {
    let Value::Object(members) = raw else {
        return Err("the job's answer is not a JSON object".to_owned());
    };
    let known = |m: &str| {
        spec.carried.contains(&m)
            || spec.output_only.contains(&m)
            || spec.renamed.iter().any(|(get, _)| *get == m)
            || spec.names.iter().any(|(get, _)| *get == m)
    };
    let unknown: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .filter(|m| !known(m))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the job's answer holds {}, which this version does not know, so submitting it again could lose it",
            unknown.join(", ")
        ));
    }
    let mut body = Map::new();
    for &m in spec.carried {
        if let Some(v) = members.get(m) {
            body.insert(m.to_owned(), v.clone());
        }
    }
    for &(get, create) in spec.renamed {
        if let Some(v) = members.get(get) {
            body.insert(create.to_owned(), v.clone());
        }
    }
    for &(get, create) in spec.names {
        let old = members
            .get(get)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the job's answer has no {get}"))?;
        body.insert(
            create.to_owned(),
            derived_name(old, event_id, spec.lowercase).into(),
        );
    }
    body.insert(
        "clientRequestToken".to_owned(),
        request_token(event_id).into(),
    );
    let mut body = Value::Object(body);
    set_pointer(&mut body, spec.key_in, key.into())?;
    if !tags.is_empty() {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        body[spec.tags] = tags.into();
    }
    Ok(body)
}

/// Sets the member at `pointer`, making the objects on the way.
fn set_pointer(target: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    let mut at = target;
    let names: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some((last, path)) = names.split_last() else {
        return Err(format!("no member to set at {pointer}"));
    };
    for name in path {
        let Value::Object(members) = at else {
            return Err(format!("{pointer}: {name} is not inside an object"));
        };
        at = members
            .entry((*name).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match at {
        Value::Object(members) => {
            members.insert((*last).to_owned(), value);
            Ok(())
        }
        _ => Err(format!("{pointer}: not inside an object")),
    }
}

/// How the job submitted again (Get answer `new`, tags `new_tags`) differs from the job it
/// replaces (`old`, `old_tags`), beyond its name, token, status and times: every carried
/// member must be equal, the key must be `key`, and the tags the same. Empty: proven.
pub fn resubmission_differences(
    spec: &Resubmit,
    old: &Value,
    new: &Value,
    key: &str,
    tags: (&[Tag], &[Tag]),
) -> Vec<String> {
    let key_path = spec.key_out.trim_start_matches('/').replace('/', ".");
    let mut ignore: Vec<&str> = spec.output_only.to_vec();
    ignore.extend(spec.names.iter().map(|(get, _)| *get));
    ignore.push(&key_path);
    let mut found = differences(old, new, &ignore);
    match text(new, spec.key_out) {
        Some(k) if k == key => {}
        other => found.push(format!("{key_path} is {other:?}, not {key}")),
    }
    let (mut old_tags, mut new_tags) = (tags.0.to_vec(), tags.1.to_vec());
    old_tags.sort();
    new_tags.sort();
    if old_tags != new_tags {
        found.push(format!("tags {new_tags:?}, not {old_tags:?}"));
    }
    found
}

/// A job submitted again, proven equal to the one it replaces but for its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Resubmitted {
    pub name: String,
    pub arn: String,
}

/// Why a job was not submitted again, or not proven.
#[derive(Debug, Clone, PartialEq)]
pub enum ResubmitError {
    /// Nothing was created.
    NotSent(String),
    /// A job was created, but reading it back did not prove it equal: says how it differs.
    Unproven { arn: String, why: String },
}

/// Submits `request` (built by [`resubmission`] from Get answer `old`, with `old_tags`) and
/// proves the job Bedrock made: read back, it must equal the old job in every carried member,
/// carry `key`, and have the same tags. Bedrock answers a request whose token it has seen with
/// the job it made then.
async fn resubmit<C: JobCalls>(
    calls: &C,
    spec: &Resubmit,
    old: (&Value, &[Tag]),
    request: Value,
    key: &str,
) -> Result<Resubmitted, ResubmitError> {
    let name = text(&request, "/jobName").unwrap_or_default().to_owned();
    let arn = calls
        .create(request)
        .await
        .map_err(|e| ResubmitError::NotSent(e.to_string()))?;
    let unproven = |why: String| ResubmitError::Unproven {
        arn: arn.clone(),
        why,
    };
    let new = match calls.read(&arn).await {
        Ok(new) => new,
        Err(Read::Gone) => return Err(unproven("it cannot be found".to_owned())),
        Err(Read::Failed(e)) => return Err(unproven(format!("it could not be read back: {e}"))),
    };
    let new_tags = calls
        .tags(&arn)
        .await
        .map_err(|e| unproven(format!("its tags could not be read back: {e}")))?;
    let found = resubmission_differences(spec, old.0, &new, key, (old.1, &new_tags));
    if !found.is_empty() {
        return Err(unproven(format!(
            "it differs from the job it replaces in {}",
            found.join(", ")
        )));
    }
    Ok(Resubmitted { name, arn })
}

// ------------------------------------------------------------------ the flows

/// The Bedrock calls for one kind of job, as its reactor makes them (each kind has its own
/// operations).
pub trait JobCalls: Sync {
    /// The job's Get answer, raw.
    fn read(&self, arn: &str) -> impl Future<Output = Result<Value, Read>> + Send;
    /// Stops the job.
    fn stop(&self, arn: &str) -> impl Future<Output = Result<(), StopError>> + Send;
    /// Creates a job from `request`, sent as it is ([`RawRequest`]); answers its ARN.
    fn create(&self, request: Value) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// The tags on a job.
    fn tags(&self, arn: &str) -> impl Future<Output = Result<Vec<Tag>, AwsError>> + Send;
}

/// One job to fix.
pub struct JobFix<'a> {
    pub arn: &'a str,
    /// Where its Get answer holds its status (JSON pointer).
    pub status: &'static str,
    /// How it is submitted again.
    pub spec: &'static Resubmit,
    /// The event the fix answers (the new job's name and token derive from it).
    pub event_id: &'a str,
    /// The key the job is submitted again with.
    pub key: &'a str,
}

/// A job's request and tags, ready to submit again; `Err` says why it cannot be.
type Prepared = Result<(Value, Vec<Tag>), String>;

/// Stops the job (`raw`: its Get answer, read in this run; `noun`: how findings name it),
/// proven; with `resubmit`, submits it again, proven; and says what was done. `stopped` words
/// the stop from the status read back.
pub async fn stop_and_resubmit<C: JobCalls>(
    calls: &C,
    job: &JobFix<'_>,
    raw: &Value,
    noun: &str,
    resubmit: bool,
    stopped: impl FnOnce(&str) -> String,
    telling: Telling,
) -> Result<Fixed, FixError> {
    // Prepared before the Stop, from the answer read in this run (a job's request never
    // changes): a job that cannot be submitted again is still stopped, and the finding says why.
    let prepared = match resubmit {
        true => Some(prepare(calls, job, raw).await),
        false => None,
    };
    let reread = || async {
        let raw = calls.read(job.arn).await?;
        Ok(text(&raw, job.status).unwrap_or("unknown").to_owned())
    };
    let now = stop_job(noun, reread, || calls.stop(job.arn)).await?;
    let outcome = match prepared {
        Some(prepared) => Some(submit_again(calls, job, raw, prepared).await),
        None => None,
    };
    told_after_stop(&stopped(&now), job.key, outcome, telling)
}

/// The second step of a fix an earlier run of this event began and did not live to finish:
/// a job stopped by now is submitted again (its token makes Bedrock answer with the job the
/// dead run made, if it got that far). `None`: the job still runs (this run stops and submits
/// it, as any other), or is gone. `telling` words it, from the job's answer.
pub async fn resume_resubmission<C: JobCalls>(
    calls: &C,
    job: &JobFix<'_>,
    telling: impl FnOnce(&Value) -> Telling,
) -> Option<Result<Fixed, FixError>> {
    let raw = match calls.read(job.arn).await {
        Ok(raw) => raw,
        Err(Read::Gone) => return None,
        Err(Read::Failed(e)) => {
            let why = format!("the job could not be re-read to submit it again: {e}");
            return Some(Err(FixError::Refused(why)));
        }
    };
    if !stopped_by_now(text(&raw, job.status).unwrap_or_default()) {
        return None;
    }
    let prepared = prepare(calls, job, &raw).await;
    let outcome = submit_again(calls, job, &raw, prepared).await;
    Some(told_resumed(job.key, outcome, telling(&raw)))
}

/// The job's request and tags, ready to submit again with the key.
async fn prepare<C: JobCalls>(calls: &C, job: &JobFix<'_>, raw: &Value) -> Prepared {
    let tags = calls
        .tags(job.arn)
        .await
        .map_err(|e| format!("its tags could not be read: {e}"))?;
    let request = resubmission(job.spec, raw, job.event_id, job.key, &tags)?;
    Ok((request, tags))
}

/// Submits the stopped job again from what [`prepare`] made of it, proven.
async fn submit_again<C: JobCalls>(
    calls: &C,
    job: &JobFix<'_>,
    raw: &Value,
    prepared: Prepared,
) -> Result<Resubmitted, ResubmitError> {
    let (request, tags) = prepared.map_err(ResubmitError::NotSent)?;
    resubmit(calls, job.spec, (raw, &tags), request, job.key).await
}

/// How a reactor words a resubmission: what it carried, and what a person still does.
pub struct Telling {
    /// What the new job shares with the old: "the same base model, data, ... and tags".
    pub carried: &'static str,
    /// The steps when a person runs the job again.
    pub by_hand: Vec<String>,
    /// The steps left after the guard submitted it again.
    pub after: Vec<String>,
}

/// The fix as told after the job was stopped (`stopped` says so, in words): submitted again
/// (`outcome`), not asked for (`None`), or not submitted (a person runs it again). A job made
/// but not proven is a failed fix.
pub fn told_after_stop(
    stopped: &str,
    key: &str,
    outcome: Option<Result<Resubmitted, ResubmitError>>,
    telling: Telling,
) -> Result<Fixed, FixError> {
    let by_hand = |why: String, steps: Vec<String>| Fixed {
        detail: format!(
            "{stopped}{why} Running it again with {key} is for a person (the steps say how)."
        ),
        steps,
    };
    match outcome {
        None => Ok(by_hand(String::new(), telling.by_hand)),
        Some(Err(ResubmitError::NotSent(why))) => Ok(by_hand(
            format!(" Not submitted again: {why}."),
            telling.by_hand,
        )),
        Some(outcome) => {
            let fixed = told_resumed(key, outcome, telling)?;
            Ok(Fixed {
                detail: format!("{stopped} {}", fixed.detail),
                ..fixed
            })
        }
    }
}

/// The second step of a fix, submitting the stopped job again, as told: only a job submitted
/// again (and proven) is a fix.
pub fn told_resumed(
    key: &str,
    outcome: Result<Resubmitted, ResubmitError>,
    telling: Telling,
) -> Result<Fixed, FixError> {
    match outcome {
        Ok(new) => Ok(Fixed {
            detail: format!(
                "Submitted it again as \"{}\" ({}) with {key}: {}, proven by reading it back.",
                new.name, new.arn, telling.carried
            ),
            steps: telling.after,
        }),
        Err(ResubmitError::NotSent(why)) => Err(FixError::Refused(format!(
            "the stopped job was not submitted again: {why}"
        ))),
        Err(ResubmitError::Unproven { arn, why }) => Err(FixError::Failed {
            error: format!(
                "it was submitted again as {arn}, but {why}: check that job, and stop it if the difference matters"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `stop_job` with statuses read in turn and a Stop that answers `stopped`;
    /// returns the result and whether the Stop was sent.
    async fn stopping(
        statuses: &[&str],
        stopped: Result<(), StopError>,
    ) -> (Result<String, FixError>, bool) {
        let reads =
            std::sync::Mutex::new(statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let sent = std::sync::atomic::AtomicBool::new(false);
        let reread = || async {
            let mut reads = reads.lock().unwrap();
            Ok(if reads.len() > 1 {
                reads.remove(0)
            } else {
                reads[0].clone()
            })
        };
        let stop = || async {
            sent.store(true, std::sync::atomic::Ordering::SeqCst);
            stopped
        };
        let result = stop_job("job \"j\"", reread, stop).await;
        (result, sent.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_stop_is_proven_by_reading_the_job_back() {
        let (result, sent) = stopping(&["InProgress", "Stopping"], Ok(())).await;
        assert_eq!(result, Ok("Stopping".to_owned()));
        assert!(sent);
        // Accepted, yet the job still runs: not proven.
        let (result, _) = stopping(&["InProgress", "InProgress"], Ok(())).await;
        assert!(matches!(result, Err(FixError::Failed { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn a_job_no_longer_running_is_not_stopped() {
        let (result, sent) = stopping(&["Completed"], Ok(())).await;
        assert!(!sent, "no Stop for an ended job");
        assert!(
            matches!(&result, Err(FixError::Refused(why)) if why.contains("Completed now")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_stop_is_final_and_a_failing_one_is_retried() {
        let refused = StopError::NotRunning(AwsError::new(
            "bedrock:StopEvaluationJob",
            "ValidationException: ended",
            false,
        ));
        let (result, _) = stopping(&["InProgress"], Err(refused)).await;
        assert!(matches!(result, Err(FixError::Refused(_))), "{result:?}");
        let busy = StopError::Other(AwsError::new(
            "bedrock:StopEvaluationJob",
            "InternalServerException",
            true,
        ));
        let (result, _) = stopping(&["InProgress"], Err(busy)).await;
        assert!(matches!(result, Err(FixError::Retry(_))), "{result:?}");
    }

    const SPEC: Resubmit = Resubmit {
        create: "bedrock:CreateModelInvocationJob",
        carried: &["roleArn", "outputDataConfig", "vpcConfig"],
        renamed: &[("baseModelArn", "baseModelIdentifier")],
        names: &[("jobName", "jobName")],
        lowercase: false,
        output_only: &["jobArn", "status", "clientRequestToken"],
        key_in: "/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
        key_out: "/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
        tags: "tags",
    };
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const EVENT: &str = "7f1c2e3a-9b8d-4c6e-a5f4-0123456789ab";

    fn old_job() -> Value {
        json!({"jobArn": "arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/abc",
               "jobName": "nightly", "status": "InProgress", "clientRequestToken": "t1",
               "roleArn": "arn:aws:iam::111122223333:role/r", "baseModelArn": "arn:m",
               "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://out/", "future": {"deep": 1}}},
               "vpcConfig": {"subnetIds": ["a", "b"], "securityGroupIds": ["c"]}})
    }

    #[test]
    fn a_resubmission_carries_every_member_and_sets_name_token_key_and_tags() {
        let tags = vec![("team".to_owned(), "ml".to_owned())];
        let request = resubmission(&SPEC, &old_job(), EVENT, KEY, &tags).unwrap();
        assert_eq!(
            request,
            json!({"jobName": "nightly-cmk-7f1c2e3a", "clientRequestToken": "cmk-guard-7f1c2e3a9b8d4c6ea5f40123456789ab",
                   "roleArn": "arn:aws:iam::111122223333:role/r", "baseModelIdentifier": "arn:m",
                   "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://out/", "future": {"deep": 1}, "s3EncryptionKeyId": KEY}},
                   "vpcConfig": {"subnetIds": ["a", "b"], "securityGroupIds": ["c"]},
                   "tags": [{"key": "team", "value": "ml"}]})
        );
        // A top-level member nobody knows may be one the request needs: refused, named.
        let mut odd = old_job();
        odd["newSetting"] = json!(true);
        let why = resubmission(&SPEC, &odd, EVENT, KEY, &tags).unwrap_err();
        assert!(why.contains("newSetting"), "{why}");
    }

    #[test]
    fn a_resubmission_is_proven_only_when_equal_but_for_name_key_and_state() {
        let tags = vec![("team".to_owned(), "ml".to_owned())];
        let request = resubmission(&SPEC, &old_job(), EVENT, KEY, &tags).unwrap();
        let mut new = old_job();
        new["jobName"] = request["jobName"].clone();
        new["jobArn"] = json!("arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/new");
        new["status"] = json!("Submitted");
        new["outputDataConfig"]["s3OutputDataConfig"]["s3EncryptionKeyId"] = json!(KEY);
        let proven = |new: &Value, new_tags: &[Tag]| {
            resubmission_differences(&SPEC, &old_job(), new, KEY, (&tags, new_tags))
        };
        assert!(proven(&new, &tags).is_empty(), "{:?}", proven(&new, &tags));
        let mut other_vpc = new.clone();
        other_vpc["vpcConfig"]["subnetIds"] = json!(["a"]);
        assert_eq!(proven(&other_vpc, &tags), ["vpcConfig.subnetIds"]);
        let mut no_key = new.clone();
        no_key["outputDataConfig"]["s3OutputDataConfig"]
            .as_object_mut()
            .unwrap()
            .remove("s3EncryptionKeyId");
        assert_eq!(proven(&no_key, &tags).len(), 1);
        assert_eq!(proven(&new, &[]).len(), 1, "tags lost");
    }

    #[test]
    fn derived_names_fit_bedrock_and_are_the_same_for_the_same_event() {
        let long = "a".repeat(60) + "_-x";
        let name = derived_name(&long, EVENT, false);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("-cmk-7f1c2e3a"), "{name}");
        assert_eq!(name, derived_name(&long, EVENT, false));
        assert_ne!(name, derived_name(&long, "another-event", false));
        // Cut where a separator ends the old part: trimmed (model names allow none there).
        let cut = derived_name(&format!("{}_-tail", "b".repeat(49)), EVENT, false);
        assert_eq!(cut, format!("{}-cmk-7f1c2e3a", "b".repeat(49)));
        assert_eq!(derived_name("Eval-Job", "EV", true), "eval-job-cmk-ev");
    }
}
