//! Start-up: command-line flags and the session key (environment, key file, or a new one).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use sealed_sessions::Key;

pub const USAGE: &str = "\
usage: cargo run --example demo -- [--addr HOST:PORT] [--db PATH] [--key-file PATH]

  --addr      where to listen              (default 127.0.0.1:3000)
  --db        the SQLite session registry  (default ./demo-sessions.db)
  --key-file  the session key, base64      (default ./demo-session.key; made on first run)

The environment variable SESSION_KEY (base64) wins over the key file.";

pub struct Args {
    pub addr: SocketAddr,
    pub db: PathBuf,
    pub key_file: PathBuf,
}

impl Args {
    /// Parses `--flag value` pairs; anything else is an error that names the culprit.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            db: PathBuf::from("demo-sessions.db"),
            key_file: PathBuf::from("demo-session.key"),
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
                "--db" => parsed.db = value.into(),
                "--key-file" => parsed.key_file = value.into(),
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        Ok(parsed)
    }
}

/// Where the key came from, for the start-up message.
pub enum KeySource {
    Environment,
    File,
    NewFile,
}

/// `SESSION_KEY` if set, else the key file, else a new key written to the key file (mode 0600).
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
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(key_file)
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
