//! Bedrock jobs that copy or write customer data: evaluation jobs (the prompts, datasets and
//! results they hold) and batch inference jobs (the output they write to S3), each encrypted
//! with an allowed customer-managed KMS key.
//!
//! The resource is the job the event names; its one part is the data it holds or writes,
//! judged from the job's key member as GetEvaluationJob / GetModelInvocationJob answer it.

use bedrock_cmk_guard::finding::Resource;
use bedrock_cmk_guard::intake::Trigger;
use bedrock_cmk_guard::job_fix::{
    derived_name, resume_resubmission, stop_and_resubmit, JobCalls, JobFix, RawRequest, Resubmit,
    StopError, Tag, Telling,
};
use bedrock_cmk_guard::jobs::{key_subject, located, phase, text, Phase, Read, ResourceArn};
use bedrock_cmk_guard::raw::RawBody;
use bedrock_cmk_guard::settings::AccountSettings;
use bedrock_cmk_guard::verdict::{KeyProblem, Location};
use bedrock_cmk_guard::{
    AwsError, EventSpec, Fix, FixEffect, FixError, Fixed, Found, Named, Names, Observed,
    Protection, Reactor, Scope, Subject,
};
use serde_json::Value;
use tokio::time::Instant;

/// The data-jobs reactor.
#[derive(Default)]
pub struct DataJobs;

impl DataJobs {
    pub fn new() -> Self {
        DataJobs
    }
}

/// The two kinds of job, told apart by their ARN's resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Evaluation,
    Batch,
}

/// How to read one kind and where its members are (JSON pointers into the Get answer; every
/// name checked against the bedrock service model, 2023-04-20).
pub struct Spec {
    pub arn_type: &'static str,
    pub resource_type: &'static str,
    pub noun: &'static str,
    pub call: &'static str,
    /// The Stop call, as IAM names it.
    pub stop: &'static str,
    pub key: &'static str,
    /// The part: "data", "output".
    pub part: &'static str,
    /// What a running job does with the data: "copies".
    pub verb: &'static str,
}

const EVALUATION: Spec = Spec {
    arn_type: "evaluation-job",
    resource_type: "AWS::Bedrock::EvaluationJob",
    noun: "evaluation job",
    call: "bedrock:GetEvaluationJob",
    stop: "bedrock:StopEvaluationJob",
    key: "/customerEncryptionKeyId",
    part: "job data",
    verb: "copies and writes",
};

const BATCH: Spec = Spec {
    arn_type: "model-invocation-job",
    resource_type: "AWS::Bedrock::ModelInvocationJob",
    noun: "batch inference job",
    call: "bedrock:GetModelInvocationJob",
    stop: "bedrock:StopModelInvocationJob",
    key: "/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
    part: "output data",
    verb: "writes",
};

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Evaluation, Kind::Batch];

    pub fn spec(self) -> &'static Spec {
        match self {
            Kind::Evaluation => &EVALUATION,
            Kind::Batch => &BATCH,
        }
    }

    fn verb(self) -> &'static str {
        self.spec().verb
    }

    /// How a job of this kind is submitted again.
    pub fn resubmit(self) -> &'static Resubmit {
        match self {
            Kind::Evaluation => &RESUBMIT_EVALUATION,
            Kind::Batch => &RESUBMIT_BATCH,
        }
    }

    pub fn of(arn: &str) -> Option<Kind> {
        let resource_type = ResourceArn::parse(arn)?.resource_type();
        Kind::ALL
            .into_iter()
            .find(|k| k.spec().arn_type == resource_type)
    }
}

/// What gather read: the job's answer, raw.
#[derive(Debug, Clone)]
pub struct JobState {
    pub kind: Kind,
    pub arn: String,
    pub raw: Value,
}

impl JobState {
    pub fn name(&self) -> &str {
        text(&self.raw, "/jobName").unwrap_or(&self.arn)
    }

