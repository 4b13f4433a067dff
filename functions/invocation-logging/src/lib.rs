//! Bedrock model invocation logging (Config rules pack FMI-06; FMI-04 for logging switched
//! off): every destination of an account's logging configuration in a Region encrypted with
//! an allowed customer-managed KMS key.
//!
//! The resource is the configuration itself: there is one per account and Region, and no
//! resource id in its events. Its parts are its destinations: the S3 bucket, the CloudWatch
//! Logs log group, and the bucket for large data. Events about a log group or a bucket (its
//! key removed, its encryption changed, the log group deleted) reach the configuration when
//! the log group or bucket is one of its destinations.

mod destinations;

use aws_sdk_bedrock::types::LoggingConfig;
use bedrock_cmk_guard::finding::Resource;
use bedrock_cmk_guard::keys::KeyInfo;
use bedrock_cmk_guard::verdict::{KeyProblem, Location};
use bedrock_cmk_guard::{
    AwsError, EventSpec, Fix, FixError, Fixed, Found, Named, Names, Observed, Protection, Reactor,
    Scope, Subject,
};
use futures_util::future::join_all;
use tokio::time::Instant;

pub use destinations::{bucket_subject, BucketState, Destination, LogGroupState};

/// The invocation-logging reactor.
#[derive(Default)]
pub struct InvocationLogging;

impl InvocationLogging {
    pub fn new() -> Self {
        InvocationLogging
    }
}

/// What gather read: the configuration (`None`: logging is off) and each destination, in the
/// order of the protections.
#[derive(Debug, Clone)]
pub struct LoggingState {
    pub config: Option<LoggingConfig>,
    pub destinations: Vec<Destination>,
}

/// Kinds of part, as `remediationKeys` and events name them.
const LOGS: &str = "logs";
const S3: &str = "s3";

impl Reactor for InvocationLogging {
    type State = LoggingState;

    const FUNCTION: &'static str = "invocation-logging";

