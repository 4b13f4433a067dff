//! The ledger: one DynamoDB table (named by `STATE_TABLE`; partition key `id`, string; TTL
//! attribute `expiration`) shared by every reactor. It holds two kinds of item:
//!
//! - **Event claims** (`event#<check>#<CloudTrail eventID>`): EventBridge delivers at least
//!   once, and Lambda retries failures. A claim is IN_PROGRESS only until the invocation's
//!   deadline plus a margin, so a run that died never blocks its own retry; ACTING while a fix
//!   is being written; TELLING with the finding while it is published (until the same
//!   deadline: past it, a retry publishes that finding); ACTED with the finding when it could
//!   not be published (the retry publishes it instead of judging again); COMPLETED once told.
//!   A claim is released (deleted) only when nothing was changed.
//! - **Resource records** (`resource#<check>#<resource ARN>`): the state last published (so a
//!   problem is told once, and its end is told too), the key ARNs the resource was found on
//!   (to answer "what uses this key?"), the fixes of the last 24 hours (the fix budget), and a
//!   short lock held while fixing.
//!
//! The pattern is Powertools' idempotency utility, extended to resources.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::finding::Status;

/// Claim states, as stored.
const IN_PROGRESS: &str = "IN_PROGRESS";
const ACTING: &str = "ACTING";
const TELLING: &str = "TELLING";
const ACTED: &str = "ACTED";
const COMPLETED: &str = "COMPLETED";

/// How long a handled event is remembered: EventBridge retries for up to 24 hours.
const REMEMBER_EVENTS: Duration = Duration::from_secs(25 * 3600);
/// How long a resource record outlives its last write. Past it, the next problem is simply
/// news again.
const REMEMBER_RESOURCES: Duration = Duration::from_secs(90 * 24 * 3600);
/// The window of the fix budget.
pub const FIX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Seconds since the Unix epoch: the ledger's clock (DynamoDB TTL uses the same).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct Ledger {
    table: String,
}

/// What the ledger says about an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First sight, or a claim left by a run that died. `interrupted_fix`: that run had begun
    /// writing a fix with this key, so the resource may have changed.
    Fresh { interrupted_fix: Option<String> },
    /// Handled and told before; `summary` says how.
    Completed { summary: String },
    /// A run acted but could not publish: this is its finding (JSON), to publish now.
    Unpublished { finding: String },
    /// Another invocation is handling it right now (until this epoch second).
    InProgress { until: u64 },
}

/// The state last published for a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub status: Status,
    /// Status, failing parts and reasons: a change in any of them is news.
    pub fingerprint: String,
    pub at: u64,
    pub event_id: String,
}

/// One automatic fix, and who made it necessary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixRecord {
    pub at: u64,
    pub event_id: String,
    /// Who removed the key (the caller of the event the fix answered).
    pub actor: String,
}

/// What the ledger knows about a resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceRecord {
    pub published: Option<Published>,
    pub key_arns: BTreeSet<String>,
    /// Fixes in the last 24 hours, oldest first.
    pub fixes: Vec<FixRecord>,
    /// The event whose run holds the resource's fix lock, if any (it may have lapsed).
    pub lock_owner: Option<String>,
}

impl ResourceRecord {
    /// The fixes within the budget window before `now`.
    pub fn recent_fixes(&self, now: u64) -> Vec<FixRecord> {
        let since = now.saturating_sub(FIX_WINDOW.as_secs());
        self.fixes
            .iter()
            .filter(|f| f.at > since)
            .cloned()
            .collect()
    }
}

/// Changes to a resource record, applied together with the event's claim.
#[derive(Debug, Clone, Default)]
pub struct ResourceUpdate {
    pub published: Option<Published>,
    /// Replaces the key ARNs (when they changed).
    pub key_arns: Option<BTreeSet<String>>,
    /// Replaces the fix list (recent fixes plus the new one).
    pub fixes: Option<Vec<FixRecord>>,
    pub release_lock: bool,
}

