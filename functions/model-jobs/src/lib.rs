//! Bedrock custom models and the jobs that make them (Conformity Bedrock-004): every model a
//! customization, import or copy job produces, and every custom model created directly,
//! encrypted with an allowed customer-managed KMS key.
//!
//! A model's key is fixed when it is made: the moment to catch a job without a CMK is while
//! it runs. The resource is the job (or the custom model) the event names; its one part is
//! the model it makes. While the job runs the part is judged from the job's key member; once
//! the model exists, from the model itself, which the finding then names.

mod steps;

use bedrock_cmk_guard::finding::Resource;
use bedrock_cmk_guard::intake::Trigger;
use bedrock_cmk_guard::job_fix::{
    derived_name, resume_resubmission, stop_and_resubmit, JobCalls, JobFix, RawRequest, Resubmit,
    StopError, Tag, Telling,
};
pub use bedrock_cmk_guard::jobs::located;
use bedrock_cmk_guard::jobs::{key_subject, phase, text, Phase, Read, ResourceArn};
use bedrock_cmk_guard::raw::RawBody;
use bedrock_cmk_guard::settings::AccountSettings;
use bedrock_cmk_guard::verdict::Location;
use bedrock_cmk_guard::{
    AwsError, EventSpec, Fix, FixEffect, FixError, Fixed, Found, Named, Names, Observed,
    Protection, Reactor, Scope, Subject,
};
use serde_json::Value;
use tokio::time::Instant;

/// The model-jobs reactor.
#[derive(Default)]
pub struct ModelJobs;

impl ModelJobs {
    pub fn new() -> Self {
        ModelJobs
    }
}

/// The four things this reactor judges, told apart by their ARN's resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customization,
    CustomModel,
    Import,
    Copy,
}

/// How to read one kind and where its members are (JSON pointers into the Get answer; every
/// name checked against the bedrock service model, 2023-04-20).
pub struct Spec {
    pub arn_type: &'static str,
    pub resource_type: &'static str,
    /// How findings name it: "model customization job".
    pub noun: &'static str,
    pub call: &'static str,
    pub name: &'static str,
    pub key: &'static str,
    pub status: &'static str,
    /// The part, before the model exists: "output model".
    pub part: &'static str,
    /// The model the job makes, once it exists.
    pub produces: Option<Produces>,
}

#[derive(Debug, Clone, Copy)]
pub struct Produces {
    pub arn: &'static str,
    pub model: ModelKind,
}

/// Which Get reads a model a job produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Custom,
    Imported,
}

impl ModelKind {
    fn call(self) -> &'static str {
        match self {
            ModelKind::Custom => "bedrock:GetCustomModel",
            ModelKind::Imported => "bedrock:GetImportedModel",
        }
    }
}

const CUSTOMIZATION: Spec = Spec {
    arn_type: "model-customization-job",
    resource_type: "AWS::Bedrock::ModelCustomizationJob",
    noun: "model customization job",
    call: "bedrock:GetModelCustomizationJob",
    name: "/jobName",
    key: "/outputModelKmsKeyArn",
    status: "/status",
    part: "output model",
    produces: Some(Produces {
        arn: "/outputModelArn",
        model: ModelKind::Custom,
    }),
};

const CUSTOM_MODEL: Spec = Spec {
    arn_type: "custom-model",
    resource_type: "AWS::Bedrock::CustomModel",
    noun: "custom model",
    call: "bedrock:GetCustomModel",
    name: "/modelName",
    key: "/modelKmsKeyArn",
    status: "/modelStatus",
    part: "model",
    produces: None,
};

const IMPORT: Spec = Spec {
    arn_type: "model-import-job",
    resource_type: "AWS::Bedrock::ModelImportJob",
    noun: "model import job",
    call: "bedrock:GetModelImportJob",
    name: "/jobName",
    key: "/importedModelKmsKeyArn",
    status: "/status",
    part: "imported model",
    produces: Some(Produces {
        arn: "/importedModelArn",
        model: ModelKind::Imported,
    }),
};

