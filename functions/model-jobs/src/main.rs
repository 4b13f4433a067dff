//! The model-jobs Lambda: bootstrap only; the reactor is in lib.rs.
// The handler's future nests the SDK's futures deeply; laying it out needs more than rustc's
// default query depth in release builds.
#![recursion_limit = "256"]

use bedrock_cmk_guard::lambda;
use model_jobs::ModelJobs;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::serve(ModelJobs::new()).await
}
