//! UpdateGuardrail replaces the whole DRAFT: the remediation must send back every field
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! GetGuardrail returned, with only the key changed. aws-smithy-mocks captures the exact
//! request the reactor sends.

use std::sync::{Arc, Mutex};

use aws_sdk_bedrock::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrock::operation::get_guardrail::GetGuardrailOutput;
use aws_sdk_bedrock::operation::update_guardrail::{UpdateGuardrailInput, UpdateGuardrailOutput};
use aws_sdk_bedrock::primitives::DateTime;
use aws_sdk_bedrock::types::*;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};

const ARN: &str = "arn:aws:bedrock:us-east-1:111122223333:guardrail/a1b2c3d4e5f6";
const OLD_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000";
const NEW_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A guardrail with every optional member set, each to a value found nowhere else.
fn everything(kms_key_arn: &str) -> GetGuardrailOutput {
    GetGuardrailOutput::builder()
        .name("support-bot")
        .guardrail_id("a1b2c3d4e5f6")
        .guardrail_arn(ARN)
        .version("DRAFT")
        .status(GuardrailStatus::Ready)
        .description("blocks what support must not say")
        .created_at(DateTime::from_secs(1_700_000_000))
        .updated_at(DateTime::from_secs(1_700_000_100))
        .blocked_input_messaging("input blocked")
        .blocked_outputs_messaging("output blocked")
        .kms_key_arn(kms_key_arn)
        .topic_policy(
            GuardrailTopicPolicy::builder()
                .topics(
                    GuardrailTopic::builder()
                        .name("investment-advice")
                        .definition("recommending investments")
                        .examples("which stock should I buy?")
                        .r#type(GuardrailTopicType::Deny)
                        .input_action(GuardrailTopicAction::Block)
                        .output_action(GuardrailTopicAction::None)
                        .input_enabled(true)
                        .output_enabled(false)
                        .build()
                        .unwrap(),
                )
                .tier(
                    GuardrailTopicsTier::builder()
                        .tier_name(GuardrailTopicsTierName::Standard)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .content_policy(
            GuardrailContentPolicy::builder()
                .filters(
                    GuardrailContentFilter::builder()
                        .r#type(GuardrailContentFilterType::Violence)
                        .input_strength(GuardrailFilterStrength::High)
                        .output_strength(GuardrailFilterStrength::Low)
                        .input_modalities(GuardrailModality::Image)
                        .output_modalities(GuardrailModality::Text)
                        .input_action(GuardrailContentFilterAction::Block)
                        .output_action(GuardrailContentFilterAction::None)
                        .input_enabled(false)
                        .output_enabled(true)
                        .build()
                        .unwrap(),
                )
                .tier(
                    GuardrailContentFiltersTier::builder()
                        .tier_name(GuardrailContentFiltersTierName::Classic)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .word_policy(
            GuardrailWordPolicy::builder()
                .words(
                    GuardrailWord::builder()
                        .text("competitor-name")
                        .input_action(GuardrailWordAction::None)
                        .output_action(GuardrailWordAction::Block)
                        .input_enabled(true)
                        .output_enabled(true)
                        .build()
                        .unwrap(),
                )
                .managed_word_lists(
                    GuardrailManagedWords::builder()
                        .r#type(GuardrailManagedWordsType::Profanity)
                        .input_action(GuardrailWordAction::Block)
                        .output_action(GuardrailWordAction::None)
                        .input_enabled(false)
                        .output_enabled(true)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .sensitive_information_policy(
            GuardrailSensitiveInformationPolicy::builder()
                .pii_entities(
                    GuardrailPiiEntity::builder()
                        .r#type(GuardrailPiiEntityType::Email)
                        .action(GuardrailSensitiveInformationAction::Anonymize)
                        .input_action(GuardrailSensitiveInformationAction::Block)
                        .output_action(GuardrailSensitiveInformationAction::Anonymize)
                        .input_enabled(true)
                        .output_enabled(false)
                        .build()
                        .unwrap(),
                )
                .regexes(
                    GuardrailRegex::builder()
                        .name("ticket-id")
                        .description("internal ticket numbers")
                        .pattern("TCK-[0-9]{6}")
                        .action(GuardrailSensitiveInformationAction::Block)
                        .input_action(GuardrailSensitiveInformationAction::None)
                        .output_action(GuardrailSensitiveInformationAction::Block)
                        .input_enabled(false)
                        .output_enabled(true)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .contextual_grounding_policy(
            GuardrailContextualGroundingPolicy::builder()
                .filters(
                    GuardrailContextualGroundingFilter::builder()
                        .r#type(GuardrailContextualGroundingFilterType::Relevance)
                        .threshold(0.73)
                        .action(GuardrailContextualGroundingAction::None)
                        .enabled(false)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .automated_reasoning_policy(
            GuardrailAutomatedReasoningPolicy::builder()
                .policies("arn:aws:bedrock:us-east-1:111122223333:automated-reasoning-policy/p1")
                .confidence_threshold(0.9)
                .build()
                .unwrap(),
        )
        .cross_region_details(
            GuardrailCrossRegionDetails::builder()
                .guardrail_profile_id("us.guardrail.v1:0")
                .guardrail_profile_arn(
                    "arn:aws:bedrock:us-east-1:111122223333:guardrail-profile/us.guardrail.v1:0",
                )
                .build(),
        )
        .build()
        .unwrap()
}

/// A mock UpdateGuardrail that keeps the request it was sent.
fn capture_update() -> (Rule, Arc<Mutex<Option<UpdateGuardrailInput>>>) {
    let sent: Arc<Mutex<Option<UpdateGuardrailInput>>> = Arc::default();
    let capture = sent.clone();
    let rule = mock!(aws_sdk_bedrock::Client::update_guardrail)
        .match_requests(move |input| {
            *capture.lock().unwrap() = Some(input.clone());
            true
        })
        .then_output(|| {
            UpdateGuardrailOutput::builder()
                .guardrail_id("a1b2c3d4e5f6")
                .guardrail_arn(ARN)
                .version("DRAFT")
                .updated_at(DateTime::from_secs(1_700_000_200))
                .build()
                .unwrap()
        });
    (rule, sent)
}

/// A Bedrock client whose every call is answered by the mock rules.
fn mocked_client(interceptor: MockResponseInterceptor) -> aws_sdk_bedrock::Client {
    let config = aws_sdk_bedrock::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    aws_sdk_bedrock::Client::from_conf(config)
}

#[tokio::test]
async fn update_request_carries_every_field_get_guardrail_returned() {
    let (update, sent) = capture_update();
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&update);
    let client = mocked_client(interceptor);

    let before = everything(OLD_KEY);
    guardrails::update_request(&client, &before, NEW_KEY)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(update.num_calls(), 1);

    let input = sent
        .lock()
        .unwrap()
        .clone()
        .expect("UpdateGuardrail was sent");
    assert_eq!(input.guardrail_identifier(), Some(ARN));
    assert_eq!(input.kms_key_id(), Some(NEW_KEY), "the only change");
    assert_eq!(input.name(), Some("support-bot"));
    assert_eq!(input.description(), before.description());
    assert_eq!(input.blocked_input_messaging(), Some("input blocked"));
    assert_eq!(input.blocked_outputs_messaging(), Some("output blocked"));

    let topics = input.topic_policy_config().unwrap();
    let (got, want) = (
        &topics.topics_config()[0],
        &before.topic_policy().unwrap().topics()[0],
    );
    assert_eq!(
        (
            got.name(),
            got.definition(),
            got.examples(),
            Some(got.r#type()),
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.name(),
            want.definition(),
            want.examples(),
            want.r#type(),
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );
    assert_eq!(
        topics.tier_config().unwrap().tier_name(),
        before.topic_policy().unwrap().tier().unwrap().tier_name()
    );

    let content = input.content_policy_config().unwrap();
    let (got, want) = (
        &content.filters_config()[0],
        &before.content_policy().unwrap().filters()[0],
    );
    assert_eq!(
        (
            got.r#type(),
            got.input_strength(),
            got.output_strength(),
            got.input_modalities(),
            got.output_modalities()
        ),
        (
            want.r#type(),
            want.input_strength(),
            want.output_strength(),
            want.input_modalities(),
            want.output_modalities()
        )
    );
    assert_eq!(
        (
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );
    assert_eq!(
        content.tier_config().unwrap().tier_name(),
        before.content_policy().unwrap().tier().unwrap().tier_name()
    );

    let words = input.word_policy_config().unwrap();
    let (got, want) = (
        &words.words_config()[0],
        &before.word_policy().unwrap().words()[0],
    );
    assert_eq!(
        (
            got.text(),
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.text(),
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );
    let (got, want) = (
        &words.managed_word_lists_config()[0],
        &before.word_policy().unwrap().managed_word_lists()[0],
    );
    assert_eq!(
        (
            got.r#type(),
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.r#type(),
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );

    let sensitive = input.sensitive_information_policy_config().unwrap();
    let (got, want) = (
        &sensitive.pii_entities_config()[0],
        &before
            .sensitive_information_policy()
            .unwrap()
            .pii_entities()[0],
    );
    assert_eq!(
        (
            got.r#type(),
            got.action(),
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.r#type(),
            want.action(),
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );
    let (got, want) = (
        &sensitive.regexes_config()[0],
        &before.sensitive_information_policy().unwrap().regexes()[0],
    );
    assert_eq!(
        (
            got.name(),
            got.description(),
            got.pattern(),
            got.action(),
            got.input_action(),
            got.output_action(),
            got.input_enabled(),
            got.output_enabled()
        ),
        (
            want.name(),
            want.description(),
            want.pattern(),
            want.action(),
            want.input_action(),
            want.output_action(),
            want.input_enabled(),
            want.output_enabled()
        )
    );

    let grounding = input.contextual_grounding_policy_config().unwrap();
    let (got, want) = (
        &grounding.filters_config()[0],
        &before.contextual_grounding_policy().unwrap().filters()[0],
    );
    assert_eq!(
        (got.r#type(), got.threshold(), got.action(), got.enabled()),
        (
            want.r#type(),
            want.threshold(),
            want.action(),
            want.enabled()
        )
    );

    let reasoning = input.automated_reasoning_policy_config().unwrap();
    let want = before.automated_reasoning_policy().unwrap();
    assert_eq!(
        (reasoning.policies(), reasoning.confidence_threshold()),
        (want.policies(), want.confidence_threshold())
    );

    assert_eq!(
        input
            .cross_region_config()
            .unwrap()
            .guardrail_profile_identifier(),
        before
            .cross_region_details()
            .unwrap()
            .guardrail_profile_arn()
            .unwrap()
    );
}

#[tokio::test]
async fn a_guardrail_with_no_optional_members_sends_none() {
    let (update, sent) = capture_update();
    let interceptor = MockResponseInterceptor::new().with_rule(&update);
    let client = mocked_client(interceptor);
    let bare = GetGuardrailOutput::builder()
        .name("bare")
        .guardrail_id("a1b2c3d4e5f6")
        .guardrail_arn(ARN)
        .version("DRAFT")
        .status(GuardrailStatus::Ready)
        .created_at(DateTime::from_secs(1_700_000_000))
        .updated_at(DateTime::from_secs(1_700_000_100))
        .blocked_input_messaging("in")
        .blocked_outputs_messaging("out")
        .build()
        .unwrap();
    guardrails::update_request(&client, &bare, NEW_KEY)
        .unwrap()
        .send()
        .await
        .unwrap();
    let input = sent.lock().unwrap().clone().unwrap();
    assert_eq!(input.kms_key_id(), Some(NEW_KEY));
    assert!(input.description().is_none());
    assert!(input.topic_policy_config().is_none() && input.content_policy_config().is_none());
    assert!(
        input.word_policy_config().is_none()
            && input.sensitive_information_policy_config().is_none()
    );
    assert!(
        input.contextual_grounding_policy_config().is_none()
            && input.automated_reasoning_policy_config().is_none()
    );
    assert!(input.cross_region_config().is_none());
}
