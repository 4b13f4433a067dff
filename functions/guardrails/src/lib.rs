//! Bedrock guardrails (Conformity Bedrock-003, Config rules pack FMI-08): every guardrail
//! encrypted with an allowed customer-managed KMS key, checked on CreateGuardrail,
//! UpdateGuardrail, CreateGuardrailVersion and DeleteGuardrail (of a version).
//!
//! A guardrail has one encrypted part per version: the working DRAFT (the only one
//! UpdateGuardrail changes, so the only one the guard fixes) and each published version
//! (immutable: what applications invoke; a person replaces it with a new version).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_bedrock::operation::get_guardrail::{GetGuardrailError, GetGuardrailOutput};
use aws_sdk_bedrock::operation::update_guardrail::builders::UpdateGuardrailFluentBuilder;
use aws_sdk_bedrock::types::*;
use bedrock_cmk_guard::finding::Resource;
use bedrock_cmk_guard::intake::Trigger;
use bedrock_cmk_guard::keys::{KeyInfo, KeyRef};
use bedrock_cmk_guard::raw::{differences, unknown_members, RawBody};
use bedrock_cmk_guard::verdict::Location;
use bedrock_cmk_guard::{
    AwsError, EventSpec, Fix, FixError, Fixed, Found, Named, Names, Observed, Protection, Reactor,
    Scope, Subject,
};
use futures_util::future::join_all;
use serde_json::Value;
use tokio::time::Instant;

pub use aws_sdk_bedrock::error::BuildError;

/// The working draft: the only version UpdateGuardrail changes.
const DRAFT: &str = "DRAFT";
/// A guardrail's parts take the Region's `bedrock` remediation key.
const KIND: &str = "bedrock";

/// The guardrails reactor. Keeps, per warm instance, the key of each published version it
/// has read: a version never changes, so it is read once.
#[derive(Default)]
pub struct Guardrails {
    version_keys: Mutex<HashMap<(String, String), Option<String>>>,
}

impl Guardrails {
    pub fn new() -> Self {
        Guardrails::default()
    }
}

/// What gather read: the DRAFT as the SDK parsed it and as Bedrock sent it.
#[derive(Debug, Clone)]
pub struct GuardrailState {
    pub draft: GetGuardrailOutput,
    /// GetGuardrail's raw JSON: what the fix must keep, member for member.
    pub raw: Value,
}

impl Reactor for Guardrails {
    type State = GuardrailState;

    const FUNCTION: &'static str = "guardrails";

