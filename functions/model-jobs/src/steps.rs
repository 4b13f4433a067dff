//! What a person does when a model is being made, or was made, without an allowed CMK: a
//! model's key cannot be changed, so it is made again with one, and the old one goes.

use bedrock_cmk_guard::jobs::text;

use crate::{JobState, Kind};

/// The steps for this job or model: `running` says whether the job still runs (after the
/// guard stopped it, it does not).
pub fn manual(state: &JobState, running: bool) -> Vec<String> {
    let region = region(&state.arn);
    let name = state.name();
    let raw = &state.raw;
    let model_arn = state
        .model
        .as_ref()
        .and_then(|m| text(m, "/modelArn"))
        .map(str::to_owned);
    let mut steps = Vec::new();
    match state.kind {
        Kind::Customization => {
            if running {
                steps.push(format!(
                    "Stop the job before it makes a model on the wrong key: aws bedrock stop-model-customization-job --region {region} --job-identifier {}",
                    state.arn
                ));
            }
            steps.push(format!(
                "Run it again with a customer-managed key: aws bedrock create-model-customization-job --region {region} --job-name <new name> --custom-model-name <new model name> --base-model-identifier {} --role-arn {} --custom-model-kms-key-id <CMK ARN>, with the same training data, output and hyperparameters (aws bedrock get-model-customization-job --job-identifier {} shows them).",
                text(raw, "/baseModelArn").unwrap_or("<base model>"),
                text(raw, "/roleArn").unwrap_or("<role>"),
                state.arn
            ));
        }
        Kind::CustomModel => steps.push(format!(
            "Create the model again with a customer-managed key: aws bedrock create-custom-model --region {region} --model-name <new name> --model-source-config <the same source> --role-arn {} --model-kms-key-arn <CMK ARN>.",
            text(raw, "/roleArn").unwrap_or("<role>")
        )),
        Kind::Import => steps.push(format!(
            "Import the model again with a customer-managed key: aws bedrock create-model-import-job --region {region} --job-name <new name> --imported-model-name <new model name> --role-arn {} --model-data-source <the same source> --imported-model-kms-key-id <CMK ARN>.",
            text(raw, "/roleArn").unwrap_or("<role>")
        )),
        Kind::Copy => steps.push(format!(
            "Copy the model again with a customer-managed key: aws bedrock create-model-copy-job --region {region} --source-model-arn {} --target-model-name <new name> --model-kms-key-id <CMK ARN>.",
            text(raw, "/sourceModelArn").unwrap_or("<source model>")
        )),
    }
    let old = match (state.kind, model_arn) {
        (Kind::CustomModel, _) => Some(state.arn.clone()),
        (_, Some(arn)) => Some(arn),
        _ => None,
    };
    match (state.kind, old) {
        (Kind::Import, Some(arn)) => steps.push(format!(
            "Move every application to the new model, then delete this one: aws bedrock delete-imported-model --region {region} --model-identifier {arn}"
        )),
        (_, Some(arn)) => steps.push(format!(
            "Move every application (provisioned throughput, deployments) to the new model, then delete this one: aws bedrock delete-custom-model --region {region} --model-identifier {arn}"
        )),
        (_, None) if !running => {}
        (_, None) => steps.push(format!(
            "When {name} has made its model, delete that model once the new one is in use."
        )),
    }
    steps
}

/// What is left after the guard stopped the job and submitted it again: the one thing a
/// job's answer does not show, the tags it was to give its model.
pub fn after_resubmission(state: &JobState) -> Vec<String> {
    vec![format!(
        "If {} was to tag its model (customModelTags, which a job's answer does not show), tag the new job's model the same way once it exists: aws bedrock tag-resource --region {} --resource-arn <new model ARN> --tags key=...,value=...",
        state.name(),
        region(&state.arn)
    )]
}

fn region(arn: &str) -> &str {
    bedrock_cmk_guard::jobs::ResourceArn::parse(arn)
        .map(|a| a.region)
        .unwrap_or("<region>")
}