const COPY: Spec = Spec {
    arn_type: "model-copy-job",
    resource_type: "AWS::Bedrock::ModelCopyJob",
    noun: "model copy job",
    call: "bedrock:GetModelCopyJob",
    name: "/targetModelName",
    key: "/targetModelKmsKeyArn",
    status: "/status",
    part: "model copy",
    produces: Some(Produces {
        arn: "/targetModelArn",
        model: ModelKind::Custom,
    }),
};

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Customization,
        Kind::CustomModel,
        Kind::Import,
        Kind::Copy,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            Kind::Customization => &CUSTOMIZATION,
            Kind::CustomModel => &CUSTOM_MODEL,
            Kind::Import => &IMPORT,
            Kind::Copy => &COPY,
        }
    }

    /// The kind an ARN names, by its resource type.
    pub fn of(arn: &str) -> Option<Kind> {
        let resource_type = ResourceArn::parse(arn)?.resource_type();
        Kind::ALL
            .into_iter()
            .find(|k| k.spec().arn_type == resource_type)
    }
}

/// What gather read: the job's (or model's) answer and, once it exists, the model it made.
#[derive(Debug, Clone)]
pub struct JobState {
    pub kind: Kind,
    pub arn: String,
    pub raw: Value,
    pub model: Option<Value>,
}

impl JobState {
    pub fn name(&self) -> &str {
        text(&self.raw, self.kind.spec().name).unwrap_or(&self.arn)
    }

    pub fn status(&self) -> &str {
        text(&self.raw, self.kind.spec().status).unwrap_or("unknown")
    }

    /// A customization job that still runs and has made no model: the one thing here a
    /// fix (a Stop) can change.
    fn stoppable(&self) -> bool {
        self.kind == Kind::Customization
            && self.model.is_none()
            && phase(self.status()) == Phase::Running
    }
}

impl Reactor for ModelJobs {
    type State = JobState;

    const FUNCTION: &'static str = "model-jobs";

    const CHECK: &'static str = "bedrock-custom-model-cmk";
    /// What every kind here makes; a finding about a job names the job's own type.
    const RESOURCE_TYPE: &'static str = "AWS::Bedrock::CustomModel";
    const NOUN: &'static str = "the model job";
    /// A running customization job is stopped before it makes its model; nothing else here
    /// can be changed.
    const FIX_EFFECT: FixEffect = FixEffect::Stops;
    const EVENTS: &'static [EventSpec] = &[
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateModelCustomizationJob",
            names: Names::Resource(&["/responseElements/jobArn"]),
            key_hint_paths: &["/requestParameters/customModelKmsKeyId"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateCustomModel",
            names: Names::Resource(&["/responseElements/modelArn"]),
            key_hint_paths: &["/requestParameters/modelKmsKeyArn"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateModelImportJob",
            names: Names::Resource(&["/responseElements/jobArn"]),
            key_hint_paths: &["/requestParameters/importedModelKmsKeyId"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateModelCopyJob",
            names: Names::Resource(&["/responseElements/jobArn"]),
            key_hint_paths: &["/requestParameters/modelKmsKeyId"],
        },
    ];

    /// A job's ARN says where it lives, whatever the envelope says.
    fn locate(&self, trigger: &Trigger, home_partition: &str) -> Location {
        located(trigger, home_partition)
    }

    async fn gather(&self, scope: &Scope, named: &Named) -> Result<Found<Self::State>, AwsError> {
        let Named::Resource(arn) = named else {
            return Ok(Found::Unrelated(
                "the event names no job or model".to_owned(),
            ));
        };
        let Some(kind) = Kind::of(arn) else {
            return Ok(Found::Unrelated(format!(
                "{arn} is not the ARN of a model customization, import or copy job or of a custom model"
            )));
        };
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let raw = match read(&bedrock, kind, arn).await {
            Ok(raw) => raw,
            Err(Read::Gone) => return Ok(Found::Gone),
            Err(Read::Failed(e)) => return Err(e),
        };
        let model = match produced(kind, &raw) {
            Some((model_kind, model_arn)) => {
                match read_model(&bedrock, model_kind, model_arn).await {
                    Ok(model) => Some(Ok(model)),
                    // Made, then deleted: only the job's own record is left.
                    Err(Read::Gone) => None,
                    Err(Read::Failed(e)) => Some(Err(e)),
                }
            }
            None => None,
        };
        let state = JobState {
            kind,
            arn: arn.clone(),
            raw,
            model: model.as_ref().and_then(|m| m.as_ref().ok().cloned()),
        };
        let protection = match part(&state, model.as_ref().and_then(|m| m.as_ref().err())) {
            Ok(protection) => protection,
            Err(nothing_held) => return Ok(Found::Unrelated(nothing_held)),
        };
        Ok(Found::Resource(Observed {
            resource: Resource {
                kind: kind.spec().resource_type.to_owned(),
                arn: Some(arn.clone()),
                name: Some(state.name().to_owned()),
            },
            protections: vec![protection],
            busy: None,
            state,
        }))
    }

    fn describe_fix(&self, observed: &Observed<Self::State>, fixes: &[Fix<'_>]) -> String {
        let state = &observed.state;
        let spec = state.kind.spec();
        match fixes.first() {
            Some(fix) if state.stoppable() && fix.settings.resubmit_jobs => format!(
                "Would stop {} \"{}\" (status {}) before it makes a model on a key AWS owns, and submit it again as \"{}\" with {}: the same base model, data, hyperparameters, role, VPC and job tags.",
                spec.noun,
                state.name(),
                state.status(),
                derived_name(state.name(), fix.event_id, RESUBMIT.lowercase),
                fix.key.arn
            ),
            Some(fix) if state.stoppable() => format!(
                "Would stop {} \"{}\" (status {}) before it makes a model on a key AWS owns. Running it again with {} is left to a person (the steps say how).",
                spec.noun,
                state.name(),
                state.status(),
                fix.key.arn
            ),
            _ => format!(
                "Nothing: {} \"{}\" cannot be fixed automatically.",
                spec.noun,
                state.name()
            ),
        }
    }

    fn manual_steps(
        &self,
        observed: &Observed<Self::State>,
        _parts: &[&Protection],
    ) -> Vec<String> {
        let state = &observed.state;
        steps::manual(state, phase(state.status()) == Phase::Running)
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
        if !settings.resubmit_jobs || Kind::of(arn) != Some(Kind::Customization) {
            return None;
        }
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let job = JobFix {
            arn,
            status: CUSTOMIZATION.status,
            spec: &RESUBMIT,
            event_id,
            key: planned,
        };
        resume_resubmission(&CustomizationCalls(&bedrock), &job, |raw| {
            telling(&JobState {
                kind: Kind::Customization,
                arn: arn.clone(),
                raw: raw.clone(),
                model: None,
            })
        })
        .await
    }

    /// Stops a running customization job (re-read first, read back after); nothing else
    /// here can be changed.
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
            results.push(stop_customization(&bedrock, &observed.state, fix).await);
        }
        results
    }
}

