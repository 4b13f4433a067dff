//! Test support: each test gets its own AWS account in the emulator (moto maps credentials
//! from sts:AssumeRole to the role's account), so tests run in parallel against one server
//! without seeing each other's resources or messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_bedrock::types::*;
use aws_sdk_sts::config::Credentials;
use bedrock_cmk_guard::clients::{Context, Env, Home};
use bedrock_cmk_guard::finding::Finding;
use bedrock_cmk_guard::pipeline::{handle, HandlerError, Options};
use bedrock_cmk_guard::Reactor;
use data_jobs::DataJobs;
use guardrails::Guardrails;
use invocation_logging::InvocationLogging;
use model_jobs::ModelJobs;
use serde_json::Value;

pub mod jobs;
pub use jobs::{job_event, JobKind};

pub const REGION: &str = "us-east-1";

/// The emulator's address: `AWS_ENDPOINT_URL`, as for the product itself.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "the integration tests need the emulator: run tests/run-all.sh, or start \
             tests/emulator/run.sh 5000 and export AWS_ENDPOINT_URL=http://127.0.0.1:5000"
        )
    })
}

/// Plain HTTP to the emulator's own endpoints (request log, options), without another HTTP
/// crate.
pub fn http(method: &str, path: &str) -> Value {
    request(method, path, &[], "").1
}

