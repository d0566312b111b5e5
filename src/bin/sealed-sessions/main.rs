//! `sealed-sessions`: the operator's tool for session keys, cookies and registries.
//!
//! `cargo install sealed-sessions --features cli`. A `--db` (or `SEALED_SESSIONS_DB`) that is a
//! file path (or `sqlite://PATH`) means an SQLite registry; a `postgres://` URL or libpq's
//! `key=value` pairs mean PostgreSQL; anything else that looks like a connection string is
//! refused, never taken for a file name ([`Location::parse`]). Revocations made here reach
//! running servers as the library's own do: within the SQLite poll interval, or by PostgreSQL
//! notification.
//!
//! Commands that only read open an SQLite registry read-only, and no command but `migrate`
//! creates or changes a schema: a file that is not a registry is left as it was.
//!
//! Exit codes: 0 done; 1 nothing matched (no such session, no sessions, a cookie that does not
//! open, a check that found problems); 2 bad input (arguments, keys, cookies, ids, a path with
//! no registry, a file that is not one, a connection string that is not one); 3 the database
//! cannot be reached or used (refused, timed out, busy, read-only, corrupt).
//!
//! Text output escapes control characters (see `output::escape`), so that a string an
//! application recorded (a user agent, a user id, a data key) cannot drive the terminal.

mod bulk;
mod commands;
mod db;
mod output;
mod time_arg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sealed_sessions::registry::{Location, RegistryError};

/// Session keys, cookies and registries of sealed-sessions, for operators.
#[derive(Parser, Debug)]
#[command(name = "sealed-sessions", version, long_about = None)]
#[command(after_help = "\
Exit codes: 0 done, 1 nothing matched, 2 bad input, 3 the database cannot be reached or used.
A --db path (or sqlite://PATH) means SQLite; postgres://user@host:port/db[?schema=NAME]
or libpq's key=value pairs (host=... dbname=...) mean PostgreSQL.")]
pub struct Cli {
    /// The registry: an SQLite file, or a PostgreSQL URL or key=value string.
    #[arg(
        long,
        global = true,
        env = "SEALED_SESSIONS_DB",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    db: Option<String>,
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make a new session key: prints it (base64) and its key id.
    Keygen,
    /// Print the key id of KEY, to match cookies (whose headers carry it) with keys.
    KeyId {
        /// The key, base64 (32 bytes).
        #[arg(env = "SESSION_KEY", hide_env_values = true)]
        key: String,
    },
    /// Open a cookie value with the key and print its claims, for support work.
    Inspect {
        /// The cookie's value (without the `name=`).
        cookie: String,
        /// The key, base64; SESSION_KEY keeps it out of the shell's history.
        #[arg(long, env = "SESSION_KEY", hide_env_values = true)]
        key: String,
        /// The cookie's name, which the seal is bound to [default: from a pasted NAME=VALUE,
        /// else __Host-session, __Secure-session and session in turn].
        #[arg(long)]
        name: Option<String>,
    },
    /// List a user's active sessions.
    List {
        /// The user id.
        user: String,
    },
    /// Revoke sessions: a user's (all, or all but one), everyone's, or those signed in before a time
    Revoke {
        /// The user id (none with --all-users).
        #[arg(required_unless_present = "all_users", conflicts_with = "all_users")]
        user: Option<String>,
        /// Every session of every user (after a breach, a leaked key, a changed policy). Needs
        /// --yes.
        #[arg(long)]
        all_users: bool,
        /// Only the sessions signed in before TIME (RFC 3339, 2026-12-01T00:00:00Z; not in the
        /// future), of USER or of every user. Needs --yes.
        #[arg(long, value_name = "TIME", value_parser = time_arg::parse_rfc3339)]
        signed_in_before: Option<std::time::SystemTime>,
        /// Keep this session (an id from `list`).
        #[arg(
            long,
            value_name = "ID",
            allow_hyphen_values = true,
            conflicts_with_all = ["all_users", "signed_in_before"]
        )]
        except: Option<String>,
        /// Do not ask before revoking every session of the user; --all-users and
        /// --signed-in-before never ask, they need it.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Revoke one session, whoever's it is.
    RevokeSession {
        /// The session id (from `list`, or a cookie's `inspect`).
        // Base64url: one id in 64 starts with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Forget a user: end their sessions on every host and delete their rows (addresses, agents)
    ForgetUser {
        /// The user id.
        user: String,
        /// Confirm: there is no undo (never asked; required).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Delete expired sessions (and their revocation records); prints how many.
    Cleanup,
    /// Figures: active sessions and users, recent revocations, the oldest session, sizes.
    Stats,
    /// Check the schema version and the database's integrity.
    Check,
    /// Create or upgrade the registry's schema (for migrations as a deploy step).
    Migrate,
}

/// Why a command did not succeed, with its exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Nothing matched (exit 1).
    pub fn nothing(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Bad input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A registry error, as a sentence naming the database, with the exit code it deserves.
    pub fn registry(db: Location<'_>, e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::MissingDirectory(_)
            | RegistryError::NotADatabase(_)
            | RegistryError::MissingTable { .. }
            | RegistryError::NotARegistry(_)
            | RegistryError::SchemaTooOld { .. }
            | RegistryError::SchemaTooNew { .. }
            | RegistryError::InvalidConfig(_) => 2,
            _ => 3,
        };
        let message = match &e {
            RegistryError::MissingTable { .. } | RegistryError::NotARegistry(_) => {
                format!("{db}: not a registry (`sealed-sessions migrate` creates one): {e}")
            }
            _ => format!("registry {db}: {e}"),
        };
        Failure { code, message }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sealed-sessions: cannot start: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sealed-sessions: {}", output::escape(&failure.message));
            ExitCode::from(failure.code)
        }
    }
}
