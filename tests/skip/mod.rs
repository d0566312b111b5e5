//! Saying that a test skipped where `cargo test` shows it: the harness captures a passing
//! test's `eprintln!`, so a skip would read as a pass. The line goes to the process's standard
//! error directly instead, and shows up in the normal output (and in CI's log).

use std::io::Write;

/// Prints `SKIPPED <test>: reason` past the harness's capture; the test is named by its thread,
/// which the harness names after the test.
pub fn skipped(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("SKIPPED {test}: {reason}");
    match std::fs::OpenOptions::new().write(true).open("/dev/stderr") {
        Ok(mut stderr) => {
            let _ = writeln!(stderr, "{line}");
        }
        Err(_) => eprintln!("{line}"),
    }
}