/// How a customization job is submitted again (bedrock service model, 2023-04-20).
pub const RESUBMIT: Resubmit = Resubmit {
    create: "bedrock:CreateModelCustomizationJob",
    carried: &[
        "roleArn",
        "customizationType",
        "hyperParameters",
        "trainingDataConfig",
        "validationDataConfig",
        "outputDataConfig",
        "vpcConfig",
        "customizationConfig",
    ],
    renamed: &[("baseModelArn", "baseModelIdentifier")],
    names: &[
        ("jobName", "jobName"),
        ("outputModelName", "customModelName"),
    ],
    lowercase: false,
    output_only: &[
        "jobArn",
        "outputModelArn",
        "clientRequestToken",
        "status",
        "statusDetails",
        "failureMessage",
        "creationTime",
        "lastModifiedTime",
        "endTime",
        "outputModelKmsKeyArn",
        "trainingMetrics",
        "validationMetrics",
    ],
    key_in: "/customModelKmsKeyId",
    key_out: "/outputModelKmsKeyArn",
    tags: "jobTags",
};

/// Stops the customization job, proven; with `resubmitJobs`, submits it again with the key,
/// proven; and says what that leaves.
async fn stop_customization(
    bedrock: &aws_sdk_bedrock::Client,
    state: &JobState,
    fix: &Fix<'_>,
) -> Result<Fixed, FixError> {
    if !state.stoppable() {
        return Err(FixError::Refused(no_fix(state.kind).to_owned()));
    }
    let job = JobFix {
        arn: &state.arn,
        status: CUSTOMIZATION.status,
        spec: &RESUBMIT,
        event_id: fix.event_id,
        key: &fix.key.arn,
    };
    let noun = format!("{} \"{}\"", state.kind.spec().noun, state.name());
    let stopped = |now: &str| {
        format!(
            "Stopped {noun} (it reads {now}): it makes no model, so nothing it made is left on a key AWS owns."
        )
    };
    let calls = CustomizationCalls(bedrock);
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

/// The Bedrock calls for a customization job, the one kind here a fix can stop.
struct CustomizationCalls<'a>(&'a aws_sdk_bedrock::Client);

