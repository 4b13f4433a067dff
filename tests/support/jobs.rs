//! Bedrock jobs and models in the emulator, made as a team makes them, and the events that
//! announce them.

use aws_sdk_bedrock::types::*;
use serde_json::Value;

use crate::{unique_account, Account, REGION};

/// The base model every test job fine-tunes (its id holds colons, as real ids do).
pub const BASE_MODEL: &str = "amazon.titan-text-express-v1:0:8k";

/// The six kinds of job or model, as the tests make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Customization,
    CustomModel,
    Import,
    Copy,
    Evaluation,
    Batch,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Customization,
        JobKind::CustomModel,
        JobKind::Import,
        JobKind::Copy,
        JobKind::Evaluation,
        JobKind::Batch,
    ];

    /// The event fixture that announces one.
    pub fn fixture(self) -> &'static str {
        match self {
            JobKind::Customization => "CreateModelCustomizationJob.json",
            JobKind::CustomModel => "CreateCustomModel.json",
            JobKind::Import => "CreateModelImportJob.json",
            JobKind::Copy => "CreateModelCopyJob.json",
            JobKind::Evaluation => "CreateEvaluationJob.json",
            JobKind::Batch => "CreateModelInvocationJob.json",
        }
    }

    /// Whether the model-jobs function handles it (else the data-jobs function).
    pub fn is_model_job(self) -> bool {
        !matches!(self, JobKind::Evaluation | JobKind::Batch)
    }
}

fn s3(uri: &str) -> String {
    format!("s3://cmk-guard-tests/{uri}")
}

impl Account {
    fn role(&self) -> String {
        format!("arn:aws:iam::{}:role/bedrock-jobs", self.id)
    }

    /// Makes one, on `key` when given; returns its ARN.
    pub async fn job(&self, kind: JobKind, key: Option<&str>) -> String {
        let name = unique_account("job");
        match kind {
            JobKind::Customization => self.customization_job(&name, key).await,
            JobKind::CustomModel => self.custom_model(&name, key).await,
            JobKind::Import => self.import_job(&name, key).await,
            JobKind::Copy => {
                let source = self.custom_model(&format!("{name}-source"), key).await;
                self.copy_job(&name, &source, key).await
            }
            JobKind::Evaluation => self.evaluation_job(&name, key).await,
            JobKind::Batch => self.batch_job(&name, key).await,
        }
    }

    pub async fn customization_job(&self, name: &str, key: Option<&str>) -> String {
        self.bedrock
            .create_model_customization_job()
            .job_name(name)
            .custom_model_name(format!("{name}-model"))
            .role_arn(self.role())
            .base_model_identifier(BASE_MODEL)
            .customization_type(CustomizationType::FineTuning)
            .training_data_config(
                TrainingDataConfig::builder()
                    .s3_uri(s3("train.jsonl"))
                    .build(),
            )
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_uri(s3("out/"))
                    .build()
                    .unwrap(),
            )
            .hyper_parameters("epochCount", "1")
            .set_custom_model_kms_key_id(key.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .job_arn
    }