    const CHECK: &'static str = "bedrock-invocation-logging-cmk";
    const RESOURCE_TYPE: &'static str = "AWS::Bedrock::ModelInvocationLoggingConfiguration";
    const NOUN: &'static str = "the model invocation logging configuration";
    const EVENTS: &'static [EventSpec] = &[
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "PutModelInvocationLoggingConfiguration",
            names: Names::Account,
            key_hint_paths: &[],
        },
        // Logging switched off: nothing to encrypt, and no safe source for the old
        // configuration, so only a person can turn it back on.
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "DeleteModelInvocationLoggingConfiguration",
            names: Names::Account,
            key_hint_paths: &[],
        },
        EventSpec {
            event_source: "logs.amazonaws.com",
            event_name: "DisassociateKmsKey",
            names: Names::Part {
                kind: LOGS,
                paths: &[
                    "/requestParameters/logGroupName",
                    "/requestParameters/resourceIdentifier",
                ],
            },
            key_hint_paths: &[],
        },
        EventSpec {
            event_source: "logs.amazonaws.com",
            event_name: "AssociateKmsKey",
            names: Names::Part {
                kind: LOGS,
                paths: &[
                    "/requestParameters/logGroupName",
                    "/requestParameters/resourceIdentifier",
                ],
            },
            key_hint_paths: &["/requestParameters/kmsKeyId"],
        },
        EventSpec {
            event_source: "logs.amazonaws.com",
            event_name: "DeleteLogGroup",
            names: Names::Part {
                kind: LOGS,
                paths: &["/requestParameters/logGroupName"],
            },
            key_hint_paths: &[],
        },
        // S3 logs the key id as hidden: the bucket's encryption is always read back.
        EventSpec {
            event_source: "s3.amazonaws.com",
            event_name: "PutBucketEncryption",
            names: Names::Part {
                kind: S3,
                paths: &["/requestParameters/bucketName"],
            },
            key_hint_paths: &[],
        },
        EventSpec {
            event_source: "s3.amazonaws.com",
            event_name: "DeleteBucketEncryption",
            names: Names::Part {
                kind: S3,
                paths: &["/requestParameters/bucketName"],
            },
            key_hint_paths: &[],
        },
    ];

    /// The guard's own identifier for the configuration (AWS gives it no ARN).
    fn resource_arn(&self, _named: &Named, at: &Location) -> Option<String> {
        Some(logging_id(at))
    }

    async fn gather(&self, scope: &Scope, named: &Named) -> Result<Found<Self::State>, AwsError> {
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let out = bedrock
            .get_model_invocation_logging_configuration()
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("bedrock:GetModelInvocationLoggingConfiguration", &e)
            })?;
        let config = out.logging_config().cloned();
        // Drift on a log group or bucket the configuration does not use: this one read is
        // all it costs.
        if let Named::Part { kind, id } = named {
            if !destinations::names(config.as_ref())
                .iter()
                .any(|(k, name)| k == kind && (name == id || log_group_arn_names(id, name)))
            {
                return Ok(Found::Unrelated(format!(
                    "{kind} {id} is not a destination of the model invocation logging configuration in {}",
                    scope.region
                )));
            }
        }
        let (protections, destinations) = match &config {
            None => (vec![logging_off(&scope.region)], vec![Destination::Logging]),
            Some(config) => destinations::read_all(scope, config).await,
        };
        let at = Location {
            account: scope.account.clone(),
            region: scope.region.clone(),
            partition: scope.partition.clone(),
        };
        Ok(Found::Resource(Observed {
            resource: Resource {
                kind: Self::RESOURCE_TYPE.to_owned(),
                arn: Some(logging_id(&at)),
                // One configuration per account and Region: the Region names it.
                name: Some(scope.region.clone()),
            },
            protections,
            busy: None,
            state: LoggingState {
                config,
                destinations,
            },
        }))
    }

    /// A log group may be named by its ARN (`resourceIdentifier`), with or without `:*`.
    fn is_part(&self, protection: &Protection, kind: &str, id: &str) -> bool {
        let Some(name) = protection.resource.as_deref() else {
            return false;
        };
        protection.kind == kind && (name == id || (kind == LOGS && log_group_arn_names(id, name)))
    }

    fn describe_fix(&self, observed: &Observed<Self::State>, fixes: &[Fix<'_>]) -> String {
        let steps: Vec<String> = fixes
            .iter()
            .map(|fix| match &observed.state.destinations[fix.part] {
                Destination::LogGroup(g) => format!(
                    "AssociateKmsKey on log group {} with {}, then DescribeLogGroups to prove only the key changed",
                    g.name, fix.key.arn
                ),
                Destination::Bucket(b) => format!(
                    "PutBucketEncryption on bucket {}: aws:kms with {} and BucketKeyEnabled, keeping its other rules, then GetBucketEncryption to prove only the key changed",
                    b.name, fix.key.arn
                ),
                Destination::Logging => "nothing (logging is off)".to_owned(),
            })
            .collect();
        format!("{}.", steps.join("; "))
    }

    fn manual_steps(&self, observed: &Observed<Self::State>, parts: &[&Protection]) -> Vec<String> {
        let region = region_of(observed);
        parts
            .iter()
            .flat_map(|p| {
                let index = observed.protections.iter().position(|q| q == *p);
                match index.map(|i| &observed.state.destinations[i]) {
                    Some(Destination::Logging) => vec![format!(
                        "Turn model invocation logging back on: Amazon Bedrock console > Settings > Model invocation logging, or aws bedrock put-model-invocation-logging-configuration --region {region} --logging-config file://logging.json, with destinations encrypted with a customer-managed key."
                    )],
                    Some(Destination::LogGroup(g)) => destinations::log_group_steps(g, p, &region),
                    Some(Destination::Bucket(b)) => destinations::bucket_steps(b, p, &region),
                    None => Vec::new(),
                }
            })
            .collect()
    }

    async fn preflight(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        part: usize,
        key: &KeyInfo,
    ) -> Result<(), String> {
        match observed.state.destinations.get(part) {
            Some(destination) => destinations::preflight(scope, destination, key).await,
            None => Ok(()),
        }
    }

    async fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        fixes: &[Fix<'_>],
        deadline: Instant,
    ) -> Vec<Result<Fixed, FixError>> {
        // Each destination is fixed and proven on its own, at the same time.
        join_all(fixes.iter().map(|fix| async move {
            let fixed = match &observed.state.destinations[fix.part] {
                Destination::LogGroup(g) => destinations::fix_log_group(scope, g, fix.key).await,
                Destination::Bucket(b) => {
                    destinations::fix_bucket(scope, b, fix.key, deadline).await
                }
                Destination::Logging => Err(FixError::Refused(
                    "logging is off: there is nothing to put a key on".to_owned(),
                )),
            };
            fixed.map(Fixed::from)
        }))
        .await
    }
}

/// Whether `id` is the ARN of log group `name` (`...:log-group:NAME`, with or without `:*`).
fn log_group_arn_names(id: &str, name: &str) -> bool {
    id.split_once(":log-group:")
        .is_some_and(|(_, rest)| rest.trim_end_matches(":*") == name)
}

/// The guard's identifier for an account's logging configuration in a Region: AWS has no
/// ARN for it, and findings and the ledger need a stable one.
pub fn logging_id(at: &Location) -> String {
    format!(
        "arn:{}:bedrock:{}:{}:model-invocation-logging-configuration",
        at.partition, at.region, at.account
    )
}

fn region_of(observed: &Observed<LoggingState>) -> String {
    observed
        .resource
        .arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(3))
        .unwrap_or_default()
        .to_owned()
}

/// Logging switched off is its own part: nothing records prompts and responses.
fn logging_off(region: &str) -> Protection {
    Protection {
        name: "logging".to_owned(),
        noun: "model invocation logging".to_owned(),
        kind: "bedrock",
        resource: None,
        subject: Subject::Unprotected {
            problem: KeyProblem::Absent,
            reason: format!(
                "model invocation logging is off in {region}: no prompt or response is recorded (FMI-04), so there is nothing to encrypt and nothing to audit"
            ),
        },
        no_fix: Some(
            "logging was switched off, and the old configuration cannot be restored safely: a person turns it back on"
                .to_owned(),
        ),
    }
}
