//! AWS clients and per-account credentials. The endpoint, Region and credentials come from
//! the SDK's own environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...); nothing here knows
//! about the emulator.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::aws::AwsError;
use crate::keys::{KeyDirectory, KeyRef};
use crate::ledger::Ledger;
use crate::settings::SettingsSource;
use crate::verdict::Location;

/// The function's environment, read once.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub alert_topic_arn: Option<String>,
    pub config_parameter: Option<String>,
    pub member_role_name: Option<String>,
    /// The ledger's DynamoDB table; unset: each event is judged alone.
    pub state_table: Option<String>,
    /// Who makes the calls (`guardrails`, `cli`, ...): the SDK's app name becomes
    /// `cmk-guard-<app>`, sent in every request's user agent, so CloudTrail's `userAgent`
    /// tells which guard function made a call.
    pub app: Option<String>,
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
            state_table: var("STATE_TABLE"),
            app: None,
        }
    }
}

/// SDK timeouts that fit an invocation's time: a call that hangs must fail while there is
/// still time to report, release the claim, or leave the event to a retry.
pub fn timeouts_for(budget: Duration) -> TimeoutConfig {
    let clamp =
        |d: Duration, lo: u64, hi: u64| d.clamp(Duration::from_secs(lo), Duration::from_secs(hi));
    TimeoutConfig::builder()
        .connect_timeout(clamp(budget / 10, 1, 3))
        .operation_attempt_timeout(clamp(budget / 8, 1, 5))
        .operation_timeout(clamp(budget / 3, 2, 15))
        .build()
}

/// Credentials and Region for one account and Region: where a resource is read and fixed.
#[derive(Clone, Debug)]
pub struct Scope {
    pub account: String,
    pub region: String,
    /// `aws`, `aws-cn`, `aws-us-gov`, ...: for the ARNs a reactor builds.
    pub partition: String,
    pub config: SdkConfig,
    /// Every reactor classifies keys where its resource lives: one client per scope.
    pub kms: aws_sdk_kms::Client,
}

impl Scope {
    fn new(at: &Location, config: &SdkConfig) -> Self {
        let config = config
            .to_builder()
            .region(Region::new(at.region.clone()))
            .build();
        Scope {
            account: at.account.clone(),
            region: at.region.clone(),
            partition: at.partition.clone(),
            kms: aws_sdk_kms::Client::new(&config),
            config,
        }
    }

    /// A KMS client that can describe `key`: a key or alias ARN of another Region is asked
    /// in that Region (KMS is regional; the scope's Region does not know the key).
    pub fn kms_for(&self, key: &KeyRef) -> aws_sdk_kms::Client {
        match key.region() {
            Some(region) if region != self.region => {
                let config = self
                    .config
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                aws_sdk_kms::Client::new(&config)
            }
            _ => self.kms.clone(),
        }
    }
}

/// The account and partition the function runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Home {
    pub account: String,
    pub partition: String,
}

impl Home {
    /// From any ARN of the function's own (`arn:<partition>:<service>:<region>:<account>:...`).
    pub fn from_arn(arn: &str) -> Option<Home> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), _, _, Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (!partition.is_empty() && crate::keys::is_account_id(account)).then(|| Home {
            account: account.to_owned(),
            partition: partition.to_owned(),
        })
    }
}

