//! Key policies: may a service use a KMS key for what it needs? A fix that puts a key on a
//! log group or a bucket must not break delivery: CloudWatch Logs refuses a key whose policy
//! does not let it use the key, and Bedrock cannot write to a bucket whose key it may not use.
//!
//! A statement counts when it allows the service principal (or `*`) the actions, wildcards
//! such as `kms:*` or `kms:GenerateDataKey*` included, with or without conditions (they are
//! not evaluated: a condition is the policy author's narrowing, typically to the resource).
//! A Deny statement without conditions that names the principal and an action takes it away.

use serde_json::Value;
use wildmatch::WildMatch;

/// What a service needs of a key.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    /// The service principals that count, e.g. `logs.us-east-1.amazonaws.com`.
    pub principals: &'a [&'a str],
    /// The actions it calls, e.g. `kms:GenerateDataKey`.
    pub actions: &'a [&'a str],
}

/// The actions of `need` that `policy` (a key policy document) does not let the principal
/// use; empty when it allows them all.
pub fn missing(policy: &Value, need: Need<'_>) -> Vec<String> {
    let statements: Vec<&Value> = match &policy["Statement"] {
        Value::Array(items) => items.iter().collect(),
        item @ Value::Object(_) => vec![item],
        _ => Vec::new(),
    };
    need.actions
        .iter()
        .filter(|action| {
            let allowed = statements
                .iter()
                .any(|s| effect(s, "Allow") && names_principal(s, need) && names_action(s, action));
            let denied = statements.iter().any(|s| {
                effect(s, "Deny")
                    && s.get("Condition").is_none()
                    && names_principal(s, need)
                    && names_action(s, action)
            });
            !allowed || denied
        })
        .map(|a| (*a).to_owned())
        .collect()
}

fn effect(statement: &Value, effect: &str) -> bool {
    statement["Effect"].as_str() == Some(effect)
}

/// `Principal` is `*`, `{"AWS": "*"}`, or names one of the service principals.
fn names_principal(statement: &Value, need: Need<'_>) -> bool {
    let principal = &statement["Principal"];
    if principal.as_str() == Some("*") {
        return true;
    }
    let any = |v: &Value, wanted: &dyn Fn(&str) -> bool| match v {
        Value::String(s) => wanted(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(wanted),
        _ => false,
    };
    any(&principal["AWS"], &|s| s == "*")
        || any(&principal["Service"], &|s| {
            need.principals.iter().any(|p| p.eq_ignore_ascii_case(s))
        })
}

/// `Action` names the action, by name or by a wildcard pattern (IAM matches actions without
/// regard to case).
fn names_action(statement: &Value, action: &str) -> bool {
    let matches = |pattern: &str| {
        WildMatch::new(&pattern.to_ascii_lowercase()).matches(&action.to_ascii_lowercase())
    };
    match &statement["Action"] {
        Value::String(pattern) => matches(pattern),
        Value::Array(patterns) => patterns.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOGS: Need = Need {
        principals: &["logs.us-east-1.amazonaws.com", "logs.amazonaws.com"],
        actions: &[
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "kms:DescribeKey",
        ],
    };

    fn statement(principal: Value, action: Value) -> Value {
        json!({"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"})
    }

    #[test]
    fn the_default_key_policy_lets_no_service_use_the_key() {
        let root = statement(
            json!({"AWS": "arn:aws:iam::111122223333:root"}),
            json!("kms:*"),
        );
        let policy = json!({"Version": "2012-10-17", "Statement": [root]});
        assert_eq!(missing(&policy, LOGS).len(), 4);
    }

    #[test]
    fn a_statement_counts_with_wildcards_lists_and_conditions() {
        let cases = [
            statement(
                json!({"Service": "logs.us-east-1.amazonaws.com"}),
                json!("kms:*"),
            ),
            statement(
                json!({"Service": ["s3.amazonaws.com", "logs.amazonaws.com"]}),
                json!([
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*"
                ]),
            ),
            statement(json!("*"), json!("*")),
            statement(json!({"AWS": "*"}), json!("KMS:*")),
            json!({"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey", "kms:DescribeKey"],
                   "Resource": "*",
                   "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:x"}}}),
        ];
        for s in cases {
            let policy = json!({"Statement": [s]});
            assert!(missing(&policy, LOGS).is_empty(), "{policy}");
        }
        // A single statement object (not a list) is a policy too.
        let single = json!({"Statement": statement(json!({"Service": "logs.amazonaws.com"}), json!("kms:*"))});
        assert!(missing(&single, LOGS).is_empty());
    }

    #[test]
    fn the_wrong_service_too_few_actions_or_a_deny_do_not_count() {
        let other = statement(json!({"Service": "bedrock.amazonaws.com"}), json!("kms:*"));
        assert_eq!(missing(&json!({"Statement": [other]}), LOGS).len(), 4);
        let partial = statement(
            json!({"Service": "logs.amazonaws.com"}),
            json!(["kms:Encrypt", "kms:Decrypt"]),
        );
        assert_eq!(
            missing(&json!({"Statement": [partial]}), LOGS),
            ["kms:GenerateDataKey", "kms:DescribeKey"]
        );
        let allow = statement(json!({"Service": "logs.amazonaws.com"}), json!("kms:*"));
        let deny =
            json!({"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"});
        assert_eq!(
            missing(&json!({"Statement": [allow.clone(), deny]}), LOGS),
            ["kms:Decrypt"]
        );
        // A conditional Deny is the author's narrowing: not evaluated, not counted.
        let narrowing = json!({"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
                               "Condition": {"Bool": {"aws:SecureTransport": "false"}}});
        assert!(missing(&json!({"Statement": [allow, narrowing]}), LOGS).is_empty());
        // NotAction / NotPrincipal statements are not read as allows.
        let not_action = json!({"Effect": "Allow", "Principal": "*", "NotAction": "kms:Delete*", "Resource": "*"});
        assert_eq!(missing(&json!({"Statement": [not_action]}), LOGS).len(), 4);
        assert_eq!(missing(&json!("not a policy"), LOGS).len(), 4);
    }
}
