//! What a DescribeKey answer proves, with the exact answers KMS could give (aws-smithy-mocks):
//! an answer about another key than the one asked for proves nothing; throttling may pass,
//! AccessDenied does not; NotFound is its own verdict.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::types::error::NotFoundException;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bedrock_cmk_guard::keys::{KeyDirectory, KeyEvidence, KeyRef};

const ACCOUNT: &str = "111122223333";
const MRK: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";

fn kms(rules: &[&Rule]) -> aws_sdk_kms::Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(create_mock_http_client())
        // What remains after the SDK's retries is what is judged: no retries here.
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .interceptor(interceptor)
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// DescribeKey answering, whatever was asked, with the key at `arn`.
fn answers_with(arn: &'static str) -> Rule {
    mock!(aws_sdk_kms::Client::describe_key).then_output(move || {
        let id = arn.rsplit('/').next().unwrap();
        DescribeKeyOutput::builder()
            .key_metadata(
                KeyMetadata::builder()
                    .key_id(id)
                    .arn(arn)
                    .key_manager(KeyManagerType::Customer)
                    .key_state(KeyState::Enabled)
                    .key_spec(KeySpec::SymmetricDefault)
                    .key_usage(KeyUsageType::EncryptDecrypt)
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

async fn evidence(client: &aws_sdk_kms::Client, key: &str) -> KeyEvidence {
    KeyDirectory::default()
        .evidence(
            client,
            ACCOUNT,
            "us-east-1",
            Some(&KeyRef::parse(key).unwrap()),
        )
        .await
}

#[tokio::test]
async fn an_answer_about_another_key_proves_nothing() {
    // Asked about the replica in eu-west-1, answered about the primary in us-east-1.
    let primary = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    let rule = answers_with(primary);
    let client = kms(&[&rule]);
    let asked = format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK}");
    match evidence(&client, &asked).await {
        KeyEvidence::Unverified {
            error, retryable, ..
        } => {
            assert!(error.contains("proves nothing"), "{error}");
            assert!(!retryable, "asking again gets the same answer");
        }
        other => panic!("expected Unverified, got {other:?}"),
    }
    // The same answer for the key that was asked about is evidence.
    assert!(matches!(
        evidence(&client, primary).await,
        KeyEvidence::Described { .. }
    ));
    // An id must come back as itself; an alias may name any key.
    let other_id =
        answers_with("arn:aws:kms:us-east-1:111122223333:key/99999999-12ab-34cd-56ef-1234567890ab");
    let client = kms(&[&other_id]);
    assert!(matches!(
        evidence(&client, "1234abcd-12ab-34cd-56ef-1234567890ab").await,
        KeyEvidence::Unverified { .. }
    ));
    assert!(matches!(
        evidence(&client, "alias/guardrails").await,
        KeyEvidence::Described { .. }
    ));
}

#[tokio::test]
async fn failures_are_sorted_into_missing_final_and_passing() {
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let missing = mock!(aws_sdk_kms::Client::describe_key).then_error(|| {
        DescribeKeyError::NotFoundException(NotFoundException::builder().message("gone").build())
    });
    assert!(matches!(
        evidence(&kms(&[&missing]), key).await,
        KeyEvidence::NotFound { .. }
    ));
    for (status, code, retryable) in [
        (400, "ThrottlingException", true),
        (503, "ServiceUnavailable", true),
        (500, "KMSInternalException", true),
        (400, "AccessDeniedException", false),
    ] {
        let rule = mock!(aws_sdk_kms::Client::describe_key).then_http_response(move || {
            HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(format!(r#"{{"__type": "{code}", "message": "no"}}"#)),
            )
        });
        match evidence(&kms(&[&rule]), key).await {
            KeyEvidence::Unverified {
                error,
                retryable: r,
                ..
            } => {
                assert_eq!(r, retryable, "{code}: {error}");
                assert!(error.contains(code), "{error}");
            }
            other => panic!("{code}: expected Unverified, got {other:?}"),
        }
    }
}