    const CHECK: &'static str = "bedrock-guardrail-cmk";
    const RESOURCE_TYPE: &'static str = "AWS::Bedrock::Guardrail";
    const NOUN: &'static str = "the guardrail";
    const EVENTS: &'static [EventSpec] = &[
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateGuardrail",
            names: Names::Resource(&[
                "/responseElements/guardrailArn",
                "/responseElements/guardrailId",
            ]),
            key_hint_paths: &["/requestParameters/kmsKeyId"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "UpdateGuardrail",
            names: Names::Resource(&[
                "/responseElements/guardrailArn",
                "/requestParameters/guardrailIdentifier",
                "/responseElements/guardrailId",
            ]),
            key_hint_paths: &["/requestParameters/kmsKeyId"],
        },
        // A new version copies the DRAFT's key: a version made from a DRAFT on the wrong
        // key is an immutable copy of the problem.
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateGuardrailVersion",
            names: Names::Resource(&[
                "/requestParameters/guardrailIdentifier",
                "/responseElements/guardrailId",
            ]),
            key_hint_paths: &[],
        },
        // Deleting the version that was on the wrong key ends the problem: re-judged, it is
        // told as resolved. A deleted guardrail reads as gone: IGNORED.
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "DeleteGuardrail",
            names: Names::Resource(&["/requestParameters/guardrailIdentifier"]),
            key_hint_paths: &[],
        },
    ];

    /// A guardrail ARN says where the guardrail lives, whatever the envelope says.
    fn locate(&self, trigger: &Trigger, home_partition: &str) -> Location {
        let parts: Vec<&str> = trigger
            .resource_id()
            .unwrap_or_default()
            .split(':')
            .collect();
        match parts[..] {
            ["arn", partition, "bedrock", region, account, resource]
                if resource.starts_with("guardrail/") =>
            {
                Location {
                    account: account.to_owned(),
                    region: region.to_owned(),
                    partition: partition.to_owned(),
                }
            }
            _ => Location {
                account: trigger.call.account.clone(),
                region: trigger.call.region.clone(),
                partition: home_partition.to_owned(),
            },
        }
    }

    fn resource_arn(&self, named: &Named, at: &Location) -> Option<String> {
        let Named::Resource(resource_id) = named else {
            return None;
        };
        if resource_id.starts_with("arn:") {
            return Some(resource_id.clone());
        }
        Some(format!(
            "arn:{}:bedrock:{}:{}:guardrail/{resource_id}",
            at.partition, at.region, at.account
        ))
    }

    async fn gather(&self, scope: &Scope, named: &Named) -> Result<Found<Self::State>, AwsError> {
        let Named::Resource(resource_id) = named else {
            return Err(AwsError::new(
                "bedrock:GetGuardrail",
                "the event names no guardrail",
                false,
            ));
        };
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let (draft, versions) = tokio::join!(
            read(&bedrock, resource_id, DRAFT),
            list_versions(&bedrock, resource_id)
        );
        let (draft, raw) = match draft {
            Ok(read) => read,
            Err(Read::Gone) => return Ok(Found::Gone),
            Err(Read::Failed(error)) => return Err(error),
        };
        let mut protections = vec![draft_protection(&draft, &raw)];
        match versions {
            Ok(versions) => {
                protections.extend(self.version_protections(&bedrock, &draft, &versions).await)
            }
            Err(Read::Gone) => return Ok(Found::Gone),
            Err(Read::Failed(error)) => protections.push(Protection {
                name: "published versions".to_owned(),
                noun: "the guardrail's published versions".to_owned(),
                kind: KIND,
                resource: None,
                subject: Subject::Unreadable(error),
                no_fix: Some(VERSION_NO_FIX.to_owned()),
            }),
        }
        let busy = match draft.status() {
            GuardrailStatus::Ready | GuardrailStatus::Failed => None,
            other => Some(format!("the guardrail is {}", other.as_str())),
        };
        Ok(Found::Resource(Observed {
            resource: Resource {
                kind: Self::RESOURCE_TYPE.to_owned(),
                arn: Some(draft.guardrail_arn().to_owned()),
                name: Some(draft.name().to_owned()),
            },
            protections,
            busy,
            state: GuardrailState { draft, raw },
        }))
    }

    fn describe_fix(&self, observed: &Observed<Self::State>, fixes: &[Fix<'_>]) -> String {
        let g = &observed.state.draft;
        let Some(key) = fixes.first().map(|f| f.key) else {
            return String::new();
        };
        format!(
            "UpdateGuardrail on the DRAFT of guardrail \"{}\" ({}) with kmsKeyId {}, carrying over unchanged: {}; \
             then GetGuardrail until it is READY, to prove that only the key changed.",
            g.name(),
            g.guardrail_arn(),
            key.arn,
            carried_over(g).join(", "),
        )
    }

    fn manual_steps(&self, observed: &Observed<Self::State>, parts: &[&Protection]) -> Vec<String> {
        let g = &observed.state.draft;
        let (name, id) = (g.name(), g.guardrail_id());
        let mut steps = Vec::new();
        if parts.iter().any(|p| p.name == DRAFT) {
            steps.extend([
                format!("Console: Amazon Bedrock > Guardrails > {name} > Working draft > Edit > KMS key: choose a customer-managed key, then Save."),
                format!("Or CLI: aws bedrock get-guardrail --guardrail-identifier {id} --guardrail-version DRAFT, then aws bedrock update-guardrail --guardrail-identifier {id} --kms-key-id <CMK ARN> with the name, blocked messages and every policy it returned (UpdateGuardrail replaces the whole DRAFT)."),
                "Or let the guard do it: cmk-guard check --event <event.json> --mode remediate --force".to_owned(),
            ]);
        }
        let versions: Vec<&str> = parts
            .iter()
            .filter(|p| p.name != DRAFT)
            .filter_map(|p| p.name.strip_prefix("version "))
            .collect();
        if !versions.is_empty() {
            let list = versions.join(", ");
            steps.push(format!("With the DRAFT on a customer-managed key, publish a new version: aws bedrock create-guardrail-version --guardrail-identifier {id}"));
            steps.push(format!("Move every application from version {list} to the new version (the guardrailVersion it passes to InvokeModel, Converse or ApplyGuardrail)."));
            for v in &versions {
                steps.push(format!("Delete version {v}: aws bedrock delete-guardrail --guardrail-identifier {id} --guardrail-version {v}"));
            }
        }
        if parts
            .iter()
            .any(|p| matches!(p.subject, Subject::Unreadable(_)))
        {
            steps.push(format!("Let the function's role call bedrock:GetGuardrail and bedrock:ListGuardrails on guardrail {id}, then re-check: cmk-guard check --event <event.json> --force"));
        }
        steps
    }

    /// Only the DRAFT is ever fixed (versions are immutable), so there is one fix at most.
    async fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        fixes: &[Fix<'_>],
        deadline: Instant,
    ) -> Vec<Result<Fixed, FixError>> {
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let mut results = Vec::new();
        for fix in fixes {
            let fixed = fix_draft(&bedrock, observed, fix.key, deadline).await;
            results.push(fixed.map(Fixed::from));
        }
        results
    }
}

