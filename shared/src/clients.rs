//! AWS clients and per-account credentials. The endpoint, Region and credentials come from
//! the SDK's own environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...); nothing here knows
//! about the emulator.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::SharedCredentialsProvider;

use crate::idempotency::IdempotencyStore;
use crate::keys::KeyDirectory;
use crate::settings::SettingsSource;

/// The function's environment, read once.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub alert_topic_arn: Option<String>,
    pub config_parameter: Option<String>,
    pub member_role_name: Option<String>,
    pub idempotency_table: Option<String>,
}

impl Env {
    pub fn from_process() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Env {
            alert_topic_arn: var("ALERT_TOPIC_ARN"),
            config_parameter: var("CONFIG_PARAMETER"),
            member_role_name: var("MEMBER_ROLE_NAME"),
            idempotency_table: var("IDEMPOTENCY_TABLE"),
        }
    }
}

/// Credentials and Region for one account and Region: where a resource is read and fixed.
#[derive(Clone, Debug)]
pub struct Scope {
    pub account: String,
    pub region: String,
    pub config: SdkConfig,
    /// Every reactor classifies keys where its resource lives: one client per scope.
    pub kms: aws_sdk_kms::Client,
}

impl Scope {
    fn new(account: &str, region: &str, config: &SdkConfig) -> Self {
        let config = config
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        Scope {
            account: account.to_owned(),
            region: region.to_owned(),
            kms: aws_sdk_kms::Client::new(&config),
            config,
        }
    }
}

/// Everything a warm Lambda instance keeps between events.
pub struct Context {
    pub env: Env,
    base: SdkConfig,
    home_account: OnceLock<String>,
    member_configs: Mutex<HashMap<String, SdkConfig>>,
    /// Scopes already built, so a warm instance reuses their clients and connections.
    scopes: Mutex<HashMap<(String, String), Scope>>,
    pub keys: KeyDirectory,
    pub settings: SettingsSource,
    pub idempotency: Option<IdempotencyStore>,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Context {
    /// Loads the SDK configuration from the environment (no network call).
    pub async fn from_env() -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(base, Env::from_process())
    }

    pub fn new(base: SdkConfig, env: Env) -> Self {
        Context {
            keys: KeyDirectory::default(),
            settings: SettingsSource::new(
                env.config_parameter.clone(),
                SettingsSource::DEFAULT_TTL,
            ),
            idempotency: env.idempotency_table.clone().map(IdempotencyStore::new),
            sns: aws_sdk_sns::Client::new(&base),
            ssm: aws_sdk_ssm::Client::new(&base),
            dynamodb: aws_sdk_dynamodb::Client::new(&base),
            member_configs: Mutex::new(HashMap::new()),
            scopes: Mutex::new(HashMap::new()),
            home_account: OnceLock::new(),
            base,
            env,
        }
    }

    /// The account the function runs in. The Lambda runtime knows it from the function ARN,
    /// which saves an STS round trip on every cold start.
    pub fn set_home_account(&self, account: &str) {
        let _ = self.home_account.set(account.to_owned());
    }

    /// Credentials for `account`, in `region`. Another account than the home account is
    /// reached through `arn:aws:iam::<account>:role/<MEMBER_ROLE_NAME>`; without
    /// MEMBER_ROLE_NAME every account is read with the function's own credentials.
    pub async fn scope(&self, account: &str, region: &str) -> Result<Scope, String> {
        let key = (account.to_owned(), region.to_owned());
        if let Some(scope) = self.scopes.lock().ok().and_then(|s| s.get(&key).cloned()) {
            return Ok(scope);
        }
        let scope = Scope::new(account, region, &self.account_config(account).await?);
        if let Ok(mut scopes) = self.scopes.lock() {
            scopes.insert(key, scope.clone());
        }
        Ok(scope)
    }

    async fn account_config(&self, account: &str) -> Result<SdkConfig, String> {
        let Some(role_name) = &self.env.member_role_name else {
            return Ok(self.base.clone());
        };
        if self.home_account().await? == account {
            return Ok(self.base.clone());
        }
        if let Some(config) = self
            .member_configs
            .lock()
            .ok()
            .and_then(|m| m.get(account).cloned())
        {
            return Ok(config);
        }
        let role_arn = format!("arn:aws:iam::{account}:role/{role_name}");
        // The provider assumes the role lazily, on first use, and refreshes it itself.
        let provider = AssumeRoleProvider::builder(role_arn)
            .session_name("bedrock-cmk-guard")
            .configure(&self.base)
            .build()
            .await;
        let config = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        if let Ok(mut m) = self.member_configs.lock() {
            m.insert(account.to_owned(), config.clone());
        }
        Ok(config)
    }

    async fn home_account(&self) -> Result<String, String> {
        if let Some(account) = self.home_account.get() {
            return Ok(account.clone());
        }
        let sts = aws_sdk_sts::Client::new(&self.base);
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            format!(
                "sts:GetCallerIdentity: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
        let account = identity
            .account()
            .ok_or("sts:GetCallerIdentity returned no account")?
            .to_owned();
        self.set_home_account(&account);
        Ok(account)
    }
}
