//! Prints what each given file comes to through the fuzz target's code (without AFL++): for
//! checking what a seed exercises, and for reading a crash (the panic is printed as usual).

use cmk_guard_fuzz::{run, Outcome};

fn main() {
    let mut failed = false;
    for path in std::env::args_os().skip(1) {
        let shown = path.to_string_lossy().into_owned();
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) => {
                eprintln!("{shown}: {e}");
                failed = true;
                continue;
            }
        };
        match run(&data) {
            Outcome::NotJson(e) => println!("{shown} ({} bytes): not JSON: {e}", data.len()),
            Outcome::Parsed { identify, intake } => {
                println!("{shown} ({} bytes): identify {identify:?}", data.len());
                for (reactor, required, optional) in intake {
                    println!("  {reactor}: required: {}", brief(&required));
                    if required != optional {
                        println!("  {reactor}: optional: {}", brief(&optional));
                    }
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn brief(
    result: &Result<bedrock_cmk_guard::intake::Intake, bedrock_cmk_guard::intake::IntakeError>,
) -> String {
    let text = match result {
        Ok(intake) => format!("{intake:?}"),
        Err(e) => format!("error: {e}"),
    };
    // A 1 MB field is not worth printing whole.
    if text.len() > 300 {
        let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        format!("{}... ({} chars)", &text[..cut], text.len())
    } else {
        text
    }
}