    pub fn status(&self) -> &str {
        text(&self.raw, "/status").unwrap_or("unknown")
    }

    fn running(&self) -> bool {
        phase(self.status()) == Phase::Running
    }
}

impl Reactor for DataJobs {
    type State = JobState;

    const FUNCTION: &'static str = "data-jobs";

    const CHECK: &'static str = "bedrock-data-job-cmk";
    const RESOURCE_TYPE: &'static str = "AWS::Bedrock::EvaluationJob";
    const NOUN: &'static str = "the job";
    /// A running job is stopped, so it copies or writes no more; what it already holds stays
    /// a problem for a person.
    const FIX_EFFECT: FixEffect = FixEffect::Contains;
    const EVENTS: &'static [EventSpec] = &[
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateEvaluationJob",
            names: Names::Resource(&["/responseElements/jobArn"]),
            key_hint_paths: &["/requestParameters/customerEncryptionKeyId"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateModelInvocationJob",
            names: Names::Resource(&["/responseElements/jobArn"]),
            key_hint_paths: &[
                "/requestParameters/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
            ],
        },
    ];

    /// A job's ARN says where it lives, whatever the envelope says.
    fn locate(&self, trigger: &Trigger, home_partition: &str) -> Location {
        located(trigger, home_partition)
    }

    async fn gather(&self, scope: &Scope, named: &Named) -> Result<Found<Self::State>, AwsError> {
        let Named::Resource(arn) = named else {
            return Ok(Found::Unrelated("the event names no job".to_owned()));
        };
        let Some(kind) = Kind::of(arn) else {
            return Ok(Found::Unrelated(format!(
                "{arn} is not the ARN of an evaluation or batch inference job"
            )));
        };
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let raw = match read(&bedrock, kind, arn).await {
            Ok(raw) => raw,
            Err(Read::Gone) => return Ok(Found::Gone),
            Err(Read::Failed(e)) => return Err(e),
        };
        let state = JobState {
            kind,
            arn: arn.clone(),
            raw,
        };
        Ok(Found::Resource(Observed {
            resource: Resource {
                kind: kind.spec().resource_type.to_owned(),
                arn: Some(arn.clone()),
                name: Some(state.name().to_owned()),
            },
            protections: vec![part(&state)],
            busy: None,
            state,
        }))
    }

    fn describe_fix(&self, observed: &Observed<Self::State>, fixes: &[Fix<'_>]) -> String {
        let state = &observed.state;
        let noun = format!("{} \"{}\"", state.kind.spec().noun, state.name());
        match fixes.first() {
            Some(fix) if state.running() && fix.settings.resubmit_jobs => format!(
                "Would stop {noun} (status {}) so that it {} no more under a key it does not choose, and submit it again as \"{}\" with {}: the same configuration, role and tags. What it already holds stays as it is, for a person (the steps say how).",
                state.status(),
                state.kind.verb(),
                derived_name(state.name(), fix.event_id, state.kind.resubmit().lowercase),
                fix.key.arn
            ),
            Some(fix) if state.running() => format!(
                "Would stop {noun} (status {}) so that it {} no more under a key it does not choose. What it already holds stays as it is, and running it again with {} is left to a person (the steps say how).",
                state.status(),
                state.kind.verb(),
                fix.key.arn
            ),
            _ => format!("Nothing: {noun} cannot be fixed automatically."),
        }
    }

    fn manual_steps(
        &self,
        observed: &Observed<Self::State>,
        _parts: &[&Protection],
    ) -> Vec<String> {
        let state = &observed.state;
        manual(state, state.running(), true)
    }

    /// A run of this event died after it stopped the job and before it submitted it again:
    /// submits it now (the token derived from the event makes Bedrock answer with the job the
    /// dead run made, if it got that far).
    async fn resume(
        &self,
        scope: &Scope,
        named: &Named,
        planned: &str,
        settings: &AccountSettings,
        event_id: &str,
    ) -> Option<Result<Fixed, FixError>> {
        let Named::Resource(arn) = named else {
            return None;
        };
        let kind = Kind::of(arn)?;
        if !settings.resubmit_jobs {
            return None;
        }
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let job = JobFix {
            arn,
            status: "/status",
            spec: kind.resubmit(),
            event_id,
            key: planned,
        };
        let calls = DataCalls {
            bedrock: &bedrock,
            kind,
        };
        resume_resubmission(&calls, &job, |raw| {
            telling(&JobState {
                kind,
                arn: arn.clone(),
                raw: raw.clone(),
            })
        })
        .await
    }

    /// Stops a running job (re-read first, read back after).
    async fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        fixes: &[Fix<'_>],
        _deadline: Instant,
    ) -> Vec<Result<Fixed, FixError>> {
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let mut results = Vec::with_capacity(fixes.len());
        for fix in fixes {
            results.push(stop(&bedrock, &observed.state, fix).await);
        }
        results
    }
}

