//! The Lambda bootstrap every function shares: JSON logs, clients built once, and a plain
//! async handler per event (the aws-lambda-rust-runtime examples' shape).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::clients::{Context, Env, Home};
use crate::finding::Finding;
use crate::intake::Envelope;
use crate::pipeline::{self, HandlerError, Options};
use crate::reactor::Reactor;

/// JSON lines on stderr-less stdout, as CloudWatch Logs wants them; `RUST_LOG` filters.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Runs `reactor` as a Lambda function until the runtime stops it.
pub async fn serve<R: Reactor>(reactor: R) -> Result<(), lambda_runtime::Error> {
    init_logging();
    if Env::from_process().alert_topic_arn.is_none() {
        return Err("ALERT_TOPIC_ARN is not set: findings would have nowhere to go".into());
    }
    // Built by the first event, whose deadline sets the SDK's timeouts (every invocation of
    // a function has the same time limit); nothing is done at start that it does not need.
    let ctx = OnceCell::new();
    let (ctx, reactor) = (&ctx, &reactor);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline_of(&event);
        let ctx = ctx
            .get_or_init(|| {
                Context::from_env(
                    deadline.saturating_duration_since(Instant::now()),
                    R::FUNCTION,
                )
            })
            .await;
        handle_invocation(reactor, ctx, &event, deadline).await
    }))
    .await
}

/// The invocation's deadline (the runtime gives epoch milliseconds) as a monotonic instant.
fn deadline_of(event: &LambdaEvent<Value>) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = event.context.deadline.saturating_sub(now_ms);
    // A runtime that says nothing useful gets the CLI's budget rather than none at all.
    let left = if left == 0 {
        pipeline::DEFAULT_BUDGET
    } else {
        Duration::from_millis(left)
    };
    Instant::now() + left
}

async fn handle_invocation<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    event: &LambdaEvent<Value>,
    deadline: Instant,
) -> Result<Finding, HandlerError> {
    // arn:<partition>:lambda:<region>:<account>:function:<name>: our own account and
    // partition, without an STS call.
    if let Some(home) = Home::from_arn(&event.context.invoked_function_arn) {
        ctx.set_home(home);
    }
    let options = Options {
        envelope: Envelope::Required,
        deadline: Some(deadline),
        ..Options::default()
    };
    let result = pipeline::handle(reactor, ctx, &event.payload, &options).await;
    match &result {
        // One JSON line per finding, the finding as an object (not an escaped string), so
        // CloudWatch Logs Insights can query its fields directly.
        Ok(finding) => println!(
            "{}",
            serde_json::json!({"level": "INFO", "message": "finding", "requestId": event.context.request_id, "finding": finding})
        ),
        Err(e) => tracing::error!(error = %e, "event not handled"),
    }
    result
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        let error_type = match &error {
            HandlerError::Intake(_) => "BadEvent",
            HandlerError::InProgress(_) => "EventInProgress",
            HandlerError::Retry { .. } => "RetryLater",
            HandlerError::Publish { .. } => "PublishFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