/// The DRAFT on `key`, proven: re-read unchanged, written back, settled, and equal but for the
/// key.
async fn fix_draft(
    bedrock: &aws_sdk_bedrock::Client,
    observed: &Observed<GuardrailState>,
    key: &KeyInfo,
    deadline: Instant,
) -> Result<String, FixError> {
    let arn = observed.state.draft.guardrail_arn();
    let (current, raw) = reread_unchanged(bedrock, arn, &observed.state.raw).await?;
    write_key(bedrock, &current, &key.arn).await?;
    let (after, raw_after) = wait_until_settled(bedrock, arn, deadline).await?;
    prove_only_the_key_changed(&raw, &raw_after, &key.arn)?;
    Ok(format!(
        "UpdateGuardrail set kmsKeyId of guardrail \"{}\" (DRAFT) to {}, keeping {}; GetGuardrail read back status {} and kmsKeyArn = {}, every other member as it was.",
        after.name(),
        key.arn,
        carried_over(&current).join(", "),
        after.status().as_str(),
        after.kms_key_arn().unwrap_or("(none)"),
    ))
}

/// Why no fix can change a published version.
const VERSION_NO_FIX: &str = "a published version cannot be changed: publish a new version \
    from a DRAFT on a customer-managed key, move applications to it, and delete this one";

