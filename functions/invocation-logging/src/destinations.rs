//! The destinations of a logging configuration: reading each, judging what protects it,
//! checking a remediation key against the service that writes there, and fixing it.

use aws_sdk_bedrock::types::LoggingConfig;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use bedrock_cmk_guard::keys::{KeyInfo, KeyRef};
use bedrock_cmk_guard::policy::{missing, Need};
use bedrock_cmk_guard::raw::{differences, unknown_members, RawBody};
use bedrock_cmk_guard::verdict::KeyProblem;
use bedrock_cmk_guard::{AwsError, FixError, Protection, Scope, Subject};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{LOGS, S3};

/// One part of the configuration, as read.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Logging is off: the one part of a configuration that does not exist.
    Logging,
    LogGroup(LogGroupState),
    Bucket(BucketState),
}

#[derive(Debug, Clone)]
pub struct LogGroupState {
    pub name: String,
    /// DescribeLogGroups' entry for it, as sent; `None` when it does not exist.
    pub raw: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct BucketState {
    pub name: String,
    /// What the configuration uses it for.
    pub uses: Vec<&'static str>,
    pub read: BucketRead,
}

/// What GetBucketEncryption said.
#[derive(Debug, Clone)]
pub enum BucketRead {
    Missing,
    /// No default-encryption configuration at all.
    NoRule,
    /// The rules as the SDK parsed them, and the answer as sent (XML, as JSON lists).
    Rules(Vec<ServerSideEncryptionRule>, Value),
}

/// Members of GetBucketEncryption's answer the bucket fix carries over (XML elements, each
/// a list). Anything else would be lost by writing the rules back.
const KNOWN_BUCKET_MEMBERS: &[&str] = &[
    "ServerSideEncryptionConfiguration",
    "ServerSideEncryptionConfiguration[].Rule",
    "ServerSideEncryptionConfiguration[].Rule[].ApplyServerSideEncryptionByDefault",
    "ServerSideEncryptionConfiguration[].Rule[].ApplyServerSideEncryptionByDefault[].SSEAlgorithm",
    "ServerSideEncryptionConfiguration[].Rule[].ApplyServerSideEncryptionByDefault[].KMSMasterKeyID",
    "ServerSideEncryptionConfiguration[].Rule[].BucketKeyEnabled",
    "ServerSideEncryptionConfiguration[].Rule[].BlockedEncryptionTypes",
    "ServerSideEncryptionConfiguration[].Rule[].BlockedEncryptionTypes[].EncryptionType",
];

/// What the bucket fix changes, and so what may differ after it.
const BUCKET_FIX_CHANGES: &[&str] = &[
    "ServerSideEncryptionConfiguration[].Rule[].ApplyServerSideEncryptionByDefault",
    "ServerSideEncryptionConfiguration[].Rule[].BucketKeyEnabled",
];

/// What CloudWatch Logs changes on its own in a log group's description.
const LOG_GROUP_SERVER_MANAGED: &[&str] = &["storedBytes", "metricFilterCount"];

/// The destinations a configuration names, by kind: (`logs`, log group), (`s3`, bucket).
pub fn names(config: Option<&LoggingConfig>) -> Vec<(&'static str, String)> {
    let Some(config) = config else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(s3) = config.s3_config() {
        names.push((S3, s3.bucket_name().to_owned()));
    }
    if let Some(cw) = config.cloud_watch_config() {
        names.push((LOGS, cw.log_group_name().to_owned()));
        if let Some(large) = cw.large_data_delivery_s3_config() {
            names.push((S3, large.bucket_name().to_owned()));
        }
    }
    names
}

/// Reads every destination concurrently: one protection per log group or bucket (a bucket
/// used for both logs and large data is one part).
pub async fn read_all(
    scope: &Scope,
    config: &LoggingConfig,
) -> (Vec<Protection>, Vec<Destination>) {
    let mut buckets: Vec<(String, Vec<&'static str>)> = Vec::new();
    let mut add_bucket =
        |name: &str, use_: &'static str| match buckets.iter_mut().find(|(n, _)| n == name) {
            Some((_, uses)) => uses.push(use_),
            None => buckets.push((name.to_owned(), vec![use_])),
        };
    if let Some(s3) = config.s3_config() {
        add_bucket(s3.bucket_name(), "invocation logs");
    }
    let log_group = config.cloud_watch_config().map(|c| {
        if let Some(large) = c.large_data_delivery_s3_config() {
            add_bucket(large.bucket_name(), "large data");
        }
        c.log_group_name().to_owned()
    });
    let logs = aws_sdk_cloudwatchlogs::Client::new(&scope.config);
    let s3 = s3_client(scope);
    let (group, bucket_reads) = tokio::join!(
        async {
            match &log_group {
                Some(name) => Some((name.clone(), read_log_group(&logs, name).await)),
                None => None,
            }
        },
        futures_util::future::join_all(buckets.iter().map(|(name, _)| read_bucket(&s3, name)))
    );
    let mut parts = Vec::new();
    if let Some((name, read)) = group {
        parts.push(log_group_part(name, read));
    }
    for ((name, uses), read) in buckets.into_iter().zip(bucket_reads) {
        parts.push(bucket_part(name, uses, read));
    }
    parts.into_iter().unzip()
}

/// The S3 client of a scope. A custom endpoint (`AWS_ENDPOINT_URL`: an S3-compatible or
/// local endpoint) may not resolve bucket names as host names, so it gets path-style
/// addressing; AWS itself keeps the default.
fn s3_client(scope: &Scope) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(&scope.config);
    if scope.config.endpoint_url().is_some() {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

// ------------------------------------------------------------------------------ log groups

fn log_group_part(
    name: String,
    read: Result<Option<Value>, AwsError>,
) -> (Protection, Destination) {
    let (subject, no_fix) = match &read {
        Err(error) => (Subject::Unreadable(error.clone()), None),
        Ok(None) => (
            Subject::Unprotected {
                problem: KeyProblem::Absent,
                reason: format!("log group {name} does not exist: Bedrock cannot deliver invocation logs to it"),
            },
            Some("the log group does not exist: create it with a key, or point the configuration at one that exists".to_owned()),
        ),
        Ok(Some(raw)) => match raw.get("kmsKeyId").and_then(Value::as_str) {
            None => (Subject::Key(None), None),
            Some(key) => match KeyRef::parse(key) {
                Ok(key) => (Subject::Key(Some(key)), None),
                Err(e) => (
                    Subject::Unreadable(AwsError::new("logs:DescribeLogGroups", format!("kmsKeyId: {e}"), false)),
                    None,
                ),
            },
        },
    };
    let protection = Protection {
        name: format!("log group {name}"),
        noun: format!("log group {name}"),
        kind: LOGS,
        resource: Some(name.clone()),
        subject,
        no_fix,
    };
    let raw = read.ok().flatten();
    (
        protection,
        Destination::LogGroup(LogGroupState { name, raw }),
    )
}

/// DescribeLogGroups' entry for exactly this log group (the API takes a prefix).
async fn read_log_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Option<Value>, AwsError> {
    const CALL: &str = "logs:DescribeLogGroups";
    let mut next = None;
    loop {
        let body = RawBody::new();
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(next.take())
            .customize()
            .interceptor(body.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(CALL, &e))?;
        let raw = body.json().map_err(|e| AwsError::new(CALL, e, false))?;
        let found = raw["logGroups"]
            .as_array()
            .and_then(|groups| groups.iter().find(|g| g["logGroupName"] == name))
            .cloned();
        match (found, page.next_token()) {
            (Some(group), _) => return Ok(Some(group)),
            (None, Some(token)) if !token.is_empty() => next = Some(token.to_owned()),
            (None, _) => return Ok(None),
        }
    }
}

// --------------------------------------------------------------------------------- buckets

fn bucket_part(
    name: String,
    uses: Vec<&'static str>,
    read: Result<BucketRead, AwsError>,
) -> (Protection, Destination) {
    let (subject, no_fix) = match &read {
        Err(error) => (Subject::Unreadable(error.clone()), None),
        Ok(read) => (bucket_subject(&name, read), bucket_no_fix(read)),
    };
    let protection = Protection {
        name: format!("bucket {name}"),
        noun: format!("bucket {name}"),
        kind: S3,
        resource: Some(name.clone()),
        subject,
        no_fix,
    };
    let read = read.unwrap_or(BucketRead::Missing);
    (
        protection,
        Destination::Bucket(BucketState { name, uses, read }),
    )
}

/// What protects a bucket's objects by default, judged from its encryption rules alone
/// where no key is named; a named key is described like any other.
pub fn bucket_subject(name: &str, read: &BucketRead) -> Subject {
    let unprotected = |problem, reason: String| Subject::Unprotected { problem, reason };
    let rules = match read {
        BucketRead::Missing => {
            return unprotected(
                KeyProblem::Absent,
                format!(
                    "bucket {name} does not exist: Bedrock cannot deliver invocation logs to it"
                ),
            )
        }
        BucketRead::NoRule => {
            return unprotected(
                KeyProblem::Unencrypted,
                format!("bucket {name} has no default-encryption rule"),
            )
        }
        BucketRead::Rules(rules, _) => rules,
    };
    let Some(default) = rules
        .iter()
        .find_map(|r| r.apply_server_side_encryption_by_default())
    else {
        return unprotected(
            KeyProblem::Unencrypted,
            format!("bucket {name} has no default-encryption rule"),
        );
    };
    let algorithm = default.sse_algorithm();
    match (algorithm, default.kms_master_key_id()) {
        (ServerSideEncryption::Aes256, _) => unprotected(
            KeyProblem::AwsOwned,
            format!("bucket {name} encrypts with SSE-S3 (AES256), a key Amazon S3 owns, not a customer-managed key"),
        ),
        (ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse, None) => unprotected(
            KeyProblem::AwsManaged,
            format!(
                "bucket {name} uses {} without a key id, so S3 encrypts with the AWS-managed key aws/s3, not a customer-managed key",
                algorithm.as_str()
            ),
        ),
        (ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse, Some(key)) => {
            match KeyRef::parse(key) {
                Ok(key) => Subject::Key(Some(key)),
                Err(e) => Subject::Unreadable(AwsError::new(
                    "s3:GetBucketEncryption",
                    format!("KMSMasterKeyID: {e}"),
                    false,
                )),
            }
        }
        (other, _) => Subject::Unreadable(AwsError::new(
            "s3:GetBucketEncryption",
            format!("SSEAlgorithm {:?} is not one this version of the guard knows", other.as_str()),
            false,
        )),
    }
}

fn bucket_no_fix(read: &BucketRead) -> Option<String> {
    match read {
        BucketRead::Missing => Some(
            "the bucket does not exist: create it with default encryption, or point the configuration at one that exists"
                .to_owned(),
        ),
        BucketRead::NoRule => None,
        BucketRead::Rules(_, raw) => {
            let unknown = unknown_members(raw, KNOWN_BUCKET_MEMBERS);
            (!unknown.is_empty()).then(|| {
                format!(
                    "GetBucketEncryption returned members this version of the guard does not know ({}): writing the rules back would drop them",
                    unknown.join(", ")
                )
            })
        }
    }
}

async fn read_bucket(s3: &aws_sdk_s3::Client, name: &str) -> Result<BucketRead, AwsError> {
    const CALL: &str = "s3:GetBucketEncryption";
    let body = RawBody::new();
    match s3
        .get_bucket_encryption()
        .bucket(name)
        .customize()
        .interceptor(body.clone())
        .send()
        .await
    {
        Ok(out) => {
            let rules = out
                .server_side_encryption_configuration()
                .map(|c| c.rules().to_vec())
                .unwrap_or_default();
            let raw = body
                .bytes()
                .and_then(|b| xml_value(&b))
                .map_err(|e| AwsError::new(CALL, e, false))?;
            Ok(BucketRead::Rules(rules, raw))
        }
        Err(e) => match AwsError::code_of(&e) {
            Some("NoSuchBucket") => Ok(BucketRead::Missing),
            Some("ServerSideEncryptionConfigurationNotFoundError") => Ok(BucketRead::NoRule),
            _ => Err(AwsError::from_sdk(CALL, &e)),
        },
    }
}

/// An XML answer as JSON: each element maps its children's names to the list of their
/// values; an element without children is its text. Lists everywhere keep the shape the
/// same whether an element occurs once or more.
pub fn xml_value(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the answer is not UTF-8: {e}"))?;
    let doc =
        roxmltree::Document::parse(text).map_err(|e| format!("the answer is not XML: {e}"))?;
    let root = doc.root_element();
    Ok(json!({ root.tag_name().name(): [element(root)] }))
}

fn element(node: roxmltree::Node) -> Value {
    let children: Vec<roxmltree::Node> = node.children().filter(|c| c.is_element()).collect();
    if children.is_empty() {
        return Value::String(node.text().unwrap_or_default().trim().to_owned());
    }
    let mut members = serde_json::Map::new();
    for child in children {
        let list = members
            .entry(child.tag_name().name().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(element(child));
        }
    }
    Value::Object(members)
}

// ------------------------------------------------------------------------------- preflight

/// What the service writing to a destination needs of its key, and the statement that
/// grants it (with the destination's ARN in the encryption-context condition, as the Config
/// rules pack's FMI-06 documents it).
struct ServiceNeed {
    service: String,
    principals: Vec<String>,
    actions: &'static [&'static str],
    consequence: &'static str,
    statement: Value,
}

fn need_of(scope: &Scope, destination: &Destination) -> Option<ServiceNeed> {
    let (region, account, partition) = (&scope.region, &scope.account, &scope.partition);
    match destination {
        Destination::LogGroup(g) => {
            let service = format!("logs.{region}.amazonaws.com");
            let arn = format!(
                "arn:{partition}:logs:{region}:{account}:log-group:{}",
                g.name
            );
            Some(ServiceNeed {
                principals: vec![service.clone(), "logs.amazonaws.com".to_owned()],
                actions: &[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                consequence: "CloudWatch Logs would refuse the key",
                statement: json!({
                    "Sid": "AllowCloudWatchLogsForBedrockInvocationLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arn}}
                }),
                service,
            })
        }
        Destination::Bucket(b) => {
            let service = "bedrock.amazonaws.com".to_owned();
            let arn = format!("arn:{partition}:s3:::{}", b.name);
            Some(ServiceNeed {
                principals: vec![service.clone()],
                actions: &["kms:GenerateDataKey"],
                consequence: "Bedrock could no longer write invocation logs to the bucket",
                // As the Bedrock guide's SSE-KMS step and FMI-06 give it: the source account
                // and Bedrock ARN, and the bucket (with a bucket key, the context is the
                // bucket's ARN; without, an object's).
                statement: json!({
                    "Sid": "AllowBedrockInvocationLogsToBucket",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "kms:GenerateDataKey",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": format!("arn:{partition}:bedrock:{region}:{account}:*")},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [arn.clone(), format!("{arn}/*")]}
                    }
                }),
                service,
            })
        }
        Destination::Logging => None,
    }
}

/// Never break delivery to fix encryption: the key's policy must let the service that
/// writes to the destination use it. When it does not, the answer is the statement to add.
pub async fn preflight(
    scope: &Scope,
    destination: &Destination,
    key: &KeyInfo,
) -> Result<(), String> {
    let Some(need) = need_of(scope, destination) else {
        return Ok(());
    };
    let kms = match KeyRef::parse(&key.arn) {
        Ok(reference) => scope.kms_for(&reference),
        Err(e) => return Err(format!("the remediation key {}: {e}", key.arn)),
    };
    let policy = kms
        .get_key_policy()
        .key_id(&key.arn)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("kms:GetKeyPolicy", &e))
        .and_then(|out| {
            serde_json::from_str::<Value>(out.policy().unwrap_or_default()).map_err(|e| {
                AwsError::new(
                    "kms:GetKeyPolicy",
                    format!("the policy is not JSON: {e}"),
                    false,
                )
            })
        });
    let policy = match policy {
        Ok(policy) => policy,
        Err(error) => {
            return Err(format!(
                "could not read the key policy of {} ({error}), so nothing shows that {} may use it; the guard does not put a key in place that might break delivery. It needs this statement: {}",
                key.arn, need.service, need.statement
            ))
        }
    };
    let principals: Vec<&str> = need.principals.iter().map(String::as_str).collect();
    let lacking = missing(
        &policy,
        Need {
            principals: &principals,
            actions: need.actions,
        },
    );
    if lacking.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the key policy of {} does not let {} use it ({}): {}. Add this statement to the key policy, then the guard can fix it: {}",
        key.arn,
        need.service,
        lacking.join(", "),
        need.consequence,
        need.statement
    ))
}

// ------------------------------------------------------------------------------------ fixes

/// AssociateKmsKey with `key`, after a re-read that shows nothing changed; then a read-back
/// that proves the key is in place and nothing else changed.
pub async fn fix_log_group(
    scope: &Scope,
    g: &LogGroupState,
    key: &KeyInfo,
) -> Result<String, FixError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&scope.config);
    let before = match read_log_group(&logs, &g.name).await {
        Ok(Some(now)) => now,
        Ok(None) => {
            return Err(FixError::Changed(
                "it was deleted after it was judged".to_owned(),
            ))
        }
        Err(e) if e.retryable => return Err(FixError::Retry(e)),
        Err(e) => {
            return Err(FixError::Refused(format!(
                "it could not be read again before writing: {e}"
            )))
        }
    };
    if let Some(judged) = &g.raw {
        let changed = differences(judged, &before, LOG_GROUP_SERVER_MANAGED);
        if !changed.is_empty() {
            return Err(FixError::Changed(format!(
                "it changed after it was judged ({})",
                changed.join(", ")
            )));
        }
    }
    if let Err(e) = logs
        .associate_kms_key()
        .log_group_name(&g.name)
        .kms_key_id(&key.arn)
        .send()
        .await
    {
        return Err(refused_or_failed(
            "logs:AssociateKmsKey",
            "CloudWatch Logs refused the key",
            &e,
        ));
    }
    let after = match read_log_group(&logs, &g.name).await {
        Ok(Some(after)) => after,
        Ok(None) => {
            return Err(FixError::Failed {
                error: "AssociateKmsKey succeeded, but then the log group was gone".to_owned(),
            })
        }
        Err(e) => {
            return Err(FixError::Failed {
                error: format!("AssociateKmsKey succeeded, but the read-back failed: {e}"),
            })
        }
    };
    let now = after.get("kmsKeyId").and_then(Value::as_str);
    if now != Some(key.arn.as_str()) {
        return Err(FixError::Failed {
            error: format!(
                "AssociateKmsKey returned success, but DescribeLogGroups reads kmsKeyId {}",
                now.unwrap_or("(none)")
            ),
        });
    }
    let mut ignored = LOG_GROUP_SERVER_MANAGED.to_vec();
    ignored.push("kmsKeyId");
    let changed = differences(&before, &after, &ignored);
    if !changed.is_empty() {
        return Err(FixError::Failed {
            error: format!(
                "the key is in place, but the log group also changed: {}",
                changed.join(", ")
            ),
        });
    }
    Ok(format!(
        "AssociateKmsKey put {} on log group {}; DescribeLogGroups read back kmsKeyId = {}, everything else as it was.",
        key.arn, g.name, key.arn
    ))
}

/// PutBucketEncryption with `key` in the default rule (BucketKeyEnabled), the bucket's other
/// rules as they were, after a re-read that shows nothing changed; then a read-back.
pub async fn fix_bucket(
    scope: &Scope,
    b: &BucketState,
    key: &KeyInfo,
    _deadline: Instant,
) -> Result<String, FixError> {
    const CALL: &str = "s3:PutBucketEncryption";
    let s3 = s3_client(scope);
    let current = match read_bucket(&s3, &b.name).await {
        Ok(BucketRead::Missing) => {
            return Err(FixError::Changed(
                "it was deleted after it was judged".to_owned(),
            ))
        }
        Ok(read) => read,
        Err(e) if e.retryable => return Err(FixError::Retry(e)),
        Err(e) => {
            return Err(FixError::Refused(format!(
                "it could not be read again before writing: {e}"
            )))
        }
    };
    let (rules, before) = match (&b.read, &current) {
        (BucketRead::Rules(_, judged), BucketRead::Rules(rules, now)) => {
            let changed = differences(judged, now, &[]);
            if !changed.is_empty() {
                return Err(FixError::Changed(format!(
                    "its encryption changed after it was judged ({})",
                    changed.join(", ")
                )));
            }
            (rules.clone(), Some(now.clone()))
        }
        (BucketRead::NoRule, BucketRead::NoRule) => (Vec::new(), None),
        _ => {
            return Err(FixError::Changed(
                "its encryption changed after it was judged".to_owned(),
            ))
        }
    };
    let plan = planned(&rules);
    let configuration = with_key(&rules, &key.arn).map_err(|e| {
        FixError::Refused(format!(
            "could not build the rules from the bucket as read: {e}"
        ))
    })?;
    if let Err(e) = s3
        .put_bucket_encryption()
        .bucket(&b.name)
        .server_side_encryption_configuration(configuration)
        .send()
        .await
    {
        return Err(refused_or_failed(CALL, "S3 refused the rules", &e));
    }
    let (after_rules, after) = match read_bucket(&s3, &b.name).await {
        Ok(BucketRead::Rules(rules, raw)) => (rules, raw),
        Ok(_) => {
            return Err(FixError::Failed {
                error: "PutBucketEncryption succeeded, but the bucket reads no rule".to_owned(),
            })
        }
        Err(e) => {
            return Err(FixError::Failed {
                error: format!("PutBucketEncryption succeeded, but the read-back failed: {e}"),
            })
        }
    };
    let default = after_rules
        .iter()
        .find(|r| r.apply_server_side_encryption_by_default().is_some());
    // An absent BucketKeyEnabled reads as false, as S3 applies it.
    let bucket_key = |v: Option<bool>| v.unwrap_or(false);
    let proven = default.is_some_and(|r| {
        bucket_key(r.bucket_key_enabled()) == bucket_key(plan.bucket_key)
            && r.apply_server_side_encryption_by_default()
                .is_some_and(|d| {
                    *d.sse_algorithm() == plan.algorithm
                        && d.kms_master_key_id() == Some(key.arn.as_str())
                })
    });
    let wanted = format!(
        "{} with {}{}",
        plan.algorithm.as_str(),
        key.arn,
        if bucket_key(plan.bucket_key) {
            " and a bucket key"
        } else {
            ""
        }
    );
    if !proven {
        return Err(FixError::Failed {
            error: format!("PutBucketEncryption returned success, but GetBucketEncryption does not read {wanted}"),
        });
    }
    if let Some(before) = before {
        let changed = differences(&before, &after, BUCKET_FIX_CHANGES);
        if !changed.is_empty() {
            return Err(FixError::Failed {
                error: format!(
                    "the key is in place, but the bucket's encryption also changed: {}",
                    changed.join(", ")
                ),
            });
        }
    }
    Ok(format!(
        "PutBucketEncryption set bucket {} to {wanted}{}; GetBucketEncryption read it back, the other rules as they were.",
        b.name,
        if rules.len() > 1 { ", keeping its other rules" } else { "" }
    ))
}

/// What the default rule becomes: the key, and only what a key needs besides.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    algorithm: ServerSideEncryption,
    bucket_key: Option<bool>,
}

/// A bucket already on SSE-KMS or DSSE-KMS keeps its algorithm and its bucket-key setting:
/// only the key changes (dual-layer encryption is never downgraded, and a bucket key changes
/// the encryption context that key policies may test). A bucket on SSE-S3, or without a rule,
/// moves to SSE-KMS with a bucket key, which spares a KMS call per log object.
fn planned(rules: &[ServerSideEncryptionRule]) -> Planned {
    let default = rules
        .iter()
        .find(|r| r.apply_server_side_encryption_by_default().is_some());
    let algorithm = default
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().clone());
    match algorithm {
        Some(kms @ (ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)) => Planned {
            algorithm: kms,
            bucket_key: default.and_then(|r| r.bucket_key_enabled()),
        },
        _ => Planned {
            algorithm: ServerSideEncryption::AwsKms,
            bucket_key: Some(true),
        },
    }
}

/// The rules with `key` in the default encryption as [`planned`] says; every other member of
/// every rule as it was. No rule yet: one is added.
fn with_key(
    rules: &[ServerSideEncryptionRule],
    key: &str,
) -> Result<ServerSideEncryptionConfiguration, aws_sdk_s3::error::BuildError> {
    let plan = planned(rules);
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(plan.algorithm)
        .kms_master_key_id(key)
        .build()?;
    let mut rules = rules.to_vec();
    match rules
        .iter_mut()
        .find(|r| r.apply_server_side_encryption_by_default().is_some())
    {
        Some(rule) => {
            rule.apply_server_side_encryption_by_default = Some(default);
            rule.bucket_key_enabled = plan.bucket_key;
        }
        None => rules.insert(
            0,
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .set_bucket_key_enabled(plan.bucket_key)
                .build(),
        ),
    }
    ServerSideEncryptionConfiguration::builder()
        .set_rules(Some(rules))
        .build()
}

/// A write that failed: refused outright (nothing written; busy or throttled may pass), or
/// unknown (a timeout may have written: a failure to report, not to retry blind).
fn refused_or_failed<E>(
    call: &'static str,
    refused: &str,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> FixError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = AwsError::from_sdk(call, e);
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(_) if error.retryable => FixError::Retry(error),
        aws_sdk_s3::error::SdkError::ServiceError(_) => {
            FixError::Refused(format!("{refused}: {error}"))
        }
        _ => FixError::Failed {
            error: error.to_string(),
        },
    }
}

// ----------------------------------------------------------------------------------- steps

pub fn log_group_steps(g: &LogGroupState, p: &Protection, region: &str) -> Vec<String> {
    if g.raw.is_none() && matches!(p.subject, Subject::Unprotected { .. }) {
        return vec![format!(
            "Create log group {name} with a customer-managed key: aws logs create-log-group --region {region} --log-group-name {name} --kms-key-id <CMK ARN> (its key policy must let logs.{region}.amazonaws.com use it), or point the logging configuration at an existing log group on a CMK.",
            name = g.name
        )];
    }
    vec![
        format!("Make sure the key's policy lets CloudWatch Logs use it: a statement for the principal logs.{region}.amazonaws.com with kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*, conditioned on kms:EncryptionContext:aws:logs:arn = the log group's ARN."),
        format!("aws logs associate-kms-key --region {region} --log-group-name {} --kms-key-id <CMK ARN>", g.name),
        "Or let the guard do it: cmk-guard check --event <event.json> --mode remediate --force".to_owned(),
    ]
}

pub fn bucket_steps(b: &BucketState, p: &Protection, region: &str) -> Vec<String> {
    if matches!(b.read, BucketRead::Missing) && matches!(p.subject, Subject::Unprotected { .. }) {
        return vec![format!(
            "Create bucket {name} in {region} with default encryption aws:kms and a customer-managed key, or point the logging configuration at an existing bucket on a CMK.",
            name = b.name
        )];
    }
    vec![
        "Make sure the key's policy lets Bedrock use it: a statement for the principal bedrock.amazonaws.com with kms:GenerateDataKey, conditioned on aws:SourceAccount, aws:SourceArn (arn:aws:bedrock:<region>:<account>:*) and kms:EncryptionContext:aws:s3:arn = the bucket's ARN.".to_owned(),
        format!(
            "aws s3api put-bucket-encryption --bucket {} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"<CMK ARN>\"}},\"BucketKeyEnabled\":true}}]}}' (keep any other rule the bucket has)",
            b.name
        ),
        "Or let the guard do it: cmk-guard check --event <event.json> --mode remediate --force".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(algorithm: &str, key: Option<&str>) -> BucketRead {
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::from(algorithm))
            .set_kms_master_key_id(key.map(str::to_owned))
            .build()
            .unwrap();
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .build();
        BucketRead::Rules(vec![rule], json!({}))
    }

    #[test]
    fn every_algorithm_and_key_combination_has_its_own_subject() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let problem = |s: &Subject| match s {
            Subject::Unprotected { problem, reason } => Some((*problem, reason.clone())),
            _ => None,
        };
        let cases: Vec<(BucketRead, Option<KeyProblem>, &str)> = vec![
            (
                rules("AES256", None),
                Some(KeyProblem::AwsOwned),
                "SSE-S3 (AES256)",
            ),
            (
                rules("AES256", Some(key)),
                Some(KeyProblem::AwsOwned),
                "SSE-S3",
            ),
            (
                rules("aws:kms", None),
                Some(KeyProblem::AwsManaged),
                "aws:kms without a key id",
            ),
            (
                rules("aws:kms:dsse", None),
                Some(KeyProblem::AwsManaged),
                "aws:kms:dsse without a key id",
            ),
            (
                BucketRead::NoRule,
                Some(KeyProblem::Unencrypted),
                "no default-encryption rule",
            ),
            (
                BucketRead::Missing,
                Some(KeyProblem::Absent),
                "does not exist",
            ),
            (
                BucketRead::Rules(vec![], json!({})),
                Some(KeyProblem::Unencrypted),
                "no default-encryption rule",
            ),
        ];
        for (read, expected, reason) in cases {
            let (got, text) = problem(&bucket_subject("logs-bucket", &read)).unwrap();
            assert_eq!(Some(got), expected, "{text}");
            assert!(
                text.contains(reason) && text.contains("bucket logs-bucket"),
                "{text}"
            );
        }
        for (algorithm, named) in [
            ("aws:kms", key),
            ("aws:kms:dsse", key),
            ("aws:kms", "alias/aws/s3"),
        ] {
            match bucket_subject("b", &rules(algorithm, Some(named))) {
                Subject::Key(Some(k)) => assert_eq!(k.as_str(), named),
                other => panic!("{algorithm} with {named}: {other:?}"),
            }
        }
        assert!(matches!(
            bucket_subject("b", &rules("aws:kms", Some("not a key"))),
            Subject::Unreadable(_)
        ));
        assert!(matches!(
            bucket_subject("b", &rules("aws:fsx", None)),
            Subject::Unreadable(_)
        ));
    }

    #[test]
    fn xml_answers_become_lists_and_unknown_members_are_found() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault>
  <BucketKeyEnabled>false</BucketKeyEnabled><FutureSetting>on</FutureSetting></Rule>
</ServerSideEncryptionConfiguration>"#;
        let value = xml_value(xml).unwrap();
        assert_eq!(
            value["ServerSideEncryptionConfiguration"][0]["Rule"][0]
                ["ApplyServerSideEncryptionByDefault"][0]["SSEAlgorithm"][0],
            "AES256"
        );
        assert_eq!(
            unknown_members(&value, KNOWN_BUCKET_MEMBERS),
            ["ServerSideEncryptionConfiguration[].Rule[].FutureSetting"]
        );
        assert!(xml_value(b"not xml").is_err());
    }

    #[test]
    fn the_fix_changes_the_default_rule_only() {
        let blocked = aws_sdk_s3::types::BlockedEncryptionTypes::builder()
            .encryption_type(aws_sdk_s3::types::EncryptionType::SseC)
            .build();
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .unwrap(),
            )
            .blocked_encryption_types(blocked.clone())
            .build();
        let fixed = with_key(&[rule], "arn:aws:kms:us-east-1:1:key/k").unwrap();
        let [rule] = fixed.rules() else {
            panic!("one rule")
        };
        let default = rule.apply_server_side_encryption_by_default().unwrap();
        assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKms);
        assert_eq!(
            default.kms_master_key_id(),
            Some("arn:aws:kms:us-east-1:1:key/k")
        );
        assert_eq!(rule.bucket_key_enabled(), Some(true));
        assert_eq!(rule.blocked_encryption_types(), Some(&blocked), "kept");
        let added = with_key(&[], "k").unwrap();
        assert_eq!(added.rules().len(), 1);
        assert_eq!(added.rules()[0].bucket_key_enabled(), Some(true));
    }

    fn kms_rule(
        algorithm: ServerSideEncryption,
        bucket_key: Option<bool>,
    ) -> ServerSideEncryptionRule {
        ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(algorithm)
                    .build()
                    .unwrap(),
            )
            .set_bucket_key_enabled(bucket_key)
            .build()
    }

    #[test]
    fn a_bucket_already_on_kms_keeps_its_algorithm_and_bucket_key() {
        // DSSE-KMS on aws/s3: the key changes, dual-layer stays (and S3 has no bucket keys
        // for DSSE-KMS, so none is added).
        let dsse = with_key(&[kms_rule(ServerSideEncryption::AwsKmsDsse, None)], "k").unwrap();
        let rule = &dsse.rules()[0];
        let default = rule.apply_server_side_encryption_by_default().unwrap();
        assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKmsDsse);
        assert_eq!(default.kms_master_key_id(), Some("k"));
        assert_eq!(rule.bucket_key_enabled(), None);
        // SSE-KMS on aws/s3 without a bucket key: the bucket key stays off.
        let kms = with_key(&[kms_rule(ServerSideEncryption::AwsKms, Some(false))], "k").unwrap();
        let rule = &kms.rules()[0];
        assert_eq!(
            rule.apply_server_side_encryption_by_default()
                .unwrap()
                .sse_algorithm(),
            &ServerSideEncryption::AwsKms
        );
        assert_eq!(rule.bucket_key_enabled(), Some(false));
    }
}
