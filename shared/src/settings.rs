//! Settings: one JSON document in SSM (parameter named by `CONFIG_PARAMETER`) with defaults
//! and per-account overrides. No `CONFIG_PARAMETER` means built-in defaults (alert). A named
//! parameter that is missing, or a broken document, is an error the pipeline reports — it
//! never remediates on a guess.
//!
//! ```json
//! {
//!   "defaults": { "mode": "alert",
//!                 "remediationKeys": { "us-east-1": "arn:aws:kms:us-east-1:111122223333:key/..." } },
//!   "accounts": { "444455556666": { "mode": "remediate",
//!                                   "allowedKeys": ["arn:aws:kms:us-east-1:444455556666:key/..."] } }
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::keys::{is_account_id, KeyRef};

/// What the guard may do in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Judge and log; publish and change nothing.
    Off,
    /// Publish a finding for anything worth telling.
    #[default]
    Alert,
    /// Fix what can be fixed, prove it, and say what was done.
    Remediate,
    /// Say exactly what `remediate` would do, and do nothing.
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Alert => "alert",
            Mode::Remediate => "remediate",
            Mode::DryRun => "dry-run",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Mode::Off),
            "alert" => Ok(Mode::Alert),
            "remediate" => Ok(Mode::Remediate),
            "dry-run" => Ok(Mode::DryRun),
            other => Err(format!(
                "unknown mode {other:?}: expected off, alert, remediate or dry-run"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The document as written. Unknown fields are errors: a misspelt `remediationKey` must not
/// silently leave an account unprotected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    defaults: Overrides,
    #[serde(default)]
    accounts: BTreeMap<String, Overrides>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Overrides {
    mode: Option<Mode>,
    /// Key ARNs or key ids; when set, only these keys pass.
    allowed_keys: Option<Vec<String>>,
    /// Accounts whose keys may protect this account's resources (besides its own).
    allowed_key_accounts: Option<Vec<String>>,
    /// Region -> the CMK that remediation puts in place, or a CMK per kind of part.
    remediation_keys: Option<BTreeMap<String, serde_json::Value>>,
    /// Hours before the same unresolved problem is reported again.
    repeat_alert_hours: Option<f64>,
    /// Automatic fixes per resource in 24 hours before the guard stops and asks a person.
    max_fixes_per_day: Option<u32>,
    /// Whether a job the guard stopped is submitted again with the remediation key.
    resubmit_jobs: Option<bool>,
}

/// The settings that apply to one account, merged and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSettings {
    pub mode: Mode,
    /// Empty: any CMK in good standing passes.
    pub allowed_keys: Vec<KeyRef>,
    pub allowed_key_accounts: Vec<String>,
    pub remediation_keys: BTreeMap<String, RemediationKeys>,
    pub repeat_alert_hours: f64,
    pub max_fixes_per_day: u32,
    /// After stopping a job that runs without an allowed CMK, submit the same job again with
    /// the remediation key (off by default: it starts a second job, which costs money).
    pub resubmit_jobs: bool,
}

impl AccountSettings {
    pub const DEFAULT_REPEAT_ALERT_HOURS: f64 = 24.0;
    pub const DEFAULT_MAX_FIXES_PER_DAY: u32 = 3;

    /// The key remediation puts on a part of this kind in this Region, if the settings name
    /// one.
    pub fn remediation_key(&self, region: &str, kind: &str) -> Option<&KeyRef> {
        match self.remediation_keys.get(region)? {
            RemediationKeys::One(key) => Some(key),
            RemediationKeys::PerKind(keys) => keys.get(kind),
        }
    }
}

/// The kinds of part a Region's remediation keys may be split by: a Bedrock resource's own
/// key, a log group's, a bucket's.
pub const KEY_KINDS: &[&str] = &["bedrock", "logs", "s3"];

/// One Region's remediation keys: one for everything, or one per kind of part (a team may
/// keep one key for logs and another for buckets).
#[derive(Debug, Clone, PartialEq)]
pub enum RemediationKeys {
    One(KeyRef),
    PerKind(BTreeMap<String, KeyRef>),
}

impl RemediationKeys {
    /// `"arn..."` or `{"logs": "arn...", "s3": "arn..."}`.
    fn parse(region: &str, value: &serde_json::Value) -> Result<Self, String> {
        let key = |at: String, v: &serde_json::Value| {
            let text = v
                .as_str()
                .ok_or_else(|| format!("{at}: expected a key (a string), got {v}"))?;
            KeyRef::parse(text).map_err(|e| format!("{at}: {e}"))
        };
        let at = format!("remediationKeys.{region}");
        match value {
            serde_json::Value::Object(kinds) => {
                if kinds.is_empty() {
                    return Err(format!(
                        "{at}: an empty map names no key; leave the Region out instead"
                    ));
                }
                let mut keys = BTreeMap::new();
                for (kind, v) in kinds {
                    if !KEY_KINDS.contains(&kind.as_str()) {
                        return Err(format!(
                            "{at}: unknown kind {kind:?}; expected one of {}",
                            KEY_KINDS.join(", ")
                        ));
                    }
                    keys.insert(kind.clone(), key(format!("{at}.{kind}"), v)?);
                }
                Ok(RemediationKeys::PerKind(keys))
            }
            other => Ok(RemediationKeys::One(key(at, other)?)),
        }
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            mode: Mode::Alert,
            allowed_keys: Vec::new(),
            allowed_key_accounts: Vec::new(),
            remediation_keys: BTreeMap::new(),
            repeat_alert_hours: Self::DEFAULT_REPEAT_ALERT_HOURS,
            max_fixes_per_day: Self::DEFAULT_MAX_FIXES_PER_DAY,
            resubmit_jobs: false,
        }
    }
}

