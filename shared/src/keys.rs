//! KMS keys: one [`KeyRef`] for every way a key can be named, and a warm-instance cache
//! of what DescribeKey says about it ([`KeyDirectory`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata};
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;

/// A key as a resource or a setting names it. Once parsed, it is well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// `1234abcd-12ab-34cd-56ef-1234567890ab`
    Id(String),
    /// `mrk-1234abcd12ab34cd56ef1234567890ab`: the same id in every Region it is replicated to.
    MultiRegionId(String),
    /// `arn:aws:kms:us-east-1:111122223333:key/<id or mrk id>`
    KeyArn(Arn),
    /// `alias/ExampleAlias`
    AliasName(String),
    /// `arn:aws:kms:us-east-1:111122223333:alias/ExampleAlias`
    AliasArn(Arn),
}

/// The parts of a KMS ARN that decide where a key lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub full: String,
    pub region: String,
    pub account: String,
    /// The key id or the alias name (`alias/...`).
    pub resource: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{value:?} is not a KMS key id, key ARN, alias name or alias ARN: {why}")]
pub struct KeyRefError {
    pub value: String,
    pub why: &'static str,
}

impl KeyRef {
    pub fn parse(value: &str) -> Result<Self, KeyRefError> {
        let err = |why| KeyRefError {
            value: value.to_owned(),
            why,
        };
        if let Some(rest) = value.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return Err(err("an ARN has six colon-separated parts"));
            };
            if !partition.starts_with("aws") {
                return Err(err("unknown partition"));
            }
            if service != "kms" {
                return Err(err("not a KMS ARN"));
            }
            if region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(err("the ARN has no valid Region"));
            }
            if !is_account_id(account) {
                return Err(err("the ARN's account is not 12 digits"));
            }
            let arn = |resource: &str| Arn {
                full: value.to_owned(),
                region: region.to_owned(),
                account: account.to_owned(),
                resource: resource.to_owned(),
            };
            if let Some(id) = resource.strip_prefix("key/") {
                if is_key_id(id) || is_multi_region_id(id) {
                    Ok(KeyRef::KeyArn(arn(id)))
                } else {
                    Err(err("the key ARN does not end in a key id"))
                }
            } else if resource.starts_with("alias/") && is_alias_name(resource) {
                Ok(KeyRef::AliasArn(arn(resource)))
            } else {
                Err(err("the ARN names neither key/<id> nor alias/<name>"))
            }
        } else if value.starts_with("alias/") {
            if is_alias_name(value) {
                Ok(KeyRef::AliasName(value.to_owned()))
            } else {
                Err(err(
                    "alias names are alias/ followed by letters, digits, /_-",
                ))
            }
        } else if is_key_id(value) {
            Ok(KeyRef::Id(value.to_owned()))
        } else if is_multi_region_id(value) {
            Ok(KeyRef::MultiRegionId(value.to_owned()))
        } else {
            Err(err("unrecognised form"))
        }
    }

    /// The reference exactly as it was given.
    pub fn as_str(&self) -> &str {
        match self {
            KeyRef::Id(s) | KeyRef::MultiRegionId(s) | KeyRef::AliasName(s) => s,
            KeyRef::KeyArn(a) | KeyRef::AliasArn(a) => &a.full,
        }
    }

    pub fn is_alias(&self) -> bool {
        matches!(self, KeyRef::AliasName(_) | KeyRef::AliasArn(_))
    }

    /// The account an ARN pins the key to; ids and alias names live in the caller's account.
    pub fn account(&self) -> Option<&str> {
        match self {
            KeyRef::KeyArn(a) | KeyRef::AliasArn(a) => Some(&a.account),
            _ => None,
        }
    }

    /// The Region an ARN pins the key to; ids and alias names live in the caller's Region.
    pub fn region(&self) -> Option<&str> {
        match self {
            KeyRef::KeyArn(a) | KeyRef::AliasArn(a) => Some(&a.region),
            _ => None,
        }
    }

    /// The key id an id or key ARN names (aliases need DescribeKey to resolve).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            KeyRef::Id(id) | KeyRef::MultiRegionId(id) => Some(id),
            KeyRef::KeyArn(a) => Some(&a.resource),
            _ => None,
        }
    }

    /// Whether a DescribeKey answer is about this very key. An alias may name any key; an id
    /// or key ARN must come back as itself: a multi-Region replica's answer, or a key of
    /// another account with the same id, proves nothing about the key asked for.
    pub fn is_answered_by(&self, info: &KeyInfo) -> bool {
        match self {
            KeyRef::Id(id) | KeyRef::MultiRegionId(id) => *id == info.key_id,
            KeyRef::KeyArn(a) => a.full == info.arn,
            KeyRef::AliasName(_) | KeyRef::AliasArn(_) => true,
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_key_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_multi_region_id(s: &str) -> bool {
    s.strip_prefix("mrk-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(s: &str) -> bool {
    s.strip_prefix("alias/").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 250
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    })
}

/// Who manages a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyManager {
    Customer,
    Aws,
}

