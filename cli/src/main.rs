//! `cmk-guard`: runs the reactors locally, against whatever AWS endpoint and credentials the
//! SDK environment names (a real account, or the emulator through AWS_ENDPOINT_URL).

use std::process::ExitCode;

use bedrock_cmk_guard::pipeline::{self, HandlerError, Options};
use bedrock_cmk_guard::settings::Mode;
use bedrock_cmk_guard::{Context, Finding};
use guardrails::Guardrails;
use serde_json::Value;

const USAGE: &str = "\
usage: cmk-guard check --event FILE [--mode off|alert|remediate|dry-run]

Runs the reactor that handles the event (an EventBridge \"AWS API Call via CloudTrail\" event or a
bare CloudTrail record; FILE may be - for standard input) and prints the Finding JSON on stdout.
Logs go to stderr. --mode replaces the account's mode from the settings; without it the settings
parameter named by CONFIG_PARAMETER decides (default: alert).

The environment is the Lambda's: AWS credentials and Region as for any AWS CLI; ALERT_TOPIC_ARN
(publish findings there; unset: print only), CONFIG_PARAMETER, MEMBER_ROLE_NAME, IDEMPOTENCY_TABLE.
Try it on your own account first with --mode dry-run: it says what it would change and changes nothing.

Exit status: 0 a finding was printed; 1 the event could not be handled; 2 usage or unreadable input.";

struct Args {
    event_path: String,
    mode: Option<Mode>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut args = args.iter();
    match args.next().map(String::as_str) {
        Some("check") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let (mut event_path, mut mode) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--event" => event_path = Some(args.next().ok_or("--event needs a file")?.clone()),
            "--mode" => mode = Some(Mode::parse(args.next().ok_or("--mode needs a value")?)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        event_path: event_path.ok_or("--event FILE is required")?,
        mode,
    })
}

fn read_event(path: &str) -> Result<Value, String> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))
}

/// Every reactor the CLI knows; the first that handles the event's name runs it.
async fn run(ctx: &Context, event: &Value, options: &Options) -> Result<Finding, HandlerError> {
    pipeline::handle(&Guardrails, ctx, event, options).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("cmk-guard: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let event = match read_event(&args.event_path) {
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

    let ctx = Context::from_env().await;
    match run(&ctx, &event, &Options { mode: args.mode }).await {
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