/// The members of a GetGuardrail answer that the fix carries over or that the service
/// manages. A member outside this list (Bedrock added one the SDK or this code does not
/// know) would be lost by writing the DRAFT back, so no automatic fix is made.
pub const KNOWN_MEMBERS: &[&str] = &[
    // Server-managed.
    "guardrailId",
    "guardrailArn",
    "version",
    "status",
    "statusReasons",
    "failureRecommendations",
    "createdAt",
    "updatedAt",
    "kmsKeyArn",
    // Carried over by update_request.
    "name",
    "description",
    "blockedInputMessaging",
    "blockedOutputsMessaging",
    "topicPolicy",
    "topicPolicy.topics",
    "topicPolicy.topics[].name",
    "topicPolicy.topics[].definition",
    "topicPolicy.topics[].examples",
    "topicPolicy.topics[].type",
    "topicPolicy.topics[].inputAction",
    "topicPolicy.topics[].outputAction",
    "topicPolicy.topics[].inputEnabled",
    "topicPolicy.topics[].outputEnabled",
    "topicPolicy.tier",
    "topicPolicy.tier.tierName",
    "contentPolicy",
    "contentPolicy.filters",
    "contentPolicy.filters[].type",
    "contentPolicy.filters[].inputStrength",
    "contentPolicy.filters[].outputStrength",
    "contentPolicy.filters[].inputModalities",
    "contentPolicy.filters[].outputModalities",
    "contentPolicy.filters[].inputAction",
    "contentPolicy.filters[].outputAction",
    "contentPolicy.filters[].inputEnabled",
    "contentPolicy.filters[].outputEnabled",
    "contentPolicy.tier",
    "contentPolicy.tier.tierName",
    "wordPolicy",
    "wordPolicy.words",
    "wordPolicy.words[].text",
    "wordPolicy.words[].inputAction",
    "wordPolicy.words[].outputAction",
    "wordPolicy.words[].inputEnabled",
    "wordPolicy.words[].outputEnabled",
    "wordPolicy.managedWordLists",
    "wordPolicy.managedWordLists[].type",
    "wordPolicy.managedWordLists[].inputAction",
    "wordPolicy.managedWordLists[].outputAction",
    "wordPolicy.managedWordLists[].inputEnabled",
    "wordPolicy.managedWordLists[].outputEnabled",
    "sensitiveInformationPolicy",
    "sensitiveInformationPolicy.piiEntities",
    "sensitiveInformationPolicy.piiEntities[].type",
    "sensitiveInformationPolicy.piiEntities[].action",
    "sensitiveInformationPolicy.piiEntities[].inputAction",
    "sensitiveInformationPolicy.piiEntities[].outputAction",
    "sensitiveInformationPolicy.piiEntities[].inputEnabled",
    "sensitiveInformationPolicy.piiEntities[].outputEnabled",
    "sensitiveInformationPolicy.regexes",
    "sensitiveInformationPolicy.regexes[].name",
    "sensitiveInformationPolicy.regexes[].description",
    "sensitiveInformationPolicy.regexes[].pattern",
    "sensitiveInformationPolicy.regexes[].action",
    "sensitiveInformationPolicy.regexes[].inputAction",
    "sensitiveInformationPolicy.regexes[].outputAction",
    "sensitiveInformationPolicy.regexes[].inputEnabled",
    "sensitiveInformationPolicy.regexes[].outputEnabled",
    "contextualGroundingPolicy",
    "contextualGroundingPolicy.filters",
    "contextualGroundingPolicy.filters[].type",
    "contextualGroundingPolicy.filters[].threshold",
    "contextualGroundingPolicy.filters[].action",
    "contextualGroundingPolicy.filters[].enabled",
    "contextualGroundingPolicy.tier",
    "contextualGroundingPolicy.tier.tierName",
    "automatedReasoningPolicy",
    "automatedReasoningPolicy.policies",
    "automatedReasoningPolicy.confidenceThreshold",
    "crossRegionDetails",
    "crossRegionDetails.guardrailProfileId",
    "crossRegionDetails.guardrailProfileArn",
];

/// What may differ between the DRAFT before and after the fix: the key, and what the
/// service changes by itself.
const SERVER_MANAGED: &[&str] = &[
    "kmsKeyArn",
    "updatedAt",
    "status",
    "statusReasons",
    "failureRecommendations",
];

fn draft_protection(draft: &GetGuardrailOutput, raw: &Value) -> Protection {
    let subject = match draft.kms_key_arn().map(KeyRef::parse) {
        None => Subject::Key(None),
        Some(Ok(key)) => Subject::Key(Some(key)),
        Some(Err(e)) => Subject::Unreadable(AwsError::new(
            "bedrock:GetGuardrail",
            format!("kmsKeyArn: {e}"),
            false,
        )),
    };
    let unknown = unknown_members(raw, KNOWN_MEMBERS);
    Protection {
        name: DRAFT.to_owned(),
        noun: "the guardrail's DRAFT".to_owned(),
        kind: KIND,
        resource: None,
        subject,
        no_fix: (!unknown.is_empty()).then(|| format!(
            "GetGuardrail returned members this version of the guard does not know ({}): writing the DRAFT back would drop them",
            unknown.join(", ")
        )),
    }
}

