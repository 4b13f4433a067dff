//! Handled-event record (the pattern of Powertools' idempotency utility): EventBridge
//! delivers at least once, and a redelivered event must not alert twice.
//!
//! One item per CloudTrail eventID in the table named by `IDEMPOTENCY_TABLE`
//! (partition key `id`, TTL attribute `expiration`). A conditional PutItem claims the event
//! as IN_PROGRESS; when the finding is out the item becomes COMPLETED. A claim left behind
//! by a crashed invocation expires, so the Lambda retry is not lost.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

pub struct IdempotencyStore {
    table: String,
    /// Longer than the Lambda timeout: a live invocation is never taken over.
    in_progress_for: Duration,
    /// How long a handled event is remembered (EventBridge retries for up to 24 hours).
    remember_for: Duration,
}

/// What the record says about an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First sight (or an abandoned claim): handle it.
    Fresh,
    /// Handled before; `summary` says how.
    Completed { summary: String },
    /// Another invocation is handling it right now.
    InProgress,
}

impl IdempotencyStore {
    pub fn new(table: String) -> Self {
        IdempotencyStore {
            table,
            in_progress_for: Duration::from_secs(15 * 60),
            remember_for: Duration::from_secs(25 * 3600),
        }
    }

    pub async fn claim(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        event_id: &str,
    ) -> Result<Claim, String> {
        let now = now_secs();
        let put = ddb
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(event_id.to_owned()))
            .item("status", AttributeValue::S(IN_PROGRESS.to_owned()))
            .item("inProgressUntil", number(now + self.in_progress_for.as_secs()))
            .item("expiration", number(now + self.remember_for.as_secs()))
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now OR (#status = :in_progress AND inProgressUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Fresh),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    self.existing(ddb, event_id).await
                }
                Some(e) => Err(format!(
                    "PutItem {}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or("")
                )),
                None => Err(format!("PutItem: {}", DisplayErrorContext(&err))),
            },
        }
    }

    async fn existing(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        event_id: &str,
    ) -> Result<Claim, String> {
        let out = ddb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(event_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("GetItem: {}", DisplayErrorContext(&e)))?;
        let item = out.item();
        let text = |name| {
            item.and_then(|i| i.get(name))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        Ok(match text("status").as_deref() {
            Some(COMPLETED) => Claim::Completed {
                summary: text("summary").unwrap_or_default(),
            },
            Some(_) => Claim::InProgress,
            // Gone between the two calls (TTL): treat as taken, the retry will see it fresh.
            None => Claim::InProgress,
        })
    }

    pub async fn complete(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        event_id: &str,
        summary: &str,
    ) -> Result<(), String> {
        ddb.update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(event_id.to_owned()))
            .update_expression("SET #status = :completed, summary = :summary")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.to_owned()))
            .expression_attribute_values(":summary", AttributeValue::S(summary.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("UpdateItem: {}", DisplayErrorContext(&e)))
    }

    /// Gives the event back after a failure, so the Lambda retry handles it afresh.
    pub async fn release(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        event_id: &str,
    ) -> Result<(), String> {
        ddb.delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(event_id.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("DeleteItem: {}", DisplayErrorContext(&e)))
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
