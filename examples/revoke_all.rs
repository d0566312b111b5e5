//! Signs a user out everywhere: revokes every session of USER in a registry database.
//!
//! ```text
//! cargo run --example revoke_all -- --db ./demo-sessions.db alice
//! cargo run --example revoke_all --features postgres -- --db postgres://app@db/app alice
//! ```
//!
//! Servers running on the same registry (the demo, say) refuse those sessions within their
//! registry's propagation bound: `SqliteRegistry`'s poll interval (20 ms by default), or a
//! PostgreSQL notification (milliseconds; at most the staleness bound, 2 s).

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo run --example revoke_all -- --db PATH|postgres://URL USER";

fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, String), String> {
    let (mut db, mut user) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = Some(args.next().ok_or("--db needs a value")?),
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
    let is_url = db.contains("://");
    if !is_url && !Path::new(&db).is_file() {
        eprintln!("revoke_all: no database at {db}");
        return ExitCode::FAILURE;
    }
    let registry = match sealed_sessions::registry::open(&db) {
        Ok(registry) => registry,
        Err(err) => {
            eprintln!("revoke_all: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = registry.revoke_user(&user, None).await;
    // Dropping the last handle stops the registry after its queued work.
    drop(registry);
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