/// What DescribeKey said about a key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub arn: String,
    pub key_id: String,
    pub account: String,
    pub region: String,
    pub manager: KeyManager,
    /// `KeyState` as KMS spells it: Enabled, Disabled, PendingDeletion, PendingImport, ...
    pub state: String,
    pub deletion_date: Option<String>,
    /// `KeySpec` (`SYMMETRIC_DEFAULT`, `RSA_2048`, `HMAC_256`, ...), if DescribeKey said.
    pub spec: Option<String>,
    /// `KeyUsage` (`ENCRYPT_DECRYPT`, `SIGN_VERIFY`, `GENERATE_VERIFY_MAC`, ...), if said.
    pub usage: Option<String>,
}

impl KeyInfo {
    /// Only a symmetric encryption key can encrypt Bedrock data.
    pub fn can_encrypt(&self) -> Option<bool> {
        match (self.spec.as_deref(), self.usage.as_deref()) {
            (Some(spec), Some(usage)) => {
                Some(spec == "SYMMETRIC_DEFAULT" && usage == "ENCRYPT_DECRYPT")
            }
            _ => None,
        }
    }
}

impl KeyInfo {
    fn from_metadata(meta: &KeyMetadata) -> Result<Self, String> {
        let arn = meta.arn().ok_or("DescribeKey returned no key ARN")?;
        let KeyRef::KeyArn(parsed) = KeyRef::parse(arn).map_err(|e| e.to_string())? else {
            return Err(format!("DescribeKey returned {arn:?}, not a key ARN"));
        };
        let manager = match meta.key_manager() {
            Some(KeyManagerType::Customer) => KeyManager::Customer,
            Some(KeyManagerType::Aws) => KeyManager::Aws,
            other => {
                return Err(format!(
                    "DescribeKey returned an unknown KeyManager {other:?}"
                ))
            }
        };
        Ok(KeyInfo {
            arn: arn.to_owned(),
            key_id: meta.key_id().to_owned(),
            account: parsed.account,
            region: parsed.region,
            manager,
            state: meta
                .key_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "Unknown".to_owned()),
            deletion_date: meta.deletion_date().map(|d| d.to_string()),
            spec: meta.key_spec().map(|s| s.as_str().to_owned()),
            usage: meta.key_usage().map(|u| u.as_str().to_owned()),
        })
    }
}

/// The evidence about a resource's key, as the judge receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyEvidence {
    /// The resource names no key: Bedrock encrypts it with a key AWS owns.
    AwsOwned,
    Described {
        reference: KeyRef,
        info: KeyInfo,
    },
    /// DescribeKey says the key does not exist (deleted, or never existed).
    NotFound {
        reference: KeyRef,
    },
    /// DescribeKey failed for another reason, or answered about another key: nothing can be
    /// concluded. `retryable`: the failure may pass (throttling, 5xx, timeout).
    Unverified {
        reference: KeyRef,
        error: String,
        retryable: bool,
    },
}

impl KeyEvidence {
    pub fn reference(&self) -> Option<&KeyRef> {
        match self {
            KeyEvidence::AwsOwned => None,
            KeyEvidence::Described { reference, .. }
            | KeyEvidence::NotFound { reference }
            | KeyEvidence::Unverified { reference, .. } => Some(reference),
        }
    }
}

/// The outcome of one DescribeKey.
#[derive(Debug, Clone)]
pub enum Described {
    Found(KeyInfo),
    NotFound,
    Failed(AwsError),
}

/// DescribeKey answers, cached per warm Lambda instance so that a warm check costs no KMS
/// call. The TTL is short: a key disabled a minute ago must not look enabled for long.
pub struct KeyDirectory {
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, (Instant, KeyInfo)>>,
}

type CacheKey = (String, String, String);