/// Everything a warm Lambda instance keeps between events.
pub struct Context {
    pub env: Env,
    base: SdkConfig,
    home: OnceLock<Home>,
    member_configs: Mutex<HashMap<String, SdkConfig>>,
    /// Scopes already built, so a warm instance reuses their clients and connections.
    scopes: Mutex<HashMap<(String, String), Scope>>,
    pub keys: KeyDirectory,
    pub settings: SettingsSource,
    pub ledger: Option<Ledger>,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Context {
    /// Loads the SDK configuration from the environment (no network call), with timeouts
    /// that fit `budget`, the time an invocation has.
    pub async fn from_env(budget: Duration, app: &str) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts_for(budget))
            .load()
            .await;
        let env = Env {
            app: Some(app.to_owned()),
            ..Env::from_process()
        };
        Self::new(base, env)
    }

    pub fn new(base: SdkConfig, env: Env) -> Self {
        let base = with_app_name(base, env.app.as_deref());
        let base = match base.http_client() {
            Some(_) => base,
            None => base.to_builder().http_client(one_http_client()).build(),
        };
        Context {
            keys: KeyDirectory::default(),
            settings: SettingsSource::new(
                env.config_parameter.clone(),
                SettingsSource::DEFAULT_TTL,
            ),
            ledger: env.state_table.clone().map(Ledger::new),
            sns: aws_sdk_sns::Client::new(&base),
            ssm: aws_sdk_ssm::Client::new(&base),
            dynamodb: aws_sdk_dynamodb::Client::new(&base),
            member_configs: Mutex::new(HashMap::new()),
            scopes: Mutex::new(HashMap::new()),
            home: OnceLock::new(),
            base,
            env,
        }
    }

    /// The account and partition the function runs in. The Lambda runtime knows them from
    /// the function ARN, which saves an STS round trip on every cold start.
    pub fn set_home(&self, home: Home) {
        let _ = self.home.set(home);
    }

    /// The home already known (without asking STS), if any.
    pub fn known_home(&self) -> Option<&Home> {
        self.home.get()
    }

    /// Credentials for where a resource lives. The home account is read with the function's
    /// own credentials; another account through `arn:<partition>:iam::<account>:role/
    /// <MEMBER_ROLE_NAME>`. Without MEMBER_ROLE_NAME another account cannot be reached: an
    /// error, never a read of the wrong account (which would say "not found").
    pub async fn scope(&self, at: &Location) -> Result<Scope, AwsError> {
        let key = (at.account.clone(), at.region.clone());
        if let Some(scope) = self.scopes.lock().ok().and_then(|s| s.get(&key).cloned()) {
            return Ok(scope);
        }
        let scope = Scope::new(at, &self.account_config(at).await?);
        if let Ok(mut scopes) = self.scopes.lock() {
            scopes.insert(key, scope.clone());
        }
        Ok(scope)
    }

    async fn account_config(&self, at: &Location) -> Result<SdkConfig, AwsError> {
        let home = self.home().await?;
        if home.account == at.account {
            return Ok(self.base.clone());
        }
        let Some(role_name) = &self.env.member_role_name else {
            return Err(AwsError::new(
                "sts:AssumeRole",
                format!(
                    "the resource is in account {}, not in this function's account {}, and MEMBER_ROLE_NAME is not set: the guard has no way into that account",
                    at.account, home.account
                ),
                false,
            ));
        };
        if let Some(config) = self
            .member_configs
            .lock()
            .ok()
            .and_then(|m| m.get(&at.account).cloned())
        {
            return Ok(config);
        }
        let role_arn = member_role_arn(at, role_name);
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
            m.insert(at.account.clone(), config.clone());
        }
        Ok(config)
    }

    /// The home account and partition; asks STS once when the runtime did not say.
    pub async fn home(&self) -> Result<Home, AwsError> {
        if let Some(home) = self.home.get() {
            return Ok(home.clone());
        }
        const CALL: &str = "sts:GetCallerIdentity";
        let sts = aws_sdk_sts::Client::new(&self.base);
        let identity = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(CALL, &e))?;
        let home = identity
            .arn()
            .and_then(Home::from_arn)
            .ok_or_else(|| AwsError::new(CALL, "the answer names no caller ARN", false))?;
        self.set_home(home.clone());
        Ok(home)
    }
}

/// The HTTP client every AWS client of a context shares (unless the configuration brings its
/// own): the SDK's default (rustls with aws-lc, proxies from the environment), built once.
/// Without it each SDK client builds its own: a TLS context with the machine's root
/// certificates parsed again, and a connection pool of its own, so a client made per event (a
/// reactor's service client for a scope) paid both on every event and never reused a
/// connection.
fn one_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    // The same connector the SDK builds for its default client (aws-smithy-runtime's
    // `default_https_client`), per timeout settings; the builder caches one per settings.
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// `base` with the app name `cmk-guard-<app>`; unchanged without an app or when the name
/// is not one the SDK accepts (it then says why in the logs: a name is not worth failing for).
fn with_app_name(base: SdkConfig, app: Option<&str>) -> SdkConfig {
    let Some(app) = app else { return base };
    match AppName::new(format!("cmk-guard-{app}")) {
        Ok(name) => base.to_builder().app_name(name).build(),
        Err(e) => {
            tracing::warn!(app, error = %e, "not a valid SDK app name; calls carry none");
            base
        }
    }
}

/// The member role in the resource's own partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn member_role_arn(at: &Location, role_name: &str) -> String {
    format!("arn:{}:iam::{}:role/{role_name}", at.partition, at.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_comes_from_the_arn_and_reaches_the_member_role() {
        let home =
            Home::from_arn("arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:guard")
                .unwrap();
        assert_eq!(home.partition, "aws-us-gov");
        assert_eq!(home.account, "111122223333");
        let at = Location {
            account: "444455556666".into(),
            region: "cn-north-1".into(),
            partition: "aws-cn".into(),
        };
        assert_eq!(
            member_role_arn(&at, "guard-member"),
            "arn:aws-cn:iam::444455556666:role/guard-member"
        );
        assert_eq!(Home::from_arn("not an arn"), None);
    }

    #[test]
    fn timeouts_leave_time_to_report() {
        let t = timeouts_for(Duration::from_secs(30));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(
            t.operation_attempt_timeout(),
            Some(Duration::from_millis(3750))
        );
        let short = timeouts_for(Duration::from_secs(3));
        assert_eq!(short.operation_timeout(), Some(Duration::from_secs(2)));
    }
}