    pub async fn custom_model(&self, name: &str, key: Option<&str>) -> String {
        self.bedrock
            .create_custom_model()
            .model_name(name)
            .model_source_config(ModelDataSource::S3DataSource(
                S3DataSource::builder()
                    .s3_uri(s3("model/"))
                    .build()
                    .unwrap(),
            ))
            .role_arn(self.role())
            .set_model_kms_key_arn(key.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .model_arn
    }

    pub async fn import_job(&self, name: &str, key: Option<&str>) -> String {
        self.bedrock
            .create_model_import_job()
            .job_name(name)
            .imported_model_name(format!("{name}-model"))
            .role_arn(self.role())
            .model_data_source(ModelDataSource::S3DataSource(
                S3DataSource::builder()
                    .s3_uri(s3("import/"))
                    .build()
                    .unwrap(),
            ))
            .set_imported_model_kms_key_id(key.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .job_arn
    }

    pub async fn copy_job(&self, name: &str, source: &str, key: Option<&str>) -> String {
        self.bedrock
            .create_model_copy_job()
            .source_model_arn(source)
            .target_model_name(format!("{name}-copy"))
            .set_model_kms_key_id(key.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .job_arn
    }

    pub async fn evaluation_job(&self, name: &str, key: Option<&str>) -> String {
        let metric = EvaluationDatasetMetricConfig::builder()
            .task_type(EvaluationTaskType::QuestionAndAnswer)
            .dataset(
                EvaluationDataset::builder()
                    .name("qa")
                    .dataset_location(EvaluationDatasetLocation::S3Uri(s3("qa.jsonl")))
                    .build()
                    .unwrap(),
            )
            .metric_names("Builtin.Accuracy")
            .build()
            .unwrap();
        let model = EvaluationModelConfig::BedrockModel(
            EvaluationBedrockModel::builder()
                .model_identifier("amazon.titan-text-express-v1")
                .inference_params("{}")
                .build()
                .unwrap(),
        );
        self.bedrock
            .create_evaluation_job()
            .job_name(name)
            .role_arn(self.role())
            .evaluation_config(EvaluationConfig::Automated(
                AutomatedEvaluationConfig::builder()
                    .dataset_metric_configs(metric)
                    .build()
                    .unwrap(),
            ))
            .inference_config(EvaluationInferenceConfig::Models(vec![model]))
            .output_data_config(
                EvaluationOutputDataConfig::builder()
                    .s3_uri(s3("eval/"))
                    .build()
                    .unwrap(),
            )
            .set_customer_encryption_key_id(key.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .job_arn
    }

    pub async fn batch_job(&self, name: &str, key: Option<&str>) -> String {
        self.bedrock
            .create_model_invocation_job()
            .job_name(name)
            .role_arn(self.role())
            .model_id("amazon.titan-text-express-v1")
            .input_data_config(ModelInvocationJobInputDataConfig::S3InputDataConfig(
                ModelInvocationJobS3InputDataConfig::builder()
                    .s3_uri(s3("batch/in.jsonl"))
                    .build()
                    .unwrap(),
            ))
            .output_data_config(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(
                ModelInvocationJobS3OutputDataConfig::builder()
                    .s3_uri(s3("batch/out/"))
                    .set_s3_encryption_key_id(key.map(str::to_owned))
                    .build()
                    .unwrap(),
            ))
            .send()
            .await
            .unwrap()
            .job_arn
    }

    /// A job of `kind` (customization, evaluation or batch) with every request member these
    /// tests can set — VPC, validation data, several hyperparameters and datasets, a
    /// description, a timeout — and two tags, without a key: what a resubmission must carry.
    pub async fn full_job(&self, kind: JobKind) -> String {
        let name = unique_account("full");
        let b = &self.bedrock;
        let vpc = VpcConfig::builder()
            .subnet_ids("subnet-0123456789abcdef0")
            .subnet_ids("subnet-0fedcba9876543210")
            .security_group_ids("sg-0123456789abcdef0")
            .build()
            .unwrap();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
        match kind {
            JobKind::Customization => {
                b.create_model_customization_job()
                    .job_name(&name)
                    .custom_model_name(format!("{name}-model"))
                    .role_arn(self.role())
                    .base_model_identifier(format!(
                        "arn:aws:bedrock:{REGION}::foundation-model/{BASE_MODEL}"
                    ))
                    .customization_type(CustomizationType::FineTuning)
                    .training_data_config(
                        TrainingDataConfig::builder()
                            .s3_uri(s3("train.jsonl"))
                            .build(),
                    )
                    .validation_data_config(
                        ValidationDataConfig::builder()
                            .validators(
                                Validator::builder()
                                    .s3_uri(s3("validate.jsonl"))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .output_data_config(
                        OutputDataConfig::builder()
                            .s3_uri(s3("out/"))
                            .build()
                            .unwrap(),
                    )
                    .hyper_parameters("epochCount", "2")
                    .hyper_parameters("batchSize", "8")
                    .hyper_parameters("learningRate", "0.00001")
                    .vpc_config(vpc)
                    .job_tags(tag("team", "ml"))
                    .job_tags(tag("cost-centre", "4711"))
                    .send()
                    .await
                    .unwrap()
                    .job_arn
            }
            JobKind::Evaluation => {
                let metric = |task: EvaluationTaskType, dataset: &str| {
                    EvaluationDatasetMetricConfig::builder()
                        .task_type(task)
                        .dataset(
                            EvaluationDataset::builder()
                                .name(dataset)
                                .dataset_location(EvaluationDatasetLocation::S3Uri(s3(&format!(
                                    "{dataset}.jsonl"
                                ))))
                                .build()
                                .unwrap(),
                        )
                        .metric_names("Builtin.Accuracy")
                        .metric_names("Builtin.Robustness")
                        .build()
                        .unwrap()
                };
                let model = EvaluationModelConfig::BedrockModel(
                    EvaluationBedrockModel::builder()
                        .model_identifier("amazon.titan-text-express-v1")
                        .inference_params(r#"{"temperature":0.2}"#)
                        .build()
                        .unwrap(),
                );
                b.create_evaluation_job()
                    .job_name(name.to_ascii_lowercase())
                    .job_description("quarterly accuracy check")
                    .role_arn(self.role())
                    .application_type(ApplicationType::ModelEvaluation)
                    .evaluation_config(EvaluationConfig::Automated(
                        AutomatedEvaluationConfig::builder()
                            .dataset_metric_configs(metric(
                                EvaluationTaskType::QuestionAndAnswer,
                                "qa",
                            ))
                            .dataset_metric_configs(metric(
                                EvaluationTaskType::Summarization,
                                "sum",
                            ))
                            .build()
                            .unwrap(),
                    ))
                    .inference_config(EvaluationInferenceConfig::Models(vec![model]))
                    .output_data_config(
                        EvaluationOutputDataConfig::builder()
                            .s3_uri(s3("eval/"))
                            .build()
                            .unwrap(),
                    )
                    .job_tags(tag("team", "ml"))
                    .job_tags(tag("cost-centre", "4711"))
                    .send()
                    .await
                    .unwrap()
                    .job_arn
            }
            JobKind::Batch => {
                b.create_model_invocation_job()
                    .job_name(&name)
                    .role_arn(self.role())
                    .model_id("amazon.titan-text-express-v1")
                    .input_data_config(ModelInvocationJobInputDataConfig::S3InputDataConfig(
                        ModelInvocationJobS3InputDataConfig::builder()
                            .s3_uri(s3("batch/in.jsonl"))
                            .s3_input_format(S3InputFormat::Jsonl)
                            .build()
                            .unwrap(),
                    ))
                    .output_data_config(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(
                        ModelInvocationJobS3OutputDataConfig::builder()
                            .s3_uri(s3("batch/out/"))
                            .build()
                            .unwrap(),
                    ))
                    .vpc_config(vpc)
                    .timeout_duration_in_hours(48)
                    .model_invocation_type(ModelInvocationType::Converse)
                    .tags(tag("team", "ml"))
                    .tags(tag("cost-centre", "4711"))
                    .send()
                    .await
                    .unwrap()
                    .job_arn
            }
            other => panic!("{other:?} is not a job a resubmission is made of"),
        }
    }

    /// The tags on a job, sorted.
    pub async fn job_tags(&self, arn: &str) -> Vec<(String, String)> {
        let out = self
            .bedrock
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<(String, String)> = out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
        tags
    }

    /// The job's status as Bedrock answers it now.
    pub async fn job_status(&self, kind: JobKind, arn: &str) -> String {
        let b = &self.bedrock;
        match kind {
            JobKind::Customization => {
                let out = b
                    .get_model_customization_job()
                    .job_identifier(arn)
                    .send()
                    .await
                    .unwrap();
                out.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default()
            }
            JobKind::CustomModel => {
                let out = b
                    .get_custom_model()
                    .model_identifier(arn)
                    .send()
                    .await
                    .unwrap();
                out.model_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default()
            }
            JobKind::Import => {
                let out = b
                    .get_model_import_job()
                    .job_identifier(arn)
                    .send()
                    .await
                    .unwrap();
                out.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default()
            }
            JobKind::Copy => {
                let out = b.get_model_copy_job().job_arn(arn).send().await.unwrap();
                out.status().as_str().to_owned()
            }
            JobKind::Evaluation => {
                let out = b
                    .get_evaluation_job()
                    .job_identifier(arn)
                    .send()
                    .await
                    .unwrap();
                out.status().as_str().to_owned()
            }
            JobKind::Batch => {
                let out = b
                    .get_model_invocation_job()
                    .job_identifier(arn)
                    .send()
                    .await
                    .unwrap();
                out.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default()
            }
        }
    }
}

/// The fixture of `kind` rewritten to announce `arn` in `account`, with a fresh eventID.
pub fn job_event(kind: JobKind, account: &str, arn: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(kind.fixture());
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["account"] = account.into();
    event["region"] = REGION.into();
    let detail = &mut event["detail"];
    detail["awsRegion"] = REGION.into();
    detail["recipientAccountId"] = account.into();
    detail["userIdentity"]["accountId"] = account.into();
    detail["eventID"] = unique_account("event").into();
    let member = if kind == JobKind::CustomModel {
        "modelArn"
    } else {
        "jobArn"
    };
    detail["responseElements"][member] = arn.into();
    event
}
