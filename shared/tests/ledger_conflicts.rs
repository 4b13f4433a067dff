//! DynamoDB cancels a transaction with `TransactionConflict` when another request writes one
//! of its items at that moment (the emulator does not model this; aws-smithy-mocks does): the
//! lock and the reservation both read it as another run at work on the resource, never as a
//! failure of DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::CancellationReason;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};
use bedrock_cmk_guard::ledger::{Ledger, LockError, Reservation, ResourceUpdate};

const ARN: &str = "arn:aws:bedrock:us-east-1:111122223333:guardrail/abcdefghijkl";

/// A DynamoDB client whose every TransactWriteItems is cancelled with these reasons.
fn cancelled_with(codes: &'static [&'static str]) -> aws_sdk_dynamodb::Client {
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(move || {
        let mut e = TransactionCanceledException::builder().message("cancelled");
        for code in codes {
            e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
        }
        TransactWriteItemsError::TransactionCanceledException(e.build())
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn a_conflict_on_the_lock_is_another_run_fixing() {
    let ledger = Ledger::new("ledger".to_owned());
    let ddb = cancelled_with(&["None", "TransactionConflict"]);
    let entry = ledger.entry(&ddb, "bedrock-guardrail-cmk", "event-1");
    let result = entry
        .begin_fix(ARN, "arn:aws:kms:us-east-1:111122223333:key/k", 9)
        .await;
    assert!(matches!(result, Err(LockError::Held)), "{result:?}");

    let ddb = cancelled_with(&["ConditionalCheckFailed", "None"]);
    let entry = ledger.entry(&ddb, "bedrock-guardrail-cmk", "event-1");
    let result = entry
        .begin_fix(ARN, "arn:aws:kms:us-east-1:111122223333:key/k", 9)
        .await;
    assert!(matches!(result, Err(LockError::ClaimLost)), "{result:?}");
}

#[tokio::test]
async fn a_conflict_on_the_reservation_is_a_race() {
    let ledger = Ledger::new("ledger".to_owned());
    let ddb = cancelled_with(&["TransactionConflict", "None"]);
    let entry = ledger.entry(&ddb, "bedrock-guardrail-cmk", "event-1");
    let reservation = entry
        .reserve_telling("{}", 9, ARN, None, &ResourceUpdate::default())
        .await
        .expect("a race, not an error");
    assert_eq!(reservation, Reservation::Raced);
}