/// How an evaluation job is submitted again (bedrock service model, 2023-04-20).
pub const RESUBMIT_EVALUATION: Resubmit = Resubmit {
    create: "bedrock:CreateEvaluationJob",
    carried: &[
        "jobDescription",
        "roleArn",
        "customerEncryptionKeyId",
        "applicationType",
        "evaluationConfig",
        "inferenceConfig",
        "outputDataConfig",
    ],
    renamed: &[],
    names: &[("jobName", "jobName")],
    lowercase: true,
    output_only: &[
        "status",
        "jobArn",
        "jobType",
        "creationTime",
        "lastModifiedTime",
        "failureMessages",
    ],
    key_in: "/customerEncryptionKeyId",
    key_out: "/customerEncryptionKeyId",
    tags: "jobTags",
};

/// How a batch inference job is submitted again (bedrock service model, 2023-04-20).
pub const RESUBMIT_BATCH: Resubmit = Resubmit {
    create: "bedrock:CreateModelInvocationJob",
    carried: &[
        "roleArn",
        "modelId",
        "inputDataConfig",
        "outputDataConfig",
        "vpcConfig",
        "timeoutDurationInHours",
        "modelInvocationType",
    ],
    renamed: &[],
    names: &[("jobName", "jobName")],
    lowercase: false,
    output_only: &[
        "jobArn",
        "clientRequestToken",
        "status",
        "message",
        "submitTime",
        "lastModifiedTime",
        "endTime",
        "jobExpirationTime",
        "totalRecordCount",
        "processedRecordCount",
        "successRecordCount",
        "errorRecordCount",
    ],
    key_in: "/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
    key_out: "/outputDataConfig/s3OutputDataConfig/s3EncryptionKeyId",
    tags: "tags",
};

/// Stops the job, proven; with `resubmitJobs`, submits it again with the key, proven; and
/// says what that leaves.
async fn stop(
    bedrock: &aws_sdk_bedrock::Client,
    state: &JobState,
    fix: &Fix<'_>,
) -> Result<Fixed, FixError> {
    if !state.running() {
        return Err(FixError::Refused(no_fix(state).to_owned()));
    }
    let job = JobFix {
        arn: &state.arn,
        status: "/status",
        spec: state.kind.resubmit(),
        event_id: fix.event_id,
        key: &fix.key.arn,
    };
    let noun = format!("{} \"{}\"", state.kind.spec().noun, state.name());
    let stopped = |now: &str| {
        format!(
            "Stopped {noun} (it reads {now}): it {} no more under a key it does not choose. What it already holds stays as it is, for a person (the steps say how).",
            state.kind.verb()
        )
    };
    let calls = DataCalls {
        bedrock,
        kind: state.kind,
    };
    let resubmit = fix.settings.resubmit_jobs;
    stop_and_resubmit(
        &calls,
        &job,
        &state.raw,
        &noun,
        resubmit,
        stopped,
        telling(state),
    )
    .await
}