impl KeyDirectory {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    pub fn new(ttl: Duration) -> Self {
        KeyDirectory {
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// DescribeKey in `account`/`region`, or the cached answer. `kms` must act in that
    /// account and, for a key or alias ARN, in the ARN's Region (see `Scope::kms_for`).
    pub async fn describe(
        &self,
        kms: &aws_sdk_kms::Client,
        account: &str,
        region: &str,
        key: &KeyRef,
    ) -> Described {
        const CALL: &str = "kms:DescribeKey";
        let cache_key = (
            account.to_owned(),
            region.to_owned(),
            key.as_str().to_owned(),
        );
        if let Some(info) = self.cached(&cache_key) {
            return Described::Found(info);
        }
        let out = match kms.describe_key().key_id(key.as_str()).send().await {
            Ok(out) => out,
            Err(err) => {
                return match err.as_service_error() {
                    Some(DescribeKeyError::NotFoundException(_)) => Described::NotFound,
                    _ => Described::Failed(AwsError::from_sdk(CALL, &err)),
                }
            }
        };
        let info = match out.key_metadata().map(KeyInfo::from_metadata) {
            Some(Ok(info)) => info,
            Some(Err(e)) => return Described::Failed(AwsError::new(CALL, e, false)),
            None => {
                return Described::Failed(AwsError::new(
                    CALL,
                    "no KeyMetadata in the answer",
                    false,
                ))
            }
        };
        if !key.is_answered_by(&info) {
            return Described::Failed(AwsError::new(
                CALL,
                format!(
                    "asked about {key}, but the answer describes {}: it proves nothing about the key asked for",
                    info.arn
                ),
                false,
            ));
        }
        self.remember(cache_key, &info);
        Described::Found(info)
    }

    /// Evidence for a resource's key reference.
    pub async fn evidence(
        &self,
        kms: &aws_sdk_kms::Client,
        account: &str,
        region: &str,
        key: Option<&KeyRef>,
    ) -> KeyEvidence {
        let Some(reference) = key else {
            return KeyEvidence::AwsOwned;
        };
        let reference = reference.clone();
        match self.describe(kms, account, region, &reference).await {
            Described::Found(info) => KeyEvidence::Described { reference, info },
            Described::NotFound => KeyEvidence::NotFound { reference },
            Described::Failed(error) => KeyEvidence::Unverified {
                reference,
                retryable: error.retryable,
                error: error.to_string(),
            },
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<KeyInfo> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, info)| info.clone())
    }

    fn remember(&self, key: CacheKey, info: &KeyInfo) {
        if let Ok(mut cache) = self.cache.lock() {
            let now = Instant::now();
            // The ARN is what resources report back after a fix: cache it under that name too.
            cache.insert(
                (key.0.clone(), key.1.clone(), info.arn.clone()),
                (now, info.clone()),
            );
            cache.insert(key, (now, info.clone()));
        }
    }
}

impl Default for KeyDirectory {
    fn default() -> Self {
        KeyDirectory::new(Self::DEFAULT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn parses_every_form_kms_accepts() {
        assert_eq!(KeyRef::parse(ID), Ok(KeyRef::Id(ID.into())));
        let mrk = "mrk-1234abcd12ab34cd56ef1234567890ab";
        assert_eq!(KeyRef::parse(mrk), Ok(KeyRef::MultiRegionId(mrk.into())));
        let arn = format!("arn:aws:kms:eu-west-1:111122223333:key/{ID}");
        let KeyRef::KeyArn(parsed) = KeyRef::parse(&arn).unwrap() else {
            panic!("not a key ARN")
        };
        assert_eq!(
            (
                parsed.region.as_str(),
                parsed.account.as_str(),
                parsed.resource.as_str()
            ),
            ("eu-west-1", "111122223333", ID)
        );
        let mrk_arn = format!("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/{mrk}");
        assert!(matches!(KeyRef::parse(&mrk_arn), Ok(KeyRef::KeyArn(_))));
        assert_eq!(
            KeyRef::parse("alias/aws/bedrock"),
            Ok(KeyRef::AliasName("alias/aws/bedrock".into()))
        );
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/team/guardrails";
        let KeyRef::AliasArn(parsed) = KeyRef::parse(alias_arn).unwrap() else {
            panic!("not an alias ARN")
        };
        assert_eq!(parsed.resource, "alias/team/guardrails");
    }

    #[test]
    fn rejects_what_kms_would_reject() {
        for bad in [
            "",
            "not-a-key",
            "1234abcd-12ab-34cd-56ef",
            "alias/",
            "alias/has space",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:key/nope",
            "arn:aws:kms::111122223333:alias/x",
            "HIDDEN_DUE_TO_SECURITY_REASONS",
        ] {
            assert!(KeyRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
