//! Running the built `sealed-sessions` binary as an operator would, and reading what it said.
#![allow(dead_code)] // each test file uses a different part

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs the tool with `args`, no registry or key from the environment, no terminal.
pub fn tool(args: &[&str]) -> Output {
    tool_in(Path::new("."), args)
}

/// [`tool`] with `dir` as the working directory, to see what it creates there.
pub fn tool_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealed-sessions"))
        .args(args)
        .current_dir(dir)
        .env_remove("SEALED_SESSIONS_DB")
        .env_remove("SESSION_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