/// The Bedrock calls for one kind of job here.
struct DataCalls<'a> {
    bedrock: &'a aws_sdk_bedrock::Client,
    kind: Kind,
}

impl JobCalls for DataCalls<'_> {
    async fn read(&self, arn: &str) -> Result<Value, Read> {
        read(self.bedrock, self.kind, arn).await
    }

    async fn stop(&self, arn: &str) -> Result<(), StopError> {
        let call = self.kind.spec().stop;
        match self.kind {
            Kind::Evaluation => self
                .bedrock
                .stop_evaluation_job()
                .job_identifier(arn)
                .send()
                .await
                .map(drop)
                .map_err(|e| StopError::of(call, &e)),
            Kind::Batch => self
                .bedrock
                .stop_model_invocation_job()
                .job_identifier(arn)
                .send()
                .await
                .map(drop)
                .map_err(|e| StopError::of(call, &e)),
        }
    }

    async fn create(&self, request: Value) -> Result<String, AwsError> {
        let call = self.kind.resubmit().create;
        let sent = RawRequest::new(&request);
        match self.kind {
            Kind::Evaluation => self
                .bedrock
                .create_evaluation_job()
                .customize()
                .interceptor(sent)
                .send()
                .await
                .map(|out| out.job_arn)
                .map_err(|e| AwsError::from_sdk(call, &e)),
            Kind::Batch => self
                .bedrock
                .create_model_invocation_job()
                .customize()
                .interceptor(sent)
                .send()
                .await
                .map(|out| out.job_arn)
                .map_err(|e| AwsError::from_sdk(call, &e)),
        }
    }

    async fn tags(&self, arn: &str) -> Result<Vec<Tag>, AwsError> {
        let out = self
            .bedrock
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("bedrock:ListTagsForResource", &e))?;
        Ok(out
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }
}

/// How a resubmission of this job is told.
fn telling(state: &JobState) -> Telling {
    Telling {
        carried: "the same configuration, role and tags",
        by_hand: manual(state, false, true),
        after: manual(state, false, false),
    }
}

/// The one part: the data the job holds or writes.
fn part(state: &JobState) -> Protection {
    let spec = state.kind.spec();
    let name = state.name();
    let noun = format!("the {} of {} \"{name}\"", spec.part, spec.noun);
    let subject = match (state.kind, key_subject(&state.raw, spec.key, spec.call)) {
        // A batch job without a key writes its output under the bucket's default encryption,
        // which the job does not choose: said as it is, not as "a key AWS owns".
        (Kind::Batch, Subject::Key(None)) => Subject::Unprotected {
            problem: KeyProblem::AwsOwned,
            reason: format!(
                "{noun} names no KMS key (s3EncryptionKeyId): Bedrock writes it under the output bucket's default encryption, not a customer-managed key the job names"
            ),
        },
        (_, subject) => subject,
    };
    Protection {
        name: spec.part.to_owned(),
        noun,
        kind: "bedrock",
        resource: None,
        subject,
        no_fix: (!state.running()).then(|| no_fix(state).to_owned()),
    }
}

/// Why no automatic fix can change the part.
fn no_fix(state: &JobState) -> &'static str {
    match phase(state.status()) {
        Phase::Running => "the job still runs: stopping it is the automatic fix",
        Phase::Stopping => {
            "the job is being stopped already: a person runs it again with a customer-managed key and removes what it wrote"
        }
        Phase::Ended(_) => "the job has ended, and a job's key cannot be changed: a person runs it again with a customer-managed key",
    }
}

