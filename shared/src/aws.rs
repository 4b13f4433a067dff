//! AWS call failures, sorted once for every reactor: a failure that may pass by itself
//! (throttling, 5xx, timeouts, a resource busy with another change) is retried through the
//! Lambda error path; anything else (AccessDenied, validation, ...) is final and reported.

use std::error::Error;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Codes that mean "busy with another change; try again" rather than "refused".
const BUSY_ERRORS: &[&str] = &["ConflictException", "ResourceInUseException"];

/// One failed AWS call, in words, and whether trying again later may succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{call} failed: {message}")]
pub struct AwsError {
    /// `service:Operation`, as IAM names it.
    pub call: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl AwsError {
    pub fn new(call: &'static str, message: impl Into<String>, retryable: bool) -> Self {
        AwsError {
            call,
            message: message.into(),
            retryable,
        }
    }

    /// Sorts an SDK error: throttling, 5xx, timeouts, I/O and busy codes are retryable.
    pub fn from_sdk<E>(call: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let (message, retryable) = match err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("error");
                let status = service.raw().status().as_u16();
                let retryable = status >= 500
                    || status == 429
                    || THROTTLING_ERRORS.contains(&code)
                    || TRANSIENT_ERRORS.contains(&code)
                    || BUSY_ERRORS.contains(&code);
                (
                    format!(
                        "{code}: {}",
                        service.err().message().unwrap_or("no message")
                    ),
                    retryable,
                )
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (DisplayErrorContext(err).to_string(), true),
            // A request we could not even build: trying again builds the same request.
            _ => (DisplayErrorContext(err).to_string(), false),
        };
        AwsError {
            call,
            message,
            retryable,
        }
    }

    /// The error code of a service error, if the SDK error is one.
    pub fn code_of<E>(err: &SdkError<E, HttpResponse>) -> Option<&str>
    where
        E: ProvideErrorMetadata,
    {
        err.as_service_error().and_then(|e| e.code())
    }
}