impl ResourceUpdate {
    fn is_empty(&self) -> bool {
        self.published.is_none()
            && self.key_arns.is_none()
            && self.fixes.is_none()
            && !self.release_lock
    }
}

/// Why a fix could not begin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LockError {
    #[error("another invocation is fixing this resource right now")]
    Held,
    #[error("this run no longer holds the event's claim")]
    ClaimLost,
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Whether a run may tell its finding (see [`Entry::reserve_telling`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// The finding is kept in the claim and recorded as the resource's last told state.
    Reserved,
    /// Another run recorded a telling (or took the lock) since this run read the record.
    Raced,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn event_key(check: &str, event_id: &str) -> String {
    format!("event#{check}#{event_id}")
}

fn resource_key(check: &str, arn: &str) -> String {
    format!("resource#{check}#{arn}")
}

type Item = HashMap<String, AttributeValue>;

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl Ledger {
    pub fn new(table: String) -> Self {
        Ledger { table }
    }

    /// One event of one check: what a run claims, records and releases.
    pub fn entry<'a>(
        &'a self,
        ddb: &'a aws_sdk_dynamodb::Client,
        check: &'a str,
        event_id: &'a str,
    ) -> Entry<'a> {
        Entry {
            table: &self.table,
            ddb,
            check,
            event_id,
        }
    }
}

/// The ledger as one run of one event sees it.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    table: &'a str,
    ddb: &'a aws_sdk_dynamodb::Client,
    check: &'a str,
    event_id: &'a str,
}

