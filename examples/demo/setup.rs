//! Start-up: command-line flags and the session key (environment, key file, or a new one).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sealed_sessions::registry::{self, Location, Registry};
use sealed_sessions::Key;

pub const USAGE: &str = "\
usage: cargo run --example demo -- [--addr HOST:PORT] [--db PATH|URL] [--key-file PATH]
                                   [--account-failures N] [--address-failures N]
                                   [--account-total-failures N] [--reauthenticate-after SECS]

  --addr              where to listen              (default 127.0.0.1:3000)
  --db                the session registry: an SQLite file (default ./demo-sessions.db, made
                      0600), or postgres://user@host:port/db (run with --features postgres)
  --key-file          the session key, base64      (default ./demo-session.key; made 0600)
  --account-failures  failed sign-ins to one account from one address, in 15 minutes, that
                      pause that address's sign-ins to it                             (default 5)
  --address-failures  failed sign-ins from one address, to any accounts, that pause it (default 20)
  --account-total-failures
                      failed sign-ins to one account from all addresses together that pause its
                      sign-ins from addresses it never signed in from                (default 20)
  --reauthenticate-after
                      seconds after signing in (or confirming the password) that signing
                      other devices out asks for the password again           (default 1200)

A paused sign-in is answered 429 with Retry-After, even for the right password. An address the
account signed in from before is never paused by failures made elsewhere, and by its own only
for 15 minutes divided by --account-failures (3 minutes by default): no one can lock the owner
out where they usually sign in. Sign-ins from such addresses also go first for a password check.
The environment variable SESSION_KEY (base64) wins over the key file.";

pub struct Args {
    pub addr: SocketAddr,
    pub db: String,
    pub key_file: PathBuf,
    pub account_failures: u32,
    pub address_failures: u32,
    pub account_total_failures: u32,
    /// The sudo-mode window.
    pub reauthenticate_after: Duration,
    /// For tests only (not in `--help`; `clock.rs`, `docs/demo.md`): a file whose whole number
    /// of seconds, read on every request, moves the session clock forward.
    pub clock_offset_file: Option<PathBuf>,
}

impl Args {
    /// Parses `--flag value` pairs; anything else is an error that names the culprit.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            db: "demo-sessions.db".to_owned(),
            key_file: PathBuf::from("demo-session.key"),
            account_failures: 5,
            // Above the account limit, so that one person's typos do not pause everyone
            // behind the same address.
            address_failures: 20,
            // Pauses only addresses the account never signed in from; above the limit for one
            // address, so that the owner's own typos on a new device do not trip it.
            account_total_failures: 20,
            // Phoenix's sudo mode: long enough for one sitting's settings, short enough that a
            // browser left signed in is asked again.
            reauthenticate_after: Duration::from_secs(20 * 60),
            clock_offset_file: None,
        };
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => {
                    parsed.addr = value
                        .parse()
                        .map_err(|_| format!("--addr {value:?} is not HOST:PORT"))?;
                }
                "--db" => parsed.db = value,
                "--key-file" => parsed.key_file = value.into(),
                "--account-failures" => parsed.account_failures = count(&flag, &value)?,
                "--address-failures" => parsed.address_failures = count(&flag, &value)?,
                "--account-total-failures" => {
                    parsed.account_total_failures = count(&flag, &value)?;
                }
                "--reauthenticate-after" => {
                    parsed.reauthenticate_after = Duration::from_secs(count(&flag, &value)?.into());
                }
                "--clock-offset-file" => parsed.clock_offset_file = Some(value.into()),
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        Ok(parsed)
    }
}

fn count(flag: &str, value: &str) -> Result<u32, String> {
    match value.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {value:?} is not a positive whole number")),
    }
}

/// Where the key came from, for the start-up message.
pub enum KeySource {
    Environment,
    File,
    NewFile,
}

/// `SESSION_KEY` if set, else the key file, else a new key written to a new key file (mode 0600).
pub fn load_key(key_file: &Path) -> Result<(Key, KeySource), String> {
    if let Ok(text) = std::env::var("SESSION_KEY") {
        let key = Key::from_base64(&text).map_err(|e| format!("SESSION_KEY: {e}"))?;
        return Ok((key, KeySource::Environment));
    }
    match std::fs::read_to_string(key_file) {
        Ok(text) => {
            let key = Key::from_base64(&text)
                .map_err(|e| format!("key file {}: {e}", key_file.display()))?;
            Ok((key, KeySource::File))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            let mut file = create_private(key_file)
                .map_err(|e| format!("cannot create key file {}: {e}", key_file.display()))?;
            writeln!(file, "{}", key.to_base64())
                .map_err(|e| format!("cannot write key file {}: {e}", key_file.display()))?;
            Ok((key, KeySource::NewFile))
        }
        Err(err) => Err(format!(
            "cannot read key file {}: {err}",
            key_file.display()
        )),
    }
}

/// Opens the session registry `db` names: a PostgreSQL URL, or an SQLite file (created 0600
/// first if it is new).
pub fn open_registry(db: &str) -> Result<Arc<dyn Registry>, String> {
    if let Location::Sqlite(path) = Location::of(db) {
        create_db_file(path)?;
    }
    registry::open(db).map_err(|e| format!("session registry {}: {e}", Location::of(db)))
}

/// Creates the registry's database file readable by its owner only, if it does not exist yet:
/// it holds the addresses and browsers of everyone signed in. SQLite gives its -wal and -shm the
/// database file's mode, and takes an empty file as an empty database. An existing file keeps
/// the mode its owner chose.
pub fn create_db_file(db: &Path) -> Result<(), String> {
    match create_private(db) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(format!(
            "cannot create session registry {}: {err}",
            db.display()
        )),
    }
}

/// A new file with mode 0600 on Unix. The mode only applies to a file being created, so
/// `create_new` makes an existing file an error instead of a silently readable one.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)
}
