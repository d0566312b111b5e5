//! Signs a user out everywhere: revokes every session of USER in a registry database.
//!
//! ```text
//! cargo run --example revoke_all -- --db ./demo-sessions.db alice
//! ```
//!
//! A server running on the same database (the demo, say) refuses those sessions within its
//! registry's propagation bound (`SqliteRegistry`'s poll interval, 20 ms by default).

use std::path::PathBuf;
use std::process::ExitCode;

use sealed_sessions::registry::{Registry, SqliteRegistry};

const USAGE: &str = "usage: cargo run --example revoke_all -- --db PATH USER";

fn parse(mut args: impl Iterator<Item = String>) -> Result<(PathBuf, String), String> {
    let (mut db, mut user) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = Some(args.next().ok_or("--db needs a value")?.into()),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            _ if user.is_none() => user = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    match (db, user) {
        (Some(db), Some(user)) => Ok((db, user)),
        (None, _) => Err("--db PATH is required".into()),
        (_, None) => Err("USER is required".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (db, user) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("revoke_all: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Opening would create an empty database; a typo in the path must not look like success.
    if !db.is_file() {
        eprintln!("revoke_all: no database at {}", db.display());
        return ExitCode::FAILURE;
    }
    let registry = match SqliteRegistry::builder(&db)
        .cleanup_interval(std::time::Duration::ZERO)
        .open()
    {
        Ok(registry) => registry,
        Err(err) => {
            eprintln!("revoke_all: {}: {err}", db.display());
            return ExitCode::FAILURE;
        }
    };
    let result = registry.revoke_user(&user, None).await;
    registry.stop();
    match result {
        Ok(n) => {
            println!(
                "revoked {n} session{} of {user}",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("revoke_all: {err}");
            ExitCode::FAILURE
        }
    }
}
