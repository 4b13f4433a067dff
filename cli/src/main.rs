//! `cmk-guard`: runs the reactors locally, against whatever AWS endpoint and credentials the
//! SDK environment names (a real account, or the emulator through AWS_ENDPOINT_URL).
#![recursion_limit = "256"]

mod doctor;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bedrock_cmk_guard::intake::{self, Envelope, IntakeError};
use bedrock_cmk_guard::pipeline::{self, HandlerError, Options};
use bedrock_cmk_guard::settings::Mode;
use bedrock_cmk_guard::{Context, EventSpec, Finding, Reactor};
use clap::{Parser, Subcommand, ValueEnum};
use data_jobs::DataJobs;
use guardrails::Guardrails;
use invocation_logging::InvocationLogging;
use model_jobs::ModelJobs;
use serde_json::Value;
use tokio::time::Instant;

/// Runs bedrock-cmk-guard's reactors locally.
///
/// The environment is the Lambda's: AWS credentials and Region as for any AWS CLI;
/// ALERT_TOPIC_ARN (publish findings there; unset: print only), CONFIG_PARAMETER,
/// MEMBER_ROLE_NAME, STATE_TABLE (the ledger; unset: each event is judged alone).
#[derive(Debug, Parser)]
#[command(name = "cmk-guard", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_STATUS: &str = "Exit status: 0 a finding was printed (doctor: every check passed); 1 the event could not be handled (doctor: a check did not pass); 2 usage or unreadable input.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reactor that handles an event and print the Finding JSON on stdout (logs go to
    /// stderr). Try it on your own account first with --mode dry-run: it says what it would
    /// change and changes nothing.
    Check {
        /// An EventBridge "AWS API Call via CloudTrail" event or a bare CloudTrail record;
        /// - for standard input.
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        /// Replaces the account's mode from the settings (a broken settings document still
        /// never remediates). Without it the settings decide (default: alert).
        #[arg(long, value_enum)]
        mode: Option<CliMode>,
        /// Handle the event even if the ledger (STATE_TABLE) says it was handled already:
        /// for re-checking after a manual change, or for applying a fix an alert suggested.
        #[arg(long)]
        force: bool,
        /// Seconds the run may take.
        #[arg(long, default_value_t = 120, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Check a deployment, read-only, with your credentials: a trail logging management
    /// events in each watched Region, each function deployed and fed by an enabled rule with
    /// a dead-letter queue, the alert topic on a key whose policy lets the alarms publish,
    /// a confirmed subscription, the settings document valid, and the member role assumable
    /// in each account given. One line per check; exit status 1 when any check did not pass.
    Doctor {
        /// The central stack's name (its functions are <stack>-<function>).
        #[arg(long, default_value = "bedrock-cmk-guard")]
        stack: String,
        /// Regions where a trail must deliver events (comma-separated); default: your Region.
        #[arg(long, value_delimiter = ',', value_name = "REGION")]
        regions: Vec<String>,
        /// Member accounts whose roles the functions assume (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "ACCOUNT")]
        accounts: Vec<String>,
        /// The event bus the rules are on (the stack's EventBusName).
        #[arg(long, default_value = "default")]
        bus: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliMode {
    Off,
    Alert,
    Remediate,
    DryRun,
}

impl From<CliMode> for Mode {
    fn from(mode: CliMode) -> Self {
        match mode {
            CliMode::Off => Mode::Off,
            CliMode::Alert => Mode::Alert,
            CliMode::Remediate => Mode::Remediate,
            CliMode::DryRun => Mode::DryRun,
        }
    }
}

fn read_event(path: &PathBuf) -> Result<Value, String> {
    let name = path.display();
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{name} is not JSON: {e}"))
}

/// Every reactor the CLI knows; the one whose events include the event's call runs it.
async fn run(ctx: &Context, event: &Value, options: &Options) -> Result<Finding, HandlerError> {
    let handles = |specs: &[EventSpec]| {
        intake::identify(event).is_some_and(|(source, name)| {
            specs
                .iter()
                .any(|s| s.event_source == source && s.event_name == name)
        })
    };
    if handles(InvocationLogging::EVENTS) {
        return pipeline::handle(&InvocationLogging::new(), ctx, event, options).await;
    }
    if handles(ModelJobs::EVENTS) {
        return pipeline::handle(&ModelJobs::new(), ctx, event, options).await;
    }
    if handles(DataJobs::EVENTS) {
        return pipeline::handle(&DataJobs::new(), ctx, event, options).await;
    }
    if handles(Guardrails::EVENTS) {
        return pipeline::handle(&Guardrails::new(), ctx, event, options).await;
    }
    // None does: the answer names every event the CLI knows.
    let (event_source, event_name) = intake::identify(event).unwrap_or_default();
    if event_name.is_empty() {
        // Not shaped like an event: intake says why.
        return pipeline::handle(&Guardrails::new(), ctx, event, options).await;
    }
    let handled: Vec<&str> = Guardrails::EVENTS
        .iter()
        .chain(InvocationLogging::EVENTS)
        .chain(ModelJobs::EVENTS)
        .chain(DataJobs::EVENTS)
        .map(|s| s.event_name)
        .collect();
    Err(HandlerError::Intake(IntakeError::Unhandled {
        event_source,
        event_name,
        handled: handled.join(", "),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are answers, not usage errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check {
            event,
            mode,
            force,
            timeout,
        } => check(event, mode, force, timeout).await,
        Command::Doctor {
            stack,
            regions,
            accounts,
            bus,
        } => {
            let target = doctor::Target {
                stack,
                functions: vec![
                    Guardrails::FUNCTION,
                    InvocationLogging::FUNCTION,
                    ModelJobs::FUNCTION,
                    DataJobs::FUNCTION,
                ],
                regions,
                accounts,
                bus,
            };
            doctor(&target).await
        }
    }
}

async fn doctor(target: &doctor::Target) -> ExitCode {
    if let Some(bad) = target
        .accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        eprintln!("cmk-guard: --accounts: {bad:?} is not a 12-digit account id");
        return ExitCode::from(2);
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Ok(name) = aws_config::AppName::new("cmk-guard-doctor") {
        loader = loader.app_name(name);
    }
    let config = loader.load().await;
    let lines = doctor::run(&config, target).await;
    for line in &lines {
        println!("{line}");
    }
    println!("{}", doctor::summary(&lines));
    if doctor::all_ok(&lines) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn check(event: PathBuf, mode: Option<CliMode>, force: bool, timeout: u64) -> ExitCode {
    let event = match read_event(&event) {
        Ok(event) => event,
        Err(message) => {
            eprintln!("cmk-guard: {message}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();

    let budget = Duration::from_secs(timeout.max(1));
    let ctx = Context::from_env(budget, "cli").await;
    let options = Options {
        mode: mode.map(Mode::from),
        envelope: Envelope::Optional,
        deadline: Some(Instant::now() + budget),
        force,
    };
    match run(&ctx, &event, &options).await {
        Ok(finding) => {
            match serde_json::to_string_pretty(&finding) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("cmk-guard: finding not printable: {e}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmk-guard: {e}");
            ExitCode::from(1)
        }
    }
}