impl Entry<'_> {
    fn event_key(&self) -> String {
        event_key(self.check, self.event_id)
    }

    /// Claims the event for this run until `until` (the invocation's deadline plus a margin).
    pub async fn claim(&self, until: u64) -> Result<Claim, AwsError> {
        const CALL: &str = "dynamodb:PutItem";
        let now = now_secs();
        let put = self
            .ddb
            .put_item()
            .table_name(self.table)
            .item("id", s(self.event_key()))
            .item("status", s(IN_PROGRESS))
            .item("inProgressUntil", n(until))
            .item("expiration", n(now + REMEMBER_EVENTS.as_secs()))
            // Free, expired, or abandoned by a run that is surely dead.
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now \
                 OR ((#status = :in_progress OR #status = :acting) AND inProgressUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":acting", s(ACTING))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(out) => {
                let old = out.attributes().cloned().unwrap_or_default();
                let interrupted_fix = match text(&old, "status") {
                    Some(ACTING) => Some(text(&old, "plannedKey").unwrap_or("").to_owned()),
                    _ => None,
                };
                Ok(Claim::Fresh { interrupted_fix })
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let item = match e.item() {
                        Some(item) => item.clone(),
                        None => self.read(&self.event_key()).await?,
                    };
                    Ok(existing(&item))
                }
                _ => Err(AwsError::from_sdk(CALL, &err)),
            },
        }
    }

    async fn read(&self, id: &str) -> Result<Item, AwsError> {
        self.ddb
            .get_item()
            .table_name(self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item().cloned().unwrap_or_default())
            .map_err(|e| AwsError::from_sdk("dynamodb:GetItem", &e))
    }

    /// The resource's record (empty when there is none yet).
    pub async fn resource(&self, arn: &str) -> Result<ResourceRecord, AwsError> {
        let item = self.read(&resource_key(self.check, arn)).await?;
        let published = match (
            text(&item, "publishedStatus").and_then(parse_status),
            number(&item, "publishedAt"),
        ) {
            (Some(status), Some(at)) => Some(Published {
                status,
                fingerprint: text(&item, "publishedFingerprint")
                    .unwrap_or_default()
                    .to_owned(),
                at,
                event_id: text(&item, "publishedEvent").unwrap_or_default().to_owned(),
            }),
            _ => None,
        };
        let key_arns = item
            .get("keyArns")
            .and_then(|v| v.as_ss().ok())
            .map(|arns| arns.iter().cloned().collect())
            .unwrap_or_default();
        // A record this version cannot read counts no fixes: better one fix too many than none.
        let fixes = text(&item, "fixes")
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Ok(ResourceRecord {
            published,
            key_arns,
            fixes,
            lock_owner: text(&item, "lockOwner").map(str::to_owned),
        })
    }

    /// Before writing a fix: marks the claim ACTING (with the key being put in place, so a
    /// retry after a crash knows) and takes the resource's lock, in one transaction.
    pub async fn begin_fix(&self, arn: &str, key_arn: &str, until: u64) -> Result<(), LockError> {
        const CALL: &str = "dynamodb:TransactWriteItems";
        let build_error =
            |e: aws_sdk_dynamodb::error::BuildError| AwsError::new(CALL, e.to_string(), false);
        let now = now_secs();
        let claim = Update::builder()
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .update_expression("SET #status = :acting, plannedKey = :key")
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":acting", s(ACTING))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":key", s(key_arn))
            .build()
            .map_err(build_error)?;
        let lock = Update::builder()
            .table_name(self.table)
            .key("id", s(resource_key(self.check, arn)))
            .update_expression("SET lockOwner = :me, lockUntil = :until, expiration = :expiration")
            .condition_expression(
                "attribute_not_exists(lockUntil) OR lockUntil < :now OR lockOwner = :me",
            )
            .expression_attribute_values(":me", s(self.event_id))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expiration", n(now + REMEMBER_RESOURCES.as_secs()))
            .build()
            .map_err(build_error)?;
        let Err(err) = self.transact(claim, lock).await else {
            return Ok(());
        };
        match cancelled(&err).as_slice() {
            [Some("ConditionalCheckFailed"), ..] => Err(LockError::ClaimLost),
            [_, Some("ConditionalCheckFailed")] => Err(LockError::Held),
            // Another request was writing the resource's record at that moment: a run about
            // the same resource, as in reserve_telling.
            codes if codes.contains(&Some("TransactionConflict")) => Err(LockError::Held),
            _ => Err(AwsError::from_sdk(CALL, &err).into()),
        }
    }

    /// The claim's update and the resource's, all or nothing.
    async fn transact(&self, claim: Update, resource: Update) -> Result<(), TransactError> {
        self.ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(claim).build())
            .transact_items(TransactWriteItem::builder().update(resource).build())
            .send()
            .await
            .map(|_| ())
    }

    /// After a fix whose finding could not be published: keeps the finding in the claim (so
    /// the retry publishes it) and records the fix.
    pub async fn keep_unpublished(
        &self,
        finding: &str,
        arn: Option<&str>,
        resource: ResourceUpdate,
    ) -> Result<(), AwsError> {
        let claim = Update::builder()
            .update_expression("SET #status = :acted, finding = :finding")
            .expression_attribute_values(":acted", s(ACTED))
            .expression_attribute_values(":finding", s(finding));
        self.write(claim, arn, resource).await
    }

    /// Before telling a finding: keeps it in the claim (so the retry tells it if the publish
    /// fails) and records it, with the rest of `resource`, as the resource's last told state;
    /// on condition that the record still shows the telling this run read (`expected`). Two
    /// runs that judged one resource at once so tell one alert between them: the later sees
    /// [`Reservation::Raced`], reads the record again and decides again.
    pub async fn reserve_telling(
        &self,
        finding: &str,
        until: u64,
        arn: &str,
        expected: Option<&Published>,
        resource: &ResourceUpdate,
    ) -> Result<Reservation, AwsError> {
        const CALL: &str = "dynamodb:TransactWriteItems";
        let build_error =
            |e: aws_sdk_dynamodb::error::BuildError| AwsError::new(CALL, e.to_string(), false);
        let claim = Update::builder()
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .update_expression(
                "SET #status = :telling, finding = :finding, inProgressUntil = :until",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":telling", s(TELLING))
            .expression_attribute_values(":finding", s(finding))
            .expression_attribute_values(":until", n(until))
            .build()
            .map_err(build_error)?;
        let update = resource_update(
            self.table,
            self.check,
            arn,
            self.event_id,
            resource,
            Some(expected),
        )
        .build()
        .map_err(build_error)?;
        match self.transact(claim, update).await {
            Ok(()) => Ok(Reservation::Reserved),
            // The record changed, or another request met it at that moment.
            Err(err) => match cancelled(&err).as_slice() {
                [_, Some("ConditionalCheckFailed")] => Ok(Reservation::Raced),
                codes if codes.contains(&Some("TransactionConflict")) => Ok(Reservation::Raced),
                _ => Err(AwsError::from_sdk(CALL, &err)),
            },
        }
    }

    /// A reserved finding whose publish failed: kept for the retry at once.
    pub async fn telling_failed(&self) -> Result<(), AwsError> {
        self.ddb
            .update_item()
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .update_expression("SET #status = :acted")
            .condition_expression("#status = :telling")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":acted", s(ACTED))
            .expression_attribute_values(":telling", s(TELLING))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("dynamodb:UpdateItem", &e))
    }

    /// Takes a kept finding to publish it (until `until`): false when another run has it.
    pub async fn take_kept(&self, until: u64) -> Result<bool, AwsError> {
        let taken = self
            .ddb
            .update_item()
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .update_expression("SET #status = :telling, inProgressUntil = :until")
            .condition_expression(
                "#status = :acted OR (#status = :telling AND inProgressUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":telling", s(TELLING))
            .expression_attribute_values(":acted", s(ACTED))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_secs()))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", &e)),
        }
    }

    /// Marks the event handled and applies the resource's changes, together.
    pub async fn complete(
        &self,
        summary: &str,
        arn: Option<&str>,
        resource: ResourceUpdate,
    ) -> Result<(), AwsError> {
        let claim = Update::builder()
            .update_expression("SET #status = :completed, summary = :summary REMOVE finding")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":summary", s(summary));
        self.write(claim, arn, resource).await
    }

    /// The claim's update and, when there is anything to change, the resource's, in one
    /// transaction.
    async fn write(
        &self,
        claim: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        arn: Option<&str>,
        resource: ResourceUpdate,
    ) -> Result<(), AwsError> {
        const CALL: &str = "dynamodb:TransactWriteItems";
        let build_error =
            |e: aws_sdk_dynamodb::error::BuildError| AwsError::new(CALL, e.to_string(), false);
        let claim = claim
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .expression_attribute_names("#status", "status")
            .build()
            .map_err(build_error)?;
        let Some(arn) = arn.filter(|_| !resource.is_empty()) else {
            // The claim alone: one plain write (a transaction costs twice).
            return self
                .ddb
                .update_item()
                .table_name(self.table)
                .key("id", s(self.event_key()))
                .update_expression(claim.update_expression())
                .set_expression_attribute_names(claim.expression_attribute_names().cloned())
                .set_expression_attribute_values(claim.expression_attribute_values().cloned())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("dynamodb:UpdateItem", &e));
        };
        let update = resource_update(self.table, self.check, arn, self.event_id, &resource, None)
            .build()
            .map_err(build_error)?;
        self.transact(claim, update)
            .await
            .map_err(|e| AwsError::from_sdk(CALL, &e))
    }

    /// Gives the event back when nothing was changed, so the Lambda retry handles it afresh;
    /// also frees the resource's lock if this run held it.
    pub async fn release(&self, locked: Option<&str>) -> Result<(), AwsError> {
        self.ddb
            .delete_item()
            .table_name(self.table)
            .key("id", s(self.event_key()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:DeleteItem", &e))?;
        if let Some(arn) = locked {
            self.ddb
                .update_item()
                .table_name(self.table)
                .key("id", s(resource_key(self.check, arn)))
                .update_expression("REMOVE lockOwner, lockUntil")
                .condition_expression("lockOwner = :me")
                .expression_attribute_values(":me", s(self.event_id))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("dynamodb:UpdateItem", &e))?;
        }
        Ok(())
    }
}