impl Guardrails {
    /// One protection per published version, each read once per warm instance.
    async fn version_protections(
        &self,
        bedrock: &aws_sdk_bedrock::Client,
        draft: &GetGuardrailOutput,
        versions: &[String],
    ) -> Vec<Protection> {
        let arn = draft.guardrail_arn();
        let reads = versions.iter().map(|v| async move {
            let cached = self
                .version_keys
                .lock()
                .ok()
                .and_then(|c| c.get(&(arn.to_owned(), v.clone())).cloned());
            let key = match cached {
                Some(key) => Ok(key),
                None => match read(bedrock, arn, v).await {
                    Ok((out, _)) => {
                        let key = out.kms_key_arn().map(str::to_owned);
                        if let Ok(mut c) = self.version_keys.lock() {
                            c.insert((arn.to_owned(), v.clone()), key.clone());
                        }
                        Ok(key)
                    }
                    // Deleted between the listing and the read: nothing left to judge.
                    Err(Read::Gone) => return None,
                    Err(Read::Failed(error)) => Err(error),
                },
            };
            let subject = match key {
                Ok(None) => Subject::Key(None),
                Ok(Some(k)) => match KeyRef::parse(&k) {
                    Ok(key) => Subject::Key(Some(key)),
                    Err(e) => Subject::Unreadable(AwsError::new(
                        "bedrock:GetGuardrail",
                        format!("kmsKeyArn: {e}"),
                        false,
                    )),
                },
                Err(error) => Subject::Unreadable(error),
            };
            Some(Protection {
                name: format!("version {v}"),
                noun: format!("version {v} of the guardrail"),
                kind: KIND,
                resource: None,
                subject,
                no_fix: Some(VERSION_NO_FIX.to_owned()),
            })
        });
        join_all(reads).await.into_iter().flatten().collect()
    }
}

enum Read {
    Gone,
    Failed(AwsError),
}

/// GetGuardrail of one version, with the raw answer beside the SDK's.
async fn read(
    bedrock: &aws_sdk_bedrock::Client,
    id: &str,
    version: &str,
) -> Result<(GetGuardrailOutput, Value), Read> {
    const CALL: &str = "bedrock:GetGuardrail";
    let body = RawBody::new();
    let out = bedrock
        .get_guardrail()
        .guardrail_identifier(id)
        .guardrail_version(version)
        .customize()
        .interceptor(body.clone())
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(GetGuardrailError::ResourceNotFoundException(_)) => Read::Gone,
            _ => Read::Failed(AwsError::from_sdk(CALL, &e)),
        })?;
    let raw = body
        .json()
        .map_err(|e| Read::Failed(AwsError::new(CALL, e, false)))?;
    Ok((out, raw))
}

/// The numbered versions of a guardrail (ListGuardrails with its id lists the DRAFT too).
async fn list_versions(bedrock: &aws_sdk_bedrock::Client, id: &str) -> Result<Vec<String>, Read> {
    let mut versions = Vec::new();
    let mut next = None;
    loop {
        let page = bedrock
            .list_guardrails()
            .guardrail_identifier(id)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| match AwsError::code_of(&e) {
                Some("ResourceNotFoundException") => Read::Gone,
                _ => Read::Failed(AwsError::from_sdk("bedrock:ListGuardrails", &e)),
            })?;
        versions.extend(
            page.guardrails()
                .iter()
                .map(|g| g.version().to_owned())
                .filter(|v| v != DRAFT),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(versions),
        }
    }
}

