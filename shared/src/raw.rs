//! The raw JSON of an AWS answer, beside what the SDK made of it.
//!
//! The SDK silently skips JSON members it does not know. A read-modify-write built from the
//! SDK's view would then write the resource back without them. [`RawBody`] keeps the body the
//! service really sent, so a fix can (1) refuse when the answer holds members the fix does not
//! carry over ([`unknown_members`]), and (2) prove afterwards that nothing but the key changed
//! ([`differences`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

/// An interceptor for one operation call that keeps the body of its successful answer.
/// Attach it with `.customize().interceptor(body.clone())`, then read [`RawBody::json`].
#[derive(Debug, Clone, Default)]
pub struct RawBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawBody {
    fn name(&self) -> &'static str {
        "RawBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Only a successful answer describes the resource; the last attempt wins.
        if context.output_or_error().is_ok() {
            if let (Some(bytes), Ok(mut slot)) = (context.response().body().bytes(), self.0.lock())
            {
                *slot = Some(bytes.to_vec());
            }
        }
        Ok(())
    }
}

impl RawBody {
    pub fn new() -> Self {
        RawBody::default()
    }

    /// The answer's bytes as the service sent them (JSON, or XML for S3).
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let slot = self
            .0
            .lock()
            .map_err(|_| "the raw answer is unavailable".to_owned())?;
        slot.clone()
            .ok_or_else(|| "no answer was captured".to_owned())
    }

    /// The answer as JSON (an empty body is `{}`).
    pub fn json(&self) -> Result<Value, String> {
        let slot = self
            .0
            .lock()
            .map_err(|_| "the raw answer is unavailable".to_owned())?;
        match slot.as_deref() {
            None => Err("no answer was captured".to_owned()),
            Some([]) => Ok(Value::Object(Default::default())),
            Some(bytes) => {
                serde_json::from_slice(bytes).map_err(|e| format!("the answer is not JSON: {e}"))
            }
        }
    }
}

/// The member paths of `raw` that are not in `known`, sorted, each once.
///
/// Paths are dotted member names with `[]` for "every element of a list", e.g.
/// `topicPolicy.topics[].name`. A known path with an object or list value is searched further;
/// an unknown one is reported once, without its children.
pub fn unknown_members(raw: &Value, known: &[&str]) -> Vec<String> {
    let known: BTreeSet<&str> = known.iter().copied().collect();
    let mut unknown = Vec::new();
    walk_members(raw, "", &known, &mut unknown);
    // Once per path, in a stable order (a list's elements share one path).
    unknown.sort_unstable();
    unknown.dedup();
    unknown
}

fn walk_members(value: &Value, path: &str, known: &BTreeSet<&str>, unknown: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, child) in members {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if known.contains(child_path.as_str()) {
                    walk_members(child, &child_path, known, unknown);
                } else {
                    unknown.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            let item_path = format!("{path}[]");
            for item in items {
                walk_members(item, &item_path, known, unknown);
            }
        }
        _ => {}
    }
}

/// Where `after` differs from `before`, outside the `ignore`d paths (same notation as
/// [`unknown_members`]; an ignored path ignores everything under it). List elements are
/// compared by position and reported as `path[i]`.
pub fn differences(before: &Value, after: &Value, ignore: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    walk_differences(before, after, "", "", ignore, &mut found);
    found
}

fn walk_differences(
    before: &Value,
    after: &Value,
    // `[]` for list elements: what `ignore` is matched against.
    pattern: &str,
    // `[i]` for list elements: what the report says.
    shown: &str,
    ignore: &[&str],
    found: &mut Vec<String>,
) {
    if ignore.contains(&pattern) {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for name in names {
                let join = |base: &str| {
                    if base.is_empty() {
                        name.clone()
                    } else {
                        format!("{base}.{name}")
                    }
                };
                let (child_pattern, child_shown) = (join(pattern), join(shown));
                match (b.get(name), a.get(name)) {
                    (Some(bv), Some(av)) => {
                        walk_differences(bv, av, &child_pattern, &child_shown, ignore, found)
                    }
                    _ if ignore.contains(&child_pattern.as_str()) => {}
                    (Some(_), None) => found.push(format!("{child_shown} (removed)")),
                    (None, _) => found.push(format!("{child_shown} (added)")),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            let child_pattern = format!("{pattern}[]");
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                walk_differences(
                    bv,
                    av,
                    &child_pattern,
                    &format!("{shown}[{i}]"),
                    ignore,
                    found,
                );
            }
        }
        (b, a) if b == a => {}
        _ => found.push(shown.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_members_are_found_at_any_depth_and_reported_once() {
        let raw = json!({
            "name": "g",
            "topicPolicy": {"topics": [{"name": "a", "future": 1}, {"name": "b", "future": 2}]},
            "newPolicy": {"deep": {"deeper": true}}
        });
        let known = [
            "name",
            "topicPolicy",
            "topicPolicy.topics",
            "topicPolicy.topics[].name",
        ];
        assert_eq!(
            unknown_members(&raw, &known),
            ["newPolicy", "topicPolicy.topics[].future"]
        );
        assert!(unknown_members(&json!({"name": "g"}), &known).is_empty());
    }

    #[test]
    fn differences_name_each_changed_member_outside_the_ignored_ones() {
        let before = json!({"name": "g", "kmsKeyArn": "k1", "updatedAt": "t1",
                            "topics": [{"name": "a"}, {"name": "b"}], "gone": 1});
        let after = json!({"name": "g", "kmsKeyArn": "k2", "updatedAt": "t2",
                           "topics": [{"name": "a"}, {"name": "c"}], "new": 2});
        assert_eq!(
            differences(&before, &after, &["kmsKeyArn", "updatedAt"]),
            ["gone (removed)", "new (added)", "topics[1].name"]
        );
        assert_eq!(differences(&before, &before, &[]), Vec::<String>::new());
        // A member that may appear or vanish is ignored like one that changes.
        assert!(differences(&json!({"a": 1}), &json!({"a": 1, "s": []}), &["s"]).is_empty());
        // Lists of another length differ as a whole.
        assert_eq!(
            differences(&json!({"l": [1]}), &json!({"l": [1, 2]}), &[]),
            ["l"]
        );
    }
}