/// What a person does: stop the job while it runs, run it again with a key, and take care of
/// what it already wrote.
/// `running` says whether the job still runs (after the guard stopped it, it does not);
/// `run_again` whether a person must run it again (not after the guard submitted it again).
fn manual(state: &JobState, running: bool, run_again: bool) -> Vec<String> {
    let region = ResourceArn::parse(&state.arn)
        .map(|a| a.region)
        .unwrap_or("<region>");
    let arn = &state.arn;
    let mut steps = Vec::new();
    match state.kind {
        Kind::Evaluation => {
            if running {
                steps.push(format!(
                    "Stop the job: aws bedrock stop-evaluation-job --region {region} --job-identifier {arn}"
                ));
            }
            if run_again {
                steps.push(format!(
                "Run it again with a customer-managed key: aws bedrock create-evaluation-job --region {region} --job-name <new name> --customer-encryption-key-id <CMK ARN>, with the same role, evaluation, inference and output configuration (aws bedrock get-evaluation-job --job-identifier {arn} shows them)."
            ));
            }
            steps.push(format!(
                "Delete this job and what it holds once the new one is done: aws bedrock batch-delete-evaluation-jobs --region {region} --job-identifiers {arn}"
            ));
        }
        Kind::Batch => {
            if running {
                steps.push(format!(
                    "Stop the job: aws bedrock stop-model-invocation-job --region {region} --job-identifier {arn}"
                ));
            }
            if run_again {
                steps.push(format!(
                "Run it again with a customer-managed key for its output: aws bedrock create-model-invocation-job --region {region} --job-name <new name> --output-data-config '{{\"s3OutputDataConfig\":{{\"s3Uri\":\"{}\",\"s3EncryptionKeyId\":\"<CMK ARN>\"}}}}', with the same model, role and input (aws bedrock get-model-invocation-job --job-identifier {arn} shows them).",
                text(&state.raw, "/outputDataConfig/s3OutputDataConfig/s3Uri").unwrap_or("<output S3 URI>")
            ));
            }
            if !running {
                steps.push(
                    "Re-encrypt or delete the output this job already wrote (aws s3 cp --recursive with --sse aws:kms --sse-kms-key-id <CMK ARN> in place)."
                        .to_owned(),
                );
            }
        }
    }
    steps
}

/// The Get answer of the job, raw: every member as Bedrock sent it.
async fn read(bedrock: &aws_sdk_bedrock::Client, kind: Kind, arn: &str) -> Result<Value, Read> {
    let call = kind.spec().call;
    let body = RawBody::new();
    let sent = match kind {
        Kind::Evaluation => bedrock
            .get_evaluation_job()
            .job_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
        Kind::Batch => bedrock
            .get_model_invocation_job()
            .job_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
    };
    sent?;
    body.json()
        .map_err(|e| Read::Failed(AwsError::new(call, e, false)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_is_told_by_its_arn() {
        let arn = |resource: &str| format!("arn:aws:bedrock:us-east-1:111122223333:{resource}");
        assert_eq!(
            Kind::of(&arn("evaluation-job/abcdefghijkl")),
            Some(Kind::Evaluation)
        );
        assert_eq!(
            Kind::of(&arn("model-invocation-job/abcdefghijkl")),
            Some(Kind::Batch)
        );
        assert_eq!(Kind::of(&arn("model-customization-job/m:0/abc")), None);
    }

    #[test]
    fn a_batch_job_without_a_key_is_said_as_it_is() {
        let state = JobState {
            kind: Kind::Batch,
            arn: "arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/abcdefghijkl"
                .to_owned(),
            raw: json!({"jobName": "nightly", "status": "Submitted", "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://out/"}}}),
        };
        let p = part(&state);
        match &p.subject {
            Subject::Unprotected { problem, reason } => {
                assert_eq!(*problem, KeyProblem::AwsOwned);
                assert!(reason.contains("bucket's default encryption"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(manual(&state, true, true)[0].starts_with("Stop the job"));
        let after_stop = manual(&state, false, true);
        assert!(!after_stop.iter().any(|s| s.starts_with("Stop the job")));
        assert!(
            after_stop
                .iter()
                .any(|s| s.starts_with("Re-encrypt or delete the output")),
            "what a stopped batch job wrote stays for a person: {after_stop:?}"
        );
    }
}