/// Step 1 of a fix: read the DRAFT again; if anything changed since it was judged, write
/// nothing (the event of that change is handled on its own).
async fn reread_unchanged(
    bedrock: &aws_sdk_bedrock::Client,
    arn: &str,
    judged: &Value,
) -> Result<(GetGuardrailOutput, Value), FixError> {
    let (current, raw) = read(bedrock, arn, DRAFT).await.map_err(|e| match e {
        Read::Gone => FixError::Changed("the guardrail was deleted after it was judged".to_owned()),
        Read::Failed(error) if error.retryable => FixError::Retry(error),
        Read::Failed(error) => FixError::Refused(format!(
            "the DRAFT could not be read again before writing: {error}"
        )),
    })?;
    let changed = differences(judged, &raw, &[]);
    if !changed.is_empty() {
        return Err(FixError::Changed(format!(
            "the DRAFT changed after it was judged ({})",
            changed.join(", ")
        )));
    }
    Ok((current, raw))
}

/// Step 2: UpdateGuardrail with everything just re-read and only the key changed.
async fn write_key(
    bedrock: &aws_sdk_bedrock::Client,
    current: &GetGuardrailOutput,
    key_arn: &str,
) -> Result<(), FixError> {
    const CALL: &str = "bedrock:UpdateGuardrail";
    let request = update_request(bedrock, current, key_arn).map_err(|e| {
        FixError::Refused(format!(
            "could not build UpdateGuardrail from the guardrail as read: {e}"
        ))
    })?;
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let error = AwsError::from_sdk(CALL, &e);
            // Refused outright (busy, throttled): nothing was written, so a retry may fix it.
            // A timeout may have written: that is a failure to report, not to retry blind.
            match &e {
                aws_sdk_bedrock::error::SdkError::ServiceError(_) if error.retryable => {
                    Err(FixError::Retry(error))
                }
                _ => Err(FixError::Failed {
                    error: error.to_string(),
                }),
            }
        }
    }
}