/// The whole settings document, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    defaults: AccountSettings,
    accounts: BTreeMap<String, AccountSettings>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("settings parameter {parameter} is not a valid settings document: {why}")]
    Invalid { parameter: String, why: String },
    #[error("settings parameter {parameter} (CONFIG_PARAMETER) does not exist: create it, or unset CONFIG_PARAMETER to use the built-in defaults")]
    Missing { parameter: String },
    #[error("settings parameter {parameter} could not be read: {}", error.message)]
    Unreadable { parameter: String, error: AwsError },
}

impl SettingsError {
    /// Whether reading again later may succeed (throttling, 5xx, timeout).
    pub fn retryable(&self) -> bool {
        matches!(self, SettingsError::Unreadable { error, .. } if error.retryable)
    }
}

impl Settings {
    pub fn parse(text: &str) -> Result<Self, String> {
        // The path names the field a person must fix: "defaults.maxFixesPerDay: ...".
        let doc: Document =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
                .map_err(|e| match e.path().to_string().as_str() {
                    "." => e.inner().to_string(),
                    path => format!("{path}: {}", e.inner()),
                })?;
        let defaults = apply(&AccountSettings::default(), &doc.defaults)
            .map_err(|e| format!("defaults: {e}"))?;
        let mut accounts = BTreeMap::new();
        for (account, overrides) in &doc.accounts {
            if !is_account_id(account) {
                return Err(format!(
                    "accounts: {account:?} is not a 12-digit account id"
                ));
            }
            let merged =
                apply(&defaults, overrides).map_err(|e| format!("accounts.{account}: {e}"))?;
            accounts.insert(account.clone(), merged);
        }
        Ok(Settings { defaults, accounts })
    }

    pub fn for_account(&self, account: &str) -> AccountSettings {
        self.accounts.get(account).unwrap_or(&self.defaults).clone()
    }

    /// In a few words, for a person checking a deployment: the default mode and each
    /// account's own.
    pub fn summary(&self) -> String {
        let mut text = format!("default mode {}", self.defaults.mode.as_str());
        if !self.accounts.is_empty() {
            let accounts: Vec<String> = self
                .accounts
                .iter()
                .map(|(id, a)| format!("{id} {}", a.mode.as_str()))
                .collect();
            text.push_str(&format!("; accounts: {}", accounts.join(", ")));
        }
        text
    }
}

