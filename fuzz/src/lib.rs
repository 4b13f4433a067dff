//! What the fuzz target does with one input, shared by the AFL++ target (`intake`) and the
//! replay tool (`replay`), which prints the outcome of each file it is given.
//!
//! The input is the bytes the Lambda runtime receives: `serde_json::from_slice` into a
//! `Value`, as the runtime does (a refusal there is an answer, not a failure), then every
//! reactor's intake with the envelope required (the Lambda) and optional (the CLI), and
//! `identify` (the CLI's choice of reactor). A panic anywhere is a crash; so is a broken
//! invariant below.

use bedrock_cmk_guard::intake::{self, Envelope, Intake, IntakeError};
use bedrock_cmk_guard::{EventSpec, Reactor};
use serde_json::Value;

/// Every reactor's name and the events it handles.
pub const REACTORS: [(&str, &[EventSpec]); 4] = [
    ("guardrails", <guardrails::Guardrails as Reactor>::EVENTS),
    (
        "invocation-logging",
        <invocation_logging::InvocationLogging as Reactor>::EVENTS,
    ),
    ("model-jobs", <model_jobs::ModelJobs as Reactor>::EVENTS),
    ("data-jobs", <data_jobs::DataJobs as Reactor>::EVENTS),
];

/// What one input came to.
#[derive(Debug)]
pub enum Outcome {
    /// `serde_json::from_slice` refused the bytes (what the runtime answers).
    NotJson(serde_json::Error),
    Parsed {
        identify: Option<(String, String)>,
        /// Per reactor: (name, with the envelope required, with it optional).
        intake: Vec<(&'static str, Result<Intake, IntakeError>, Result<Intake, IntakeError>)>,
    },
}

/// Runs one input through the parser; panics on a broken invariant.
pub fn run(data: &[u8]) -> Outcome {
    let value: Value = match serde_json::from_slice(data) {
        Ok(value) => value,
        Err(e) => return Outcome::NotJson(e),
    };
    let identify = intake::identify(&value);
    let mut results = Vec::with_capacity(REACTORS.len());
    for (name, specs) in REACTORS {
        let required = intake::parse(&value, specs, Envelope::Required);
        let optional = intake::parse(&value, specs, Envelope::Optional);
        check(&identify, &required, &optional);
        // Every refusal is told in words: formatting must not panic either.
        for result in [&required, &optional] {
            if let Err(e) = result {
                std::hint::black_box(e.to_string());
            }
        }
        results.push((name, required, optional));
    }
    Outcome::Parsed {
        identify,
        intake: results,
    }
}

/// What intake promises whatever the input:
/// - the Lambda's rule differs from the CLI's only by refusing a bare record;
/// - an accepted event is the call that `identify` names.
fn check(
    identify: &Option<(String, String)>,
    required: &Result<Intake, IntakeError>,
    optional: &Result<Intake, IntakeError>,
) {
    if required != &Err(IntakeError::BareRecord) {
        assert_eq!(
            required, optional,
            "Envelope::Required and Envelope::Optional disagree on an enveloped event"
        );
    }
    if let Ok(Intake::Check(trigger)) = optional {
        let call = &trigger.call;
        assert_eq!(
            identify.as_ref(),
            Some(&(call.event_source.clone(), call.event_name.clone())),
            "identify names another call than parse accepted"
        );
    }
    if let Ok(Intake::Ignored { call, .. }) = optional {
        assert_eq!(
            identify.as_ref(),
            Some(&(call.event_source.clone(), call.event_name.clone())),
            "identify names another call than parse ignored"
        );
    }
}
