//! The Lambda bootstrap every function shares: JSON logs, clients built once, and a plain
//! async handler per event (the aws-lambda-rust-runtime examples' shape).

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::clients::Context;
use crate::finding::Finding;
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
    let ctx = Context::from_env().await;
    if ctx.env.alert_topic_arn.is_none() {
        return Err("ALERT_TOPIC_ARN is not set: findings would have nowhere to go".into());
    }
    let (ctx, reactor) = (&ctx, &reactor);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_invocation(reactor, ctx, &event).await
    }))
    .await
}

async fn handle_invocation<R: Reactor>(
    reactor: &R,
    ctx: &Context,
    event: &LambdaEvent<Value>,
) -> Result<Finding, HandlerError> {
    // arn:aws:lambda:<region>:<account>:function:<name>: our own account, without an STS call.
    if let Some(account) = event.context.invoked_function_arn.split(':').nth(4) {
        ctx.set_home_account(account);
    }
    let result = pipeline::handle(reactor, ctx, &event.payload, &Options::default()).await;
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
            HandlerError::Publish { .. } => "PublishFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