/// Overrides replace the inherited value field by field.
fn apply(base: &AccountSettings, o: &Overrides) -> Result<AccountSettings, String> {
    let mut merged = base.clone();
    if let Some(mode) = o.mode {
        merged.mode = mode;
    }
    if let Some(keys) = &o.allowed_keys {
        // An empty list would read as "any CMK": absent is how to say that.
        if keys.is_empty() {
            return Err("allowedKeys: an empty list allows no key; leave it out to allow any customer-managed key".to_owned());
        }
        merged.allowed_keys = keys
            .iter()
            .map(|k| {
                let key = KeyRef::parse(k).map_err(|e| format!("allowedKeys: {e}"))?;
                // An alias can be pointed at another key at any time: allow keys, not names.
                if key.is_alias() {
                    return Err(format!(
                        "allowedKeys: {k:?} is an alias; list key ARNs or key ids"
                    ));
                }
                Ok(key)
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(accounts) = &o.allowed_key_accounts {
        if let Some(bad) = accounts.iter().find(|a| !is_account_id(a)) {
            return Err(format!(
                "allowedKeyAccounts: {bad:?} is not a 12-digit account id"
            ));
        }
        merged.allowed_key_accounts = accounts.clone();
    }
    if let Some(keys) = &o.remediation_keys {
        merged.remediation_keys = keys
            .iter()
            .map(|(region, v)| Ok((region.clone(), RemediationKeys::parse(region, v)?)))
            .collect::<Result<_, String>>()?;
    }
    if let Some(hours) = o.repeat_alert_hours {
        if !(hours.is_finite() && hours > 0.0) {
            return Err(format!(
                "repeatAlertHours: {hours} is not a positive number of hours"
            ));
        }
        merged.repeat_alert_hours = hours;
    }
    if let Some(fixes) = o.max_fixes_per_day {
        merged.max_fixes_per_day = fixes;
    }
    if let Some(resubmit) = o.resubmit_jobs {
        merged.resubmit_jobs = resubmit;
    }
    Ok(merged)
}

/// Reads the settings parameter, cached per warm instance for a short TTL.
pub struct SettingsSource {
    parameter: Option<String>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, Arc<Settings>)>>,
}

impl SettingsSource {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    pub fn new(parameter: Option<String>, ttl: Duration) -> Self {
        SettingsSource {
            parameter,
            ttl,
            cache: Mutex::new(None),
        }
    }

    /// Failures are not cached: the next event asks SSM again.
    pub async fn load(&self, ssm: &aws_sdk_ssm::Client) -> Result<Arc<Settings>, SettingsError> {
        let Some(parameter) = &self.parameter else {
            return Ok(Arc::new(Settings::default()));
        };
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, settings)) = cache.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(settings.clone());
                }
            }
        }
        let settings = match ssm
            .get_parameter()
            .name(parameter)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => {
                let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                Settings::parse(text).map_err(|why| SettingsError::Invalid {
                    parameter: parameter.clone(),
                    why,
                })?
            }
            Err(err) => {
                return Err(match err.as_service_error() {
                    Some(GetParameterError::ParameterNotFound(_)) => SettingsError::Missing {
                        parameter: parameter.clone(),
                    },
                    _ => SettingsError::Unreadable {
                        parameter: parameter.clone(),
                        error: AwsError::from_sdk("ssm:GetParameter", &err),
                    },
                })
            }
        };
        let settings = Arc::new(settings);
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), settings.clone()));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn empty_document_means_alert_everywhere() {
        let s = Settings::parse("{}").unwrap();
        assert_eq!(s.for_account("111122223333"), AccountSettings::default());
        assert_eq!(s.for_account("111122223333").mode, Mode::Alert);
    }

    #[test]
    fn account_overrides_replace_defaults_field_by_field() {
        let doc = format!(
            r#"{{"defaults": {{"mode": "dry-run", "remediationKeys": {{"us-east-1": "{KEY}"}}}},
                "accounts": {{"444455556666": {{"mode": "remediate", "allowedKeys": ["{KEY}"]}}}}}}"#
        );
        let s = Settings::parse(&doc).unwrap();
        let member = s.for_account("444455556666");
        assert_eq!(member.mode, Mode::Remediate);
        assert_eq!(member.allowed_keys.len(), 1);
        assert_eq!(
            member
                .remediation_key("us-east-1", "logs")
                .map(KeyRef::as_str),
            Some(KEY),
            "inherited from defaults"
        );
        assert_eq!(s.for_account("777788889999").mode, Mode::DryRun);
    }

    #[test]
    fn remediation_keys_may_be_one_per_region_or_one_per_kind() {
        let logs = "arn:aws:kms:us-east-1:111122223333:key/00000000-12ab-34cd-56ef-1234567890ab";
        let s = Settings::parse(&format!(
            r#"{{"defaults": {{"remediationKeys": {{"us-east-1": {{"logs": "{logs}", "s3": "{KEY}"}}, "eu-west-1": "{KEY}"}}}}}}"#
        ))
        .unwrap()
        .for_account("111122223333");
        let key = |region, kind| s.remediation_key(region, kind).map(KeyRef::as_str);
        assert_eq!(key("us-east-1", "logs"), Some(logs));
        assert_eq!(key("us-east-1", "s3"), Some(KEY));
        assert_eq!(
            key("us-east-1", "bedrock"),
            None,
            "a map names only its kinds"
        );
        assert_eq!(
            key("eu-west-1", "bedrock"),
            Some(KEY),
            "one key serves every kind"
        );
        assert_eq!(key("eu-west-1", "s3"), Some(KEY));
        assert_eq!(key("ap-south-1", "s3"), None);
    }

    #[test]
    fn alert_repeat_and_fix_budget_have_defaults_and_overrides() {
        let s = Settings::parse(
            r#"{"defaults": {"repeatAlertHours": 4.5}, "accounts": {"444455556666": {"maxFixesPerDay": 1}}}"#,
        )
        .unwrap();
        let member = s.for_account("444455556666");
        assert_eq!(
            (member.repeat_alert_hours, member.max_fixes_per_day),
            (4.5, 1)
        );
        let other = Settings::parse("{}").unwrap().for_account("444455556666");
        assert_eq!(
            (other.repeat_alert_hours, other.max_fixes_per_day),
            (24.0, 3)
        );
    }

    #[test]
    fn resubmitting_jobs_is_off_unless_an_account_turns_it_on() {
        let s = Settings::parse(
            r#"{"defaults": {"resubmitJobs": true}, "accounts": {"444455556666": {"resubmitJobs": false}}}"#,
        )
        .unwrap();
        assert!(s.for_account("111122223333").resubmit_jobs);
        assert!(!s.for_account("444455556666").resubmit_jobs);
        assert!(
            !Settings::parse("{}")
                .unwrap()
                .for_account("111122223333")
                .resubmit_jobs
        );
        assert!(Settings::parse(r#"{"defaults": {"resubmitJobs": "yes"}}"#).is_err());
    }

    #[test]
    fn broken_documents_are_refused_with_a_reason() {
        let cases = [
            ("not json", "expected"),
            (r#"{"defaults": {"mode": "fix-it"}}"#, "unknown variant"),
            (r#"{"defaults": {"remediationKey": {}}}"#, "unknown field"),
            (r#"{"accounts": {"12": {}}}"#, "12-digit"),
            (
                r#"{"defaults": {"allowedKeys": ["alias/mine"]}}"#,
                "is an alias",
            ),
            (
                r#"{"defaults": {"remediationKeys": {"us-east-1": "nope"}}}"#,
                "remediationKeys.us-east-1",
            ),
            (
                r#"{"defaults": {"allowedKeyAccounts": ["x"]}}"#,
                "allowedKeyAccounts",
            ),
            (
                r#"{"accounts": {"444455556666": {"allowedKeys": []}}}"#,
                "allowedKeys: an empty list",
            ),
            (
                r#"{"defaults": {"repeatAlertHours": 0}}"#,
                "repeatAlertHours",
            ),
            (
                r#"{"defaults": {"remediationKeys": {"us-east-1": {"log": "alias/x"}}}}"#,
                "unknown kind \"log\"",
            ),
            (
                r#"{"defaults": {"remediationKeys": {"us-east-1": {"s3": 7}}}}"#,
                "remediationKeys.us-east-1.s3: expected a key",
            ),
            (r#"{"defaults": {"maxFixesPerDay": -1}}"#, "maxFixesPerDay"),
        ];
        for (doc, expected) in cases {
            let err = Settings::parse(doc).unwrap_err();
            assert!(err.contains(expected), "{doc}: {err}");
        }
    }
}