impl JobCalls for CustomizationCalls<'_> {
    async fn read(&self, arn: &str) -> Result<Value, Read> {
        read(self.0, Kind::Customization, arn).await
    }

    async fn stop(&self, arn: &str) -> Result<(), StopError> {
        self.0
            .stop_model_customization_job()
            .job_identifier(arn)
            .send()
            .await
            .map(drop)
            .map_err(|e| StopError::of("bedrock:StopModelCustomizationJob", &e))
    }

    async fn create(&self, request: Value) -> Result<String, AwsError> {
        self.0
            .create_model_customization_job()
            .customize()
            .interceptor(RawRequest::new(&request))
            .send()
            .await
            .map(|out| out.job_arn)
            .map_err(|e| AwsError::from_sdk(RESUBMIT.create, &e))
    }

    async fn tags(&self, arn: &str) -> Result<Vec<Tag>, AwsError> {
        let out = self
            .0
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
        carried: "the same base model, data, hyperparameters, role, VPC and job tags",
        by_hand: steps::manual(state, false),
        after: steps::after_resubmission(state),
    }
}

/// The model a job made, if its answer names one.
fn produced(kind: Kind, raw: &Value) -> Option<(ModelKind, &str)> {
    let produces = kind.spec().produces?;
    text(raw, produces.arn).map(|arn| (produces.model, arn))
}

/// The one part: the model, judged from the model itself once it exists, from the job's key
/// member before. `Err` when nothing the job made holds data (it ended without a model, or
/// its model was deleted), with the reason the finding gives.
fn part(state: &JobState, model_error: Option<&AwsError>) -> Result<Protection, String> {
    let spec = state.kind.spec();
    let name = state.name();
    let status = state.status();
    if let Some(model) = &state.model {
        let model_name = text(model, "/modelName").unwrap_or(name);
        let model_kind = spec.produces.map(|p| p.model).unwrap_or(ModelKind::Custom);
        return Ok(Protection {
            name: format!("model {model_name}"),
            noun: format!("model {model_name} made by {} \"{name}\"", spec.noun),
            kind: "bedrock",
            resource: text(model, "/modelArn").map(str::to_owned),
            subject: key_subject(model, "/modelKmsKeyArn", model_kind.call()),
            no_fix: Some(
                "the model already exists, and a model's key cannot be changed: re-create it with a customer-managed key and delete this one"
                    .to_owned(),
            ),
        });
    }
    if let Some(error) = model_error {
        return Ok(Protection {
            name: spec.part.to_owned(),
            noun: format!("the {} of {} \"{name}\"", spec.part, spec.noun),
            kind: "bedrock",
            resource: produced(state.kind, &state.raw).map(|(_, arn)| arn.to_owned()),
            subject: Subject::Unreadable(error.clone()),
            no_fix: None,
        });
    }
    match (state.kind, phase(status)) {
        // A custom model whose creation failed, or a job that ended without a model (or whose
        // model was deleted): nothing it made holds data.
        (Kind::CustomModel, Phase::Ended(s)) if s == "Failed" => Err(format!(
            "custom model \"{name}\" failed to be created: no model holds data"
        )),
        // Being stopped (by the guard or a person): it will make no model.
        (Kind::Customization, Phase::Stopping) => Err(format!(
            "{} \"{name}\" is being stopped: it makes no model, so nothing it made holds data",
            spec.noun
        )),
        (Kind::Customization | Kind::Import | Kind::Copy, Phase::Ended(s)) => Err(format!(
            "{} \"{name}\" ended {s}, and no model it made exists (none was made, or it was deleted): nothing it made holds data",
            spec.noun
        )),
        (kind, _) => Ok(Protection {
            name: spec.part.to_owned(),
            noun: format!("the {} of {} \"{name}\"", spec.part, spec.noun),
            kind: "bedrock",
            resource: None,
            subject: key_subject(&state.raw, spec.key, spec.call),
            no_fix: (!state.stoppable()).then(|| no_fix(kind).to_owned()),
        }),
    }
}

/// Why no automatic fix can change the part of a job or model that is still being made.
fn no_fix(kind: Kind) -> &'static str {
    match kind {
        Kind::Customization => {
            "the job is no longer running, so it cannot be stopped: a person runs it again with a customer-managed key"
        }
        Kind::CustomModel => {
            "a custom model's key is set when it is created and cannot be changed: create it again with a customer-managed key and delete this one"
        }
        Kind::Import => {
            "an import job cannot be stopped, and the imported model's key cannot be changed: import it again with a customer-managed key and delete this one"
        }
        Kind::Copy => {
            "a copy job cannot be stopped, and the copy's key cannot be changed: copy it again with a customer-managed key and delete this copy"
        }
    }
}

