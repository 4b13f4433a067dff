//! The guardrails Lambda: bootstrap only; the reactor is in lib.rs.

use bedrock_cmk_guard::lambda;
use guardrails::Guardrails;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve(Guardrails).await
}