/// Step 3: wait until the update settles (READY or FAILED), within the deadline.
async fn wait_until_settled(
    bedrock: &aws_sdk_bedrock::Client,
    arn: &str,
    deadline: Instant,
) -> Result<(GetGuardrailOutput, Value), FixError> {
    let mut pause = Duration::from_millis(100);
    loop {
        let (after, raw) = read(bedrock, arn, DRAFT)
            .await
            .map_err(|e| FixError::Failed {
                error: match e {
                    Read::Gone => {
                        "UpdateGuardrail succeeded, but then the guardrail was gone".to_owned()
                    }
                    Read::Failed(error) => {
                        format!("UpdateGuardrail succeeded, but the read-back failed: {error}")
                    }
                },
            })?;
        match after.status() {
            GuardrailStatus::Ready => return Ok((after, raw)),
            GuardrailStatus::Failed => {
                return Err(FixError::Failed {
                    error: format!(
                        "after UpdateGuardrail the guardrail is FAILED: {}",
                        after.status_reasons().join("; ")
                    ),
                })
            }
            status if Instant::now() + pause >= deadline => {
                return Err(FixError::Failed {
                    error: format!(
                        "after UpdateGuardrail the guardrail was still {} when time ran out; the fix is not proven",
                        status.as_str()
                    ),
                })
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Step 4: the read-back equals what was written back, member for member, but the key
/// (now `key_arn`) and the members the service manages.
fn prove_only_the_key_changed(
    before: &Value,
    after: &Value,
    key_arn: &str,
) -> Result<(), FixError> {
    let now = after.get("kmsKeyArn").and_then(Value::as_str);
    if now != Some(key_arn) {
        return Err(FixError::Failed {
            error: format!(
                "UpdateGuardrail returned success, but GetGuardrail reads kmsKeyArn {} instead of {key_arn}",
                now.unwrap_or("(none)")
            ),
        });
    }
    let changed = differences(before, after, SERVER_MANAGED);
    if !changed.is_empty() {
        return Err(FixError::Failed {
            error: format!(
                "the key is in place, but UpdateGuardrail also changed: {}. Compare the DRAFT with its last version and restore what was lost",
                changed.join(", ")
            ),
        });
    }
    Ok(())
}

/// The parts of the guardrail a fix carries over, for the finding's detail.
fn carried_over(g: &GetGuardrailOutput) -> Vec<&'static str> {
    let mut parts = vec!["name", "blocked messages"];
    let optional = [
        ("description", g.description().is_some()),
        ("topic policy", g.topic_policy().is_some()),
        ("content policy", g.content_policy().is_some()),
        ("word policy", g.word_policy().is_some()),
        (
            "sensitive-information policy",
            g.sensitive_information_policy().is_some(),
        ),
        (
            "contextual-grounding policy",
            g.contextual_grounding_policy().is_some(),
        ),
        (
            "automated-reasoning policy",
            g.automated_reasoning_policy().is_some(),
        ),
        ("cross-Region config", g.cross_region_details().is_some()),
    ];
    parts.extend(
        optional
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| name),
    );
    parts.push("tags");
    parts
}

/// UpdateGuardrail replaces the whole DRAFT: everything GetGuardrail returned is sent back,
/// with only the key changed. Output shapes and input (`*Config`) shapes differ in name
/// only; each field is copied explicitly so a new SDK field shows up here as a review item.
pub fn update_request(
    client: &aws_sdk_bedrock::Client,
    g: &GetGuardrailOutput,
    kms_key_id: &str,
) -> Result<UpdateGuardrailFluentBuilder, BuildError> {
    Ok(client
        .update_guardrail()
        .guardrail_identifier(g.guardrail_arn())
        .name(g.name())
        .set_description(g.description().map(str::to_owned))
        .blocked_input_messaging(g.blocked_input_messaging())
        .blocked_outputs_messaging(g.blocked_outputs_messaging())
        .set_topic_policy_config(g.topic_policy().map(topic_policy).transpose()?)
        .set_content_policy_config(g.content_policy().map(content_policy).transpose()?)
        .set_word_policy_config(g.word_policy().map(word_policy).transpose()?)
        .set_sensitive_information_policy_config(
            g.sensitive_information_policy()
                .map(sensitive_information_policy)
                .transpose()?,
        )
        .set_contextual_grounding_policy_config(
            g.contextual_grounding_policy()
                .map(contextual_grounding_policy)
                .transpose()?,
        )
        .set_automated_reasoning_policy_config(
            g.automated_reasoning_policy()
                .map(automated_reasoning_policy)
                .transpose()?,
        )
        .set_cross_region_config(g.cross_region_details().map(cross_region).transpose()?)
        .kms_key_id(kms_key_id))
}

fn topic_policy(p: &GuardrailTopicPolicy) -> Result<GuardrailTopicPolicyConfig, BuildError> {
    let topics = p
        .topics()
        .iter()
        .map(|t| {
            GuardrailTopicConfig::builder()
                .name(t.name())
                .definition(t.definition())
                .set_examples(t.examples.clone())
                .set_type(t.r#type().cloned())
                .set_input_action(t.input_action().cloned())
                .set_output_action(t.output_action().cloned())
                .set_input_enabled(t.input_enabled())
                .set_output_enabled(t.output_enabled())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tier = p
        .tier()
        .map(|t| {
            GuardrailTopicsTierConfig::builder()
                .tier_name(t.tier_name().clone())
                .build()
        })
        .transpose()?;
    GuardrailTopicPolicyConfig::builder()
        .set_topics_config(Some(topics))
        .set_tier_config(tier)
        .build()
}

fn content_policy(p: &GuardrailContentPolicy) -> Result<GuardrailContentPolicyConfig, BuildError> {
    let filters = p
        .filters()
        .iter()
        .map(|f| {
            GuardrailContentFilterConfig::builder()
                .r#type(f.r#type().clone())
                .input_strength(f.input_strength().clone())
                .output_strength(f.output_strength().clone())
                .set_input_modalities(f.input_modalities.clone())
                .set_output_modalities(f.output_modalities.clone())
                .set_input_action(f.input_action().cloned())
                .set_output_action(f.output_action().cloned())
                .set_input_enabled(f.input_enabled())
                .set_output_enabled(f.output_enabled())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tier = p
        .tier()
        .map(|t| {
            GuardrailContentFiltersTierConfig::builder()
                .tier_name(t.tier_name().clone())
                .build()
        })
        .transpose()?;
    GuardrailContentPolicyConfig::builder()
        .set_filters_config(Some(filters))
        .set_tier_config(tier)
        .build()
}

fn word_policy(p: &GuardrailWordPolicy) -> Result<GuardrailWordPolicyConfig, BuildError> {
    let words = p
        .words
        .as_ref()
        .map(|words| {
            words
                .iter()
                .map(|w| {
                    GuardrailWordConfig::builder()
                        .text(w.text())
                        .set_input_action(w.input_action().cloned())
                        .set_output_action(w.output_action().cloned())
                        .set_input_enabled(w.input_enabled())
                        .set_output_enabled(w.output_enabled())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let managed = p
        .managed_word_lists
        .as_ref()
        .map(|lists| {
            lists
                .iter()
                .map(|m| {
                    GuardrailManagedWordsConfig::builder()
                        .r#type(m.r#type().clone())
                        .set_input_action(m.input_action().cloned())
                        .set_output_action(m.output_action().cloned())
                        .set_input_enabled(m.input_enabled())
                        .set_output_enabled(m.output_enabled())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(GuardrailWordPolicyConfig::builder()
        .set_words_config(words)
        .set_managed_word_lists_config(managed)
        .build())
}

fn sensitive_information_policy(
    p: &GuardrailSensitiveInformationPolicy,
) -> Result<GuardrailSensitiveInformationPolicyConfig, BuildError> {
    let entities = p
        .pii_entities
        .as_ref()
        .map(|entities| {
            entities
                .iter()
                .map(|e| {
                    GuardrailPiiEntityConfig::builder()
                        .r#type(e.r#type().clone())
                        .action(e.action().clone())
                        .set_input_action(e.input_action().cloned())
                        .set_output_action(e.output_action().cloned())
                        .set_input_enabled(e.input_enabled())
                        .set_output_enabled(e.output_enabled())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let regexes = p
        .regexes
        .as_ref()
        .map(|regexes| {
            regexes
                .iter()
                .map(|r| {
                    GuardrailRegexConfig::builder()
                        .name(r.name())
                        .set_description(r.description().map(str::to_owned))
                        .pattern(r.pattern())
                        .action(r.action().clone())
                        .set_input_action(r.input_action().cloned())
                        .set_output_action(r.output_action().cloned())
                        .set_input_enabled(r.input_enabled())
                        .set_output_enabled(r.output_enabled())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(GuardrailSensitiveInformationPolicyConfig::builder()
        .set_pii_entities_config(entities)
        .set_regexes_config(regexes)
        .build())
}

fn contextual_grounding_policy(
    p: &GuardrailContextualGroundingPolicy,
) -> Result<GuardrailContextualGroundingPolicyConfig, BuildError> {
    let filters = p
        .filters()
        .iter()
        .map(|f| {
            GuardrailContextualGroundingFilterConfig::builder()
                .r#type(f.r#type().clone())
                .threshold(f.threshold())
                .set_action(f.action().cloned())
                .set_enabled(f.enabled())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tier = p
        .tier()
        .map(|t| {
            GuardrailContextualGroundingTierConfig::builder()
                .tier_name(t.tier_name().clone())
                .build()
        })
        .transpose()?;
    GuardrailContextualGroundingPolicyConfig::builder()
        .set_filters_config(Some(filters))
        .set_tier_config(tier)
        .build()
}

fn automated_reasoning_policy(
    p: &GuardrailAutomatedReasoningPolicy,
) -> Result<GuardrailAutomatedReasoningPolicyConfig, BuildError> {
    GuardrailAutomatedReasoningPolicyConfig::builder()
        .set_policies(Some(p.policies().to_vec()))
        .set_confidence_threshold(p.confidence_threshold())
        .build()
}

/// The profile is named by its ARN where known (valid wherever the guardrail is), else its id.
fn cross_region(d: &GuardrailCrossRegionDetails) -> Result<GuardrailCrossRegionConfig, BuildError> {
    GuardrailCrossRegionConfig::builder()
        .set_guardrail_profile_identifier(
            d.guardrail_profile_arn()
                .or(d.guardrail_profile_id())
                .map(str::to_owned),
        )
        .build()
}
