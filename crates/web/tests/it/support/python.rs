//! The Python helpers beside this file (verifiers and the SMTP sink): where
//! they are, whether the packages they need are installed, and running a
//! verifier over one JSON line per request.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The script `name` beside this file.
pub fn python_script(name: &str) -> String {
    format!("{}/tests/it/support/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether Python 3 imports `packages` (comma-separated) here; when it does
/// not, the caller skips (and under `CI=true` fails) for want of `missing`.
pub fn python_has(packages: &str, missing: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {packages}")])
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        ordertrack_store::testing::skip(missing);
    }
    found
}

/// Runs the verifier `script` with one JSON line per request on its input:
/// for each line, the `payload` of an `ok` answer, else the answer's
/// `error`.
pub fn run_verifier(script: &str, lines: &[Value]) -> Vec<Result<Value, String>> {
    let mut child = Command::new("python3")
        .arg(python_script(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the verifier");
    {
        let mut stdin = child.stdin.take().expect("the verifier's stdin");
        for line in lines {
            writeln!(stdin, "{line}").expect("write to the verifier");
        }
    }
    let output = child.wait_with_output().expect("the verifier's answer");
    assert!(output.status.success(), "the verifier failed: {output:?}");
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON answer"))
        .collect();
    assert_eq!(answers.len(), lines.len(), "one answer per request");
    answers
        .into_iter()
        .map(|answer| match answer["ok"].as_bool() {
            Some(true) => Ok(answer["payload"].clone()),
            _ => Err(answer["error"].as_str().unwrap_or("?").to_owned()),
        })
        .collect()
}