/// The Get answer of the job or model, raw: every member as Bedrock sent it, including
/// members this version of the SDK does not know.
async fn read(bedrock: &aws_sdk_bedrock::Client, kind: Kind, arn: &str) -> Result<Value, Read> {
    let call = kind.spec().call;
    let body = RawBody::new();
    let sent = match kind {
        Kind::Customization => bedrock
            .get_model_customization_job()
            .job_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
        Kind::CustomModel => bedrock
            .get_custom_model()
            .model_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
        Kind::Import => bedrock
            .get_model_import_job()
            .job_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
        Kind::Copy => bedrock
            .get_model_copy_job()
            .job_arn(arn)
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

async fn read_model(
    bedrock: &aws_sdk_bedrock::Client,
    kind: ModelKind,
    arn: &str,
) -> Result<Value, Read> {
    let call = kind.call();
    let body = RawBody::new();
    let sent = match kind {
        ModelKind::Custom => bedrock
            .get_custom_model()
            .model_identifier(arn)
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| Read::of(call, &e)),
        ModelKind::Imported => bedrock
            .get_imported_model()
            .model_identifier(arn)
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
        for (resource, kind) in [
            (
                "model-customization-job/cohere.command-text-v14:7:4k/q4ad8z8tioq8",
                Kind::Customization,
            ),
            (
                "custom-model/amazon.titan-text-express-v1:0:8k/w4vtut9aq95n",
                Kind::CustomModel,
            ),
            ("model-import-job/abcdefghijkl", Kind::Import),
            ("model-copy-job/abcdefghijkl", Kind::Copy),
        ] {
            assert_eq!(Kind::of(&arn(resource)), Some(kind), "{resource}");
        }
        assert_eq!(Kind::of(&arn("evaluation-job/abcdefghijkl")), None);
        assert_eq!(Kind::of("not an arn"), None);
    }

    fn state(kind: Kind, raw: Value, model: Option<Value>) -> JobState {
        JobState {
            kind,
            arn: "arn:aws:bedrock:us-east-1:111122223333:model-customization-job/m:0/abc"
                .to_owned(),
            raw,
            model,
        }
    }

    #[test]
    fn a_running_job_is_judged_from_its_key_member() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let running = state(
            Kind::Customization,
            json!({"jobName": "ft", "status": "InProgress", "outputModelKmsKeyArn": key}),
            None,
        );
        let p = part(&running, None).unwrap();
        assert_eq!(p.name, "output model");
        assert_eq!(p.key().map(|k| k.as_str()), Some(key));
        let without = state(
            Kind::Customization,
            json!({"jobName": "ft", "status": "InProgress"}),
            None,
        );
        assert_eq!(part(&without, None).unwrap().subject, Subject::Key(None));
    }

    #[test]
    fn an_ended_job_is_judged_from_its_model_or_holds_nothing() {
        let model = json!({"modelName": "ft-model", "modelArn": "arn:aws:bedrock:us-east-1:111122223333:custom-model/m:0/xyz"});
        let done = state(
            Kind::Customization,
            json!({"jobName": "ft", "status": "Completed", "outputModelKmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
            Some(model),
        );
        let p = part(&done, None).unwrap();
        assert_eq!(p.name, "model ft-model");
        assert_eq!(
            p.subject,
            Subject::Key(None),
            "the model names no key: that decides"
        );
        assert!(p.no_fix.is_some());
        let stopped = state(
            Kind::Customization,
            json!({"jobName": "ft", "status": "Stopped"}),
            None,
        );
        assert!(part(&stopped, None).unwrap_err().contains("ended Stopped"));
        let failed_model = state(
            Kind::CustomModel,
            json!({"modelName": "m", "modelStatus": "Failed"}),
            None,
        );
        assert!(part(&failed_model, None).is_err());
        let unreadable =
            AwsError::new("bedrock:GetCustomModel", "AccessDeniedException: no", false);
        let p = part(&done_without_model(), Some(&unreadable)).unwrap();
        assert!(matches!(p.subject, Subject::Unreadable(_)));
    }

    fn done_without_model() -> JobState {
        state(
            Kind::Customization,
            json!({"jobName": "ft", "status": "Completed", "outputModelArn": "arn:aws:bedrock:us-east-1:111122223333:custom-model/m:0/xyz"}),
            None,
        )
    }
}