/// One HTTP request to the emulator: (status, JSON body or null).
pub fn request(method: &str, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let url = endpoint();
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A fresh 12-digit account id, unique per test and per run.
pub fn unique_account(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = DefaultHasher::new();
    (
        name,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    )
        .hash(&mut h);
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .hash(&mut h);
    format!("9{:011}", h.finish() % 100_000_000_000)
}

async fn config_with(credentials: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint())
        .credentials_provider(credentials)
        // The emulator answers what it lacks with HTTP 500; retrying that only wastes seconds.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

/// One emulated AWS account with clients acting in it.
pub struct Account {
    pub id: String,
    /// The account's credentials, for processes started by tests (the function binary).
    pub credentials: Credentials,
    pub config: SdkConfig,
    pub bedrock: aws_sdk_bedrock::Client,
    pub kms: aws_sdk_kms::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Account {
    pub async fn new(test_name: &str) -> Account {
        let root = config_with(Credentials::new("testing", "testing", None, None, "tests")).await;
        let id = unique_account(test_name);
        let assumed = aws_sdk_sts::Client::new(&root)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/cmk-guard-test"))
            .role_session_name("tests")
            .send()
            .await
            .expect("sts:AssumeRole on the emulator");
        let c = assumed.credentials().unwrap();
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        let config = config_with(credentials.clone()).await;
        Account {
            bedrock: aws_sdk_bedrock::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            // The emulator answers on 127.0.0.1: bucket names are no host names there.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            id,
            credentials,
            config,
        }
    }

    /// A process environment that reaches the emulator as this account, and nothing else from
    /// the test's own environment (the binaries must work from the SDK's variables alone).
    pub fn sdk_env(&self, command: &mut std::process::Command) {
        let c = &self.credentials;
        command
            .env_clear()
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", c.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key())
            .env("AWS_SESSION_TOKEN", c.session_token().unwrap_or_default())
            .env("AWS_MAX_ATTEMPTS", "1");
    }

    /// The guard's context as a function deployed in this account would build it.
    pub fn context(&self, env: Env) -> Context {
        self.context_with(self.config.clone(), env)
    }

    /// The same, on an SDK configuration of the test's choosing (retries, say).
    pub fn context_with(&self, config: SdkConfig, env: Env) -> Context {
        let ctx = Context::new(config, env);
        ctx.set_home(Home {
            account: self.id.clone(),
            partition: "aws".to_owned(),
        });
        ctx
    }

    /// Sets this account's emulator options (tests/emulator/README.md): status transitions,
    /// unknown members, faults. Returns the account's options as they now are.
    pub fn emulate(&self, options: Value) -> Value {
        let mut body = options;
        body["account"] = Value::String(self.id.clone());
        let (status, answer) = request(
            "POST",
            "/_cmk_guard/options",
            &[("Content-Type", "application/json".to_owned())],
            &body.to_string(),
        );
        assert_eq!(status, 200, "emulator options refused: {answer}");
        answer
    }

    /// A request to the emulator as this account's SDK would send it (the emulator routes on
    /// the SigV4 credential scope and does not check the signature).
    fn raw(&self, method: &str, path: &str, service: &str, body: &str) -> (u16, Value) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0",
            self.credentials.access_key_id()
        );
        request(
            method,
            path,
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json".to_owned()),
            ],
            body,
        )
    }

    /// An IAM role that `service` may assume (CreateRole through the Query protocol: the tests
    /// need no IAM SDK for one call); returns its ARN.
    pub fn iam_role(&self, name: &str, service: &str) -> String {
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]});
        let form = |v: &str| -> String {
            v.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form(name),
            form(&trust.to_string())
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0",
            self.credentials.access_key_id()
        );
        let (status, _) = request(
            "POST",
            "/",
            &[
                ("Authorization", auth),
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            &body,
        );
        assert_eq!(status, 200, "iam:CreateRole {name}");
        format!("arn:aws:iam::{}:role/{name}", self.id)
    }

    /// CreateGuardrail with a raw JSON body (every member the botocore model has, whatever
    /// the SDK knows); returns (id, ARN).
    pub fn raw_guardrail(&self, body: &Value) -> (String, String) {
        let (status, out) = self.raw("POST", "/guardrails", "bedrock", &body.to_string());
        assert_eq!(status, 202, "CreateGuardrail: {out}");
        (
            out["guardrailId"].as_str().unwrap().to_owned(),
            out["guardrailArn"].as_str().unwrap().to_owned(),
        )
    }

    /// GetGuardrail's raw JSON, exactly as the service sent it.
    pub fn raw_draft(&self, id: &str) -> Value {
        let (status, out) = self.raw(
            "GET",
            &format!("/guardrails/{id}?guardrailVersion=DRAFT"),
            "bedrock",
            "",
        );
        assert_eq!(status, 200, "GetGuardrail: {out}");
        out
    }

    /// Publishes the DRAFT as a new version; returns its number.
    pub async fn publish_version(&self, id: &str) -> String {
        self.bedrock
            .create_guardrail_version()
            .guardrail_identifier(id)
            .send()
            .await
            .unwrap()
            .version()
            .to_owned()
    }

    /// A customer-managed key; returns its ARN.
    pub async fn cmk(&self, alias: Option<&str>) -> String {
        let key = self
            .kms
            .create_key()
            .description("test CMK")
            .send()
            .await
            .unwrap();
        let meta = key.key_metadata().unwrap();
        if let Some(alias) = alias {
            self.kms
                .create_alias()
                .alias_name(alias)
                .target_key_id(meta.key_id())
                .send()
                .await
                .unwrap();
        }
        meta.arn().unwrap().to_owned()
    }

    /// The AWS-managed Bedrock key; returns its ARN.
    pub async fn aws_managed_key(&self) -> String {
        let out = self
            .kms
            .describe_key()
            .key_id("alias/aws/bedrock")
            .send()
            .await
            .unwrap();
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    }

    /// A guardrail with every kind of policy, optionally encrypted with `kms_key`; returns
    /// (id, ARN).
    pub async fn guardrail(&self, name: &str, kms_key: Option<&str>) -> (String, String) {
        let out = self
            .bedrock
            .create_guardrail()
            .name(name)
            .description("keeps the support bot on topic")
            .blocked_input_messaging("Sorry, I cannot help with that.")
            .blocked_outputs_messaging("Sorry, I cannot answer that.")
            .topic_policy_config(
                GuardrailTopicPolicyConfig::builder()
                    .topics_config(
                        GuardrailTopicConfig::builder()
                            .name("investment-advice")
                            .definition("Recommending specific investments or financial products.")
                            .examples("Which stock should I buy?")
                            .r#type(GuardrailTopicType::Deny)
                            .input_action(GuardrailTopicAction::Block)
                            .output_action(GuardrailTopicAction::None)
                            .input_enabled(true)
                            .output_enabled(false)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .content_policy_config(
                GuardrailContentPolicyConfig::builder()
                    .filters_config(
                        GuardrailContentFilterConfig::builder()
                            .r#type(GuardrailContentFilterType::Violence)
                            .input_strength(GuardrailFilterStrength::High)
                            .output_strength(GuardrailFilterStrength::Medium)
                            .input_modalities(GuardrailModality::Text)
                            .input_modalities(GuardrailModality::Image)
                            .output_modalities(GuardrailModality::Text)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .word_policy_config(
                GuardrailWordPolicyConfig::builder()
                    .words_config(
                        GuardrailWordConfig::builder()
                            .text("competitor-name")
                            .build()
                            .unwrap(),
                    )
                    .managed_word_lists_config(
                        GuardrailManagedWordsConfig::builder()
                            .r#type(GuardrailManagedWordsType::Profanity)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .sensitive_information_policy_config(
                GuardrailSensitiveInformationPolicyConfig::builder()
                    .pii_entities_config(
                        GuardrailPiiEntityConfig::builder()
                            .r#type(GuardrailPiiEntityType::Email)
                            .action(GuardrailSensitiveInformationAction::Anonymize)
                            .build()
                            .unwrap(),
                    )
                    .regexes_config(
                        GuardrailRegexConfig::builder()
                            .name("ticket-id")
                            .description("internal ticket numbers")
                            .pattern("TCK-[0-9]{6}")
                            .action(GuardrailSensitiveInformationAction::Block)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .contextual_grounding_policy_config(
                GuardrailContextualGroundingPolicyConfig::builder()
                    .filters_config(
                        GuardrailContextualGroundingFilterConfig::builder()
                            .r#type(GuardrailContextualGroundingFilterType::Grounding)
                            .threshold(0.75)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .automated_reasoning_policy_config(
                GuardrailAutomatedReasoningPolicyConfig::builder()
                    .policies(format!(
                        "arn:aws:bedrock:{REGION}:{}:automated-reasoning-policy/abcdefgh1234",
                        self.id
                    ))
                    .confidence_threshold(0.8)
                    .build()
                    .unwrap(),
            )
            .cross_region_config(
                GuardrailCrossRegionConfig::builder()
                    .guardrail_profile_identifier(format!(
                        "arn:aws:bedrock:{REGION}:{}:guardrail-profile/us.guardrail.v1:0",
                        self.id
                    ))
                    .build()
                    .unwrap(),
            )
            .set_kms_key_id(kms_key.map(str::to_owned))
            .tags(Tag::builder().key("team").value("support").build().unwrap())
            .tags(
                Tag::builder()
                    .key("cost-center")
                    .value("cc-1234")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateGuardrail on the emulator");
        (
            out.guardrail_id().to_owned(),
            out.guardrail_arn().to_owned(),
        )
    }

    pub async fn draft(
        &self,
        id: &str,
    ) -> aws_sdk_bedrock::operation::get_guardrail::GetGuardrailOutput {
        self.bedrock
            .get_guardrail()
            .guardrail_identifier(id)
            .guardrail_version("DRAFT")
            .send()
            .await
            .unwrap()
    }

    pub async fn tags(&self, arn: &str) -> Vec<(String, String)> {
        let out = self
            .bedrock
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<_> = out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
        tags
    }

    /// An SNS topic with a raw-delivery SQS subscriber; returns (topic ARN, queue URL).
    pub async fn alert_topic(&self) -> (String, String) {
        let topic = self
            .sns
            .create_topic()
            .name("cmk-guard-alerts")
            .send()
            .await
            .unwrap();
        let topic_arn = topic.topic_arn().unwrap().to_owned();
        let queue = self
            .sqs
            .create_queue()
            .queue_name("cmk-guard-alerts")
            .send()
            .await
            .unwrap();
        let queue_url = queue.queue_url().unwrap().to_owned();
        let queue_arn = format!("arn:aws:sqs:{REGION}:{}:cmk-guard-alerts", self.id);
        self.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        (topic_arn, queue_url)
    }

    /// Every message waiting in the queue (SNS delivers to SQS before Publish returns).
    pub async fn drain(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            let batch = out.messages().to_vec();
            if batch.is_empty() {
                return all;
            }
            for m in &batch {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            all.extend(batch);
        }
    }

    pub async fn put_settings(&self, name: &str, document: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(document)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    /// The ledger's table, as infra/ creates it (partition key `id`, TTL `expiration`).
    pub async fn state_table(&self) -> String {
        use aws_sdk_dynamodb::types::*;
        let name = "cmk-guard-state";
        self.dynamodb
            .create_table()
            .table_name(name)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        name.to_owned()
    }

    /// The AWS calls the emulator served for this account, in order ("service:Operation").
    pub fn calls(&self) -> Vec<String> {
        requests()
            .into_iter()
            .filter(|r| r["account"] == self.id.as_str())
            .map(|r| {
                format!(
                    "{}:{}",
                    r["service"].as_str().unwrap_or("?"),
                    r["operation"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// The same calls, each with the connection it came on (the caller's address and port).
    pub fn connections(&self) -> Vec<(String, String)> {
        requests()
            .into_iter()
            .filter(|r| r["account"] == self.id.as_str())
            .map(|r| {
                let call = format!(
                    "{}:{}",
                    r["service"].as_str().unwrap_or("?"),
                    r["operation"].as_str().unwrap_or("?")
                );
                (call, r["connection"].as_str().unwrap_or("?").to_owned())
            })
            .collect()
    }

    /// The Publish requests made in this account: what was really handed to SNS.
    pub fn published(&self) -> Vec<Value> {
        requests()
            .into_iter()
            // A publish the emulator answered with an injected fault never reached SNS.
            .filter(|r| {
                r["account"] == self.id.as_str()
                    && r.get("publish").is_some()
                    && r.get("fault").is_none()
            })
            .map(|r| r["publish"].clone())
            .collect()
    }
}

fn requests() -> Vec<Value> {
    http("GET", "/_cmk_guard/requests")["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A fixture event rewritten to describe `guardrail_arn` in `account`, with a fresh eventID.
pub fn event(fixture: &str, account: &str, guardrail_arn: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(fixture);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let id = guardrail_arn.rsplit('/').next().unwrap();
    event["account"] = account.into();
    event["region"] = REGION.into();
    let detail = &mut event["detail"];
    detail["awsRegion"] = REGION.into();
    detail["recipientAccountId"] = account.into();
    detail["userIdentity"]["accountId"] = account.into();
    detail["eventID"] = unique_account("event").into();
    if detail["requestParameters"]
        .get("guardrailIdentifier")
        .is_some()
    {
        detail["requestParameters"]["guardrailIdentifier"] = id.into();
    }
    let response = &mut detail["responseElements"];
    if response.get("guardrailArn").is_some() {
        response["guardrailArn"] = guardrail_arn.into();
    }
    if response.get("guardrailId").is_some() {
        response["guardrailId"] = id.into();
    }
    event
}

/// The same event as another caller made it (the fixture's caller is alice).
pub fn by(mut event: Value, actor: &str) -> Value {
    event["detail"]["userIdentity"]["arn"] = actor.into();
    event
}

/// The same call recorded again: a new CloudTrail eventID.
pub fn again(mut event: Value) -> Value {
    event["detail"]["eventID"] = unique_account("event").into();
    event
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The workspace's target directory for this profile (where `cargo build` put the binaries).
pub fn target_dir() -> std::path::PathBuf {
    // The test binary runs from target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf()
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A child process that is killed when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port` (or panics after `seconds`).
pub fn wait_for_port(port: u16, seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port} after {seconds} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An account with an alert topic, a settings document and a function context: the world
/// one deployed function sees.
pub struct Guarded<R> {
    pub account: Account,
    pub queue_url: String,
    pub env: Env,
    /// One reactor for the whole test, like one warm instance.
    pub reactor: R,
    /// Publish requests already matched with deliveries by `messages`.
    published_seen: std::cell::Cell<usize>,
    warm: std::sync::OnceLock<Context>,
}

/// The settings parameter the tests' worlds use.
pub const SETTINGS: &str = "/cmk-guard/settings";

/// The guardrails function's world.
pub type World = Guarded<Guardrails>;
/// The invocation-logging function's world.
pub type LoggingWorld = Guarded<InvocationLogging>;
/// The model-jobs function's world.
pub type ModelJobsWorld = Guarded<ModelJobs>;
/// The data-jobs function's world.
pub type DataJobsWorld = Guarded<DataJobs>;

impl<R: Reactor + Default> Guarded<R> {
    pub async fn new(test: &str, settings: Option<Value>) -> Self {
        Self::new_in(Account::new(test).await, settings).await
    }

    pub async fn new_in(account: Account, settings: Option<Value>) -> Self {
        let (topic_arn, queue_url) = account.alert_topic().await;
        // No settings of its own: an empty document, i.e. the defaults (a named parameter
        // that does not exist is an error).
        let doc = settings.unwrap_or_else(|| serde_json::json!({}));
        account.put_settings(SETTINGS, &doc.to_string()).await;
        let env = Env {
            alert_topic_arn: Some(topic_arn),
            config_parameter: Some(SETTINGS.to_owned()),
            app: Some(R::FUNCTION.to_owned()),
            ..Env::default()
        };
        Guarded {
            account,
            queue_url,
            env,
            reactor: R::default(),
            published_seen: Default::default(),
            warm: Default::default(),
        }
    }

    /// A world whose function keeps a ledger (STATE_TABLE).
    pub async fn with_ledger(test: &str, settings: Option<Value>) -> Self {
        let account = Account::new(test).await;
        let table = account.state_table().await;
        let mut w = Self::new_in(account, settings).await;
        w.env.state_table = Some(table);
        w
    }

    /// A world with a ledger that remediates with a CMK of its own; returns the key's ARN too.
    pub async fn remediating(test: &str) -> (Self, String) {
        let w = Self::with_ledger(test, None).await;
        let key = w.account.cmk(None).await;
        w.account
            .put_settings(SETTINGS, &remediate_with(&key).to_string())
            .await;
        (w, key)
    }

    /// A cold start: a fresh context (settings, keys and scopes read anew).
    pub async fn run(&self, event: &Value) -> Finding {
        self.try_run(event).await.unwrap()
    }

    pub async fn try_run(&self, event: &Value) -> Result<Finding, HandlerError> {
        let ctx = self.account.context(self.env.clone());
        handle(&self.reactor, &ctx, event, &Options::default()).await
    }

    /// A cold start with the SDK's standard retries on, as deployed (the tests' own clients
    /// make one attempt), with a short backoff so a test does not wait long.
    pub async fn try_run_retrying(&self, event: &Value) -> Result<Finding, HandlerError> {
        let config = self.retrying();
        let ctx = self.account.context_with(config, self.env.clone());
        handle(&self.reactor, &ctx, event, &Options::default()).await
    }

    /// The same, with the SDK timeouts a Lambda with `budget` left would have.
    pub async fn try_run_within(
        &self,
        event: &Value,
        budget: std::time::Duration,
    ) -> Result<Finding, HandlerError> {
        let config = self
            .retrying()
            .to_builder()
            .timeout_config(bedrock_cmk_guard::clients::timeouts_for(budget))
            .build();
        let ctx = self.account.context_with(config, self.env.clone());
        handle(&self.reactor, &ctx, event, &Options::default()).await
    }

    /// The account's SDK configuration with the standard retries (fast back-off).
    fn retrying(&self) -> SdkConfig {
        let retries = RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(20));
        self.account
            .config
            .to_builder()
            .retry_config(retries)
            .build()
    }

    /// The same warm instance for every call (its caches live across events).
    pub async fn run_warm(&self, event: &Value) -> Result<Finding, HandlerError> {
        let ctx = self
            .warm
            .get_or_init(|| self.account.context(self.env.clone()));
        handle(&self.reactor, ctx, event, &Options::default()).await
    }

    /// The findings that reached the SQS subscriber since the last call, checked against
    /// what SNS was handed.
    pub async fn messages(&self) -> Vec<Finding> {
        let delivered = self.account.drain(&self.queue_url).await;
        let published = self.account.published().len();
        let new = published - self.published_seen.replace(published);
        assert_eq!(delivered.len(), new, "every publish is delivered once");
        delivered
            .iter()
            .map(|m| {
                serde_json::from_str(m.body().unwrap())
                    .expect("the sqs rendering is the Finding JSON")
            })
            .collect()
    }

    /// The chat cards SNS was handed since `since` publishes.
    pub fn chat_cards(&self, since: usize) -> Vec<Value> {
        self.account.published()[since..]
            .iter()
            .map(|p| {
                let body: Value = serde_json::from_str(p["Message"].as_str().unwrap()).unwrap();
                serde_json::from_str(body["https"].as_str().unwrap()).unwrap()
            })
            .collect()
    }
}

/// Settings that remediate with `key` in the test Region.
pub fn remediate_with(key: &str) -> Value {
    serde_json::json!({"defaults": {"mode": "remediate", "remediationKeys": {REGION: key}}})
}

/// A key policy: the account's root, plus the services named (`logs`: CloudWatch Logs in the
/// test Region; `bedrock`: Bedrock writing to a bucket), as a team writes it.
pub fn key_policy(account: &str, services: &[&str]) -> Value {
    let mut statements = vec![serde_json::json!({
        "Sid": "Root", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*", "Resource": "*"
    })];
    for service in services {
        let (principal, action) = match *service {
            "logs" => (
                format!("logs.{REGION}.amazonaws.com"),
                serde_json::json!([
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*"
                ]),
            ),
            _ => (
                "bedrock.amazonaws.com".to_owned(),
                serde_json::json!("kms:GenerateDataKey"),
            ),
        };
        statements.push(serde_json::json!({
            "Sid": format!("Allow-{service}"), "Effect": "Allow",
            "Principal": {"Service": principal}, "Action": action, "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

/// The names a test's logging configuration uses.
pub struct Destinations {
    pub log_group: String,
    pub bucket: String,
    pub large_data: String,
}

impl Account {
    /// A CMK whose policy lets the services named use it; returns its ARN.
    pub async fn cmk_for(&self, services: &[&str]) -> String {
        let arn = self.cmk(None).await;
        self.kms
            .put_key_policy()
            .key_id(&arn)
            .policy_name("default")
            .policy(key_policy(&self.id, services).to_string())
            .send()
            .await
            .unwrap();
        arn
    }

    /// DisassociateKmsKey: the log group loses its key, as a person's change would do it.
    pub async fn drop_log_group_key(&self, name: &str) {
        self.logs
            .disassociate_kms_key()
            .log_group_name(name)
            .send()
            .await
            .unwrap();
    }

    /// A log group, a bucket and a large-data bucket (on `key` when given, else as S3 and
    /// CloudWatch Logs leave them), and the logging configuration that uses them.
    pub async fn logging(&self, key: Option<&str>) -> Destinations {
        let d = Destinations {
            log_group: "/bedrock/invocations".to_owned(),
            bucket: format!("bedrock-logs-{}", self.id),
            large_data: format!("bedrock-large-{}", self.id),
        };
        self.logs
            .create_log_group()
            .log_group_name(&d.log_group)
            .set_kms_key_id(key.map(str::to_owned))
            .send()
            .await
            .unwrap();
        for bucket in [&d.bucket, &d.large_data] {
            self.s3.create_bucket().bucket(bucket).send().await.unwrap();
            if let Some(key) = key {
                self.bucket_encryption(bucket, "aws:kms", Some(key)).await;
            }
        }
        self.put_logging(&d).await;
        d
    }

    pub async fn put_logging(&self, d: &Destinations) {
        use aws_sdk_bedrock::types::{CloudWatchConfig, LoggingConfig, S3Config};
        let config = LoggingConfig::builder()
            .cloud_watch_config(
                CloudWatchConfig::builder()
                    .log_group_name(&d.log_group)
                    .role_arn(format!("arn:aws:iam::{}:role/bedrock-logging", self.id))
                    .large_data_delivery_s3_config(
                        S3Config::builder()
                            .bucket_name(&d.large_data)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .s3_config(
                S3Config::builder()
                    .bucket_name(&d.bucket)
                    .key_prefix("bedrock")
                    .build()
                    .unwrap(),
            )
            .text_data_delivery_enabled(true)
            .build();
        self.bedrock
            .put_model_invocation_logging_configuration()
            .logging_config(config)
            .send()
            .await
            .unwrap();
    }

    /// PutBucketEncryption with one default rule.
    pub async fn bucket_encryption(&self, bucket: &str, algorithm: &str, key: Option<&str>) {
        use aws_sdk_s3::types::*;
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::from(algorithm))
            .set_kms_master_key_id(key.map(str::to_owned))
            .build()
            .unwrap();
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(key.is_some())
            .build();
        self.s3
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The bucket's default encryption: (algorithm, key, bucket key).
    pub async fn bucket_key(&self, bucket: &str) -> (String, Option<String>, Option<bool>) {
        let out = self
            .s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let rule = &out.server_side_encryption_configuration().unwrap().rules()[0];
        let default = rule.apply_server_side_encryption_by_default().unwrap();
        (
            default.sse_algorithm().as_str().to_owned(),
            default.kms_master_key_id().map(str::to_owned),
            rule.bucket_key_enabled(),
        )
    }

    /// The log group's key, if it has one (`Err` when it does not exist).
    pub async fn log_group_key(&self, name: &str) -> Result<Option<String>, ()> {
        let out = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .unwrap();
        out.log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .map(|g| g.kms_key_id().map(str::to_owned))
            .ok_or(())
    }
}

/// A logging fixture event rewritten to `account`, a fresh eventID, and the log group or
/// bucket it names (when it names one).
pub fn logging_event(fixture: &str, account: &str, names: Option<&str>) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(fixture);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["account"] = account.into();
    event["region"] = REGION.into();
    let detail = &mut event["detail"];
    detail["awsRegion"] = REGION.into();
    detail["recipientAccountId"] = account.into();
    detail["userIdentity"]["accountId"] = account.into();
    detail["eventID"] = unique_account("event").into();
    if let Some(name) = names {
        let request = &mut detail["requestParameters"];
        for member in ["logGroupName", "bucketName"] {
            if request.get(member).is_some() {
                request[member] = name.into();
            }
        }
    }
    event
}