/// The update of a resource's record. With `told_before`, only if the last telling recorded
/// is still that one (`Some(None)`: none).
fn resource_update(
    table: &str,
    check: &str,
    arn: &str,
    event_id: &str,
    update: &ResourceUpdate,
    told_before: Option<Option<&Published>>,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let now = now_secs();
    let mut set = vec!["#check = :check", "arn = :arn", "expiration = :expiration"];
    let mut remove = Vec::new();
    let mut values = vec![
        (":check", s(check)),
        (":arn", s(arn)),
        (":expiration", n(now + REMEMBER_RESOURCES.as_secs())),
    ];
    if let Some(p) = &update.published {
        set.extend([
            "publishedStatus = :status",
            "publishedFingerprint = :fingerprint",
            "publishedAt = :at",
            "publishedEvent = :event",
        ]);
        values.extend([
            (":status", s(p.status.as_str())),
            (":fingerprint", s(&p.fingerprint)),
            (":at", n(p.at)),
            (":event", s(&p.event_id)),
        ]);
    }
    if let Some(arns) = &update.key_arns {
        // DynamoDB has no empty sets: no key (AWS-owned) means no attribute.
        if arns.is_empty() {
            remove.push("keyArns");
        } else {
            set.push("keyArns = :keys");
            values.push((":keys", AttributeValue::Ss(arns.iter().cloned().collect())));
        }
    }
    if let Some(fixes) = &update.fixes {
        set.push("fixes = :fixes");
        values.push((
            ":fixes",
            s(serde_json::to_string(fixes).unwrap_or_else(|_| "[]".to_owned())),
        ));
    }
    let mut conditions = Vec::new();
    if update.release_lock {
        remove.extend(["lockOwner", "lockUntil"]);
        // Only this run's lock is released.
        conditions.push("(attribute_not_exists(lockOwner) OR lockOwner = :me)");
        values.push((":me", s(event_id)));
    }
    match told_before {
        None => {}
        Some(None) => conditions.push("attribute_not_exists(publishedAt)"),
        Some(Some(p)) => {
            conditions.push("(publishedEvent = :told_event AND publishedAt = :told_at)");
            values.extend([(":told_event", s(&p.event_id)), (":told_at", n(p.at))]);
        }
    }
    let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    let mut builder = Update::builder()
        .table_name(table)
        .key("id", s(resource_key(check, arn)))
        .update_expression(expression)
        .expression_attribute_names("#check", "check")
        .set_condition_expression(condition);
    for (name, value) in values {
        builder = builder.expression_attribute_values(name, value);
    }
    builder
}

type TransactError = aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>;

/// Why each item of a cancelled transaction failed, in the order sent (empty when it was not
/// cancelled).
fn cancelled(err: &TransactError) -> Vec<Option<&str>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(CancellationReason::code)
            .collect(),
        _ => Vec::new(),
    }
}

fn existing(item: &Item) -> Claim {
    match text(item, "status") {
        Some(COMPLETED) => Claim::Completed {
            summary: text(item, "summary").unwrap_or_default().to_owned(),
        },
        Some(ACTED) => Claim::Unpublished {
            finding: text(item, "finding").unwrap_or_default().to_owned(),
        },
        // Being published; past its run's deadline, left for this one to publish.
        Some(TELLING) if number(item, "inProgressUntil").unwrap_or(0) < now_secs() => {
            Claim::Unpublished {
                finding: text(item, "finding").unwrap_or_default().to_owned(),
            }
        }
        // IN_PROGRESS or ACTING and not yet expired; or gone between the two calls (TTL),
        // which the retry will see as fresh.
        _ => Claim::InProgress {
            until: number(item, "inProgressUntil").unwrap_or(0),
        },
    }
}

fn parse_status(s: &str) -> Option<Status> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}
