//! Bedrock guardrails (Conformity Bedrock-003, Config rules pack FMI-08): every guardrail
//! encrypted with an allowed customer-managed KMS key, checked on CreateGuardrail and
//! UpdateGuardrail, fixed by re-keying the DRAFT.

use aws_sdk_bedrock::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_bedrock::operation::get_guardrail::{GetGuardrailError, GetGuardrailOutput};
use aws_sdk_bedrock::operation::update_guardrail::builders::UpdateGuardrailFluentBuilder;
use aws_sdk_bedrock::types::*;
use bedrock_cmk_guard::finding::Resource;
use bedrock_cmk_guard::intake::Trigger;
use bedrock_cmk_guard::keys::{KeyInfo, KeyRef};
use bedrock_cmk_guard::verdict::Location;
use bedrock_cmk_guard::{EventSpec, GatherError, Observed, Reactor, RemediationError, Scope};

pub use aws_sdk_bedrock::error::BuildError;

/// The working draft: the only version UpdateGuardrail changes.
const DRAFT: &str = "DRAFT";

pub struct Guardrails;

impl Reactor for Guardrails {
    type State = GetGuardrailOutput;

    const CHECK: &'static str = "bedrock-guardrail-cmk";
    const RESOURCE_TYPE: &'static str = "AWS::Bedrock::Guardrail";
    const NOUN: &'static str = "the guardrail";
    const EVENTS: &'static [EventSpec] = &[
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "CreateGuardrail",
            resource_paths: &[
                "/responseElements/guardrailArn",
                "/responseElements/guardrailId",
            ],
            key_hint_paths: &["/requestParameters/kmsKeyId"],
        },
        EventSpec {
            event_source: "bedrock.amazonaws.com",
            event_name: "UpdateGuardrail",
            resource_paths: &[
                "/responseElements/guardrailArn",
                "/requestParameters/guardrailIdentifier",
                "/responseElements/guardrailId",
            ],
            key_hint_paths: &["/requestParameters/kmsKeyId"],
        },
    ];

    /// A guardrail ARN says where the guardrail lives, whatever the envelope says.
    fn locate(&self, trigger: &Trigger) -> Location {
        let parts: Vec<&str> = trigger.resource_id.split(':').collect();
        match parts[..] {
            ["arn", _, "bedrock", region, account, resource]
                if resource.starts_with("guardrail/") =>
            {
                Location {
                    account: account.to_owned(),
                    region: region.to_owned(),
                }
            }
            _ => Location {
                account: trigger.call.account.clone(),
                region: trigger.call.region.clone(),
            },
        }
    }

    async fn gather(
        &self,
        scope: &Scope,
        resource_id: &str,
    ) -> Result<Option<Observed<Self::State>>, GatherError> {
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let out = match read_draft(&bedrock, resource_id).await {
            Ok(out) => out,
            Err(Read::Gone) => return Ok(None),
            Err(Read::Failed(message)) => {
                return Err(GatherError {
                    call: "bedrock:GetGuardrail",
                    message,
                })
            }
        };
        let key = match out.kms_key_arn() {
            Some(arn) => Some(KeyRef::parse(arn).map_err(|e| GatherError {
                call: "bedrock:GetGuardrail",
                message: format!("kmsKeyArn: {e}"),
            })?),
            None => None,
        };
        Ok(Some(Observed {
            resource: Resource {
                kind: Self::RESOURCE_TYPE.to_owned(),
                arn: Some(out.guardrail_arn().to_owned()),
                name: Some(out.name().to_owned()),
            },
            key,
            state: out,
        }))
    }

    fn describe_fix(&self, observed: &Observed<Self::State>, key: &KeyInfo) -> String {
        let g = &observed.state;
        format!(
            "UpdateGuardrail on the DRAFT of guardrail \"{}\" ({}) with kmsKeyId {}, carrying over unchanged: {}; \
             then GetGuardrail to prove kmsKeyArn is that key. {}",
            g.name(),
            g.guardrail_arn(),
            key.arn,
            carried_over(g).join(", "),
            VERSIONS_NOTE
        )
    }

    fn manual_fix(&self, observed: &Observed<Self::State>) -> String {
        let g = &observed.state;
        format!(
            "Console: Amazon Bedrock > Guardrails > {name} > Working draft > Edit > KMS key selection: choose a \
             customer-managed key and save. CLI: aws bedrock update-guardrail --guardrail-identifier {id} \
             --kms-key-id <CMK ARN> together with the name, blocked messages and every policy the guardrail has \
             (UpdateGuardrail replaces the whole draft), or let the guard do it: cmk-guard check --event <event.json> \
             --mode remediate. {VERSIONS_NOTE}",
            name = g.name(),
            id = g.guardrail_id(),
        )
    }

    async fn remediate(
        &self,
        scope: &Scope,
        observed: &Observed<Self::State>,
        key: &KeyInfo,
    ) -> Result<String, RemediationError> {
        let bedrock = aws_sdk_bedrock::Client::new(&scope.config);
        let g = &observed.state;
        update_request(&bedrock, g, &key.arn)
            .map_err(|e| {
                RemediationError(format!(
                    "could not build UpdateGuardrail from the guardrail as read: {e}"
                ))
            })?
            .send()
            .await
            .map_err(|e| {
                RemediationError(format!("bedrock:UpdateGuardrail: {}", error_text(&e)))
            })?;
        let after = read_draft(&bedrock, g.guardrail_arn()).await.map_err(|e| {
            RemediationError(format!(
                "UpdateGuardrail succeeded but the read-back failed: {}",
                match e {
                    Read::Gone => "the guardrail is gone".to_owned(),
                    Read::Failed(m) => m,
                }
            ))
        })?;
        match after.kms_key_arn() {
            Some(arn) if arn == key.arn => Ok(format!(
                "UpdateGuardrail set kmsKeyId of guardrail \"{}\" (DRAFT) to {}, keeping {}; GetGuardrail read back kmsKeyArn = {arn}. {}",
                g.name(),
                key.arn,
                carried_over(g).join(", "),
                VERSIONS_NOTE
            )),
            other => Err(RemediationError(format!(
                "UpdateGuardrail returned success, but GetGuardrail reads kmsKeyArn {} instead of {}",
                other.unwrap_or("(none)"),
                key.arn
            ))),
        }
    }
}

const VERSIONS_NOTE: &str = "Published versions keep the key they were created with: \
    after the fix, create a new version (CreateGuardrailVersion) and move applications to it.";

enum Read {
    Gone,
    Failed(String),
}

async fn read_draft(
    bedrock: &aws_sdk_bedrock::Client,
    id: &str,
) -> Result<GetGuardrailOutput, Read> {
    bedrock
        .get_guardrail()
        .guardrail_identifier(id)
        .guardrail_version(DRAFT)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(GetGuardrailError::ResourceNotFoundException(_)) => Read::Gone,
            _ => Read::Failed(error_text(&e)),
        })
}

fn error_text<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_bedrock::error::SdkError<E>,
) -> String {
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(e).to_string(),
    }
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
