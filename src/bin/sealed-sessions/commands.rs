//! What each subcommand does.

use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use base64_simd::URL_SAFE_NO_PAD;
use sealed_sessions::registry::{Location, SessionInfo};
use sealed_sessions::{Key, KeyRing, Mode, Sealer, SessionId};
use serde_json::{json, Value};

use crate::bulk::{self, Scope};
use crate::db::{Access, Db};
use crate::output::{self, escape, when};
use crate::{Cli, Command, Failure};

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    let now = SystemTime::now();
    // Checked before anything opens, so that no connection string becomes a file's name.
    let database = || {
        let db = cli.db.as_deref().ok_or_else(|| {
            Failure::input("which registry? Give --db PATH|URL or set SEALED_SESSIONS_DB")
        })?;
        Location::parse(db).map_err(|e| match Location::of(db) {
            // Shown without its password, as far as it parses.
            shown @ Location::Postgres(_) => Failure::input(format!("--db {shown}: {e}")),
            // Perhaps not ours to show at all (`mysql://user:password@...`).
            _ => Failure::input(format!("--db: {e}")),
        })
    };
    match cli.command {
        Command::Keygen => {
            let key = Key::generate();
            print(
                json,
                json!({ "key": key.to_base64(), "key_id": key.id().to_string() }),
                || {
                    println!("{}", key.to_base64());
                    eprintln!(
                        "key id {} (public: every cookie this key seals carries it)",
                        key.id()
                    );
                },
            );
            Ok(())
        }
        Command::KeyId { key } => {
            let key = parse_key(&key)?;
            print(json, json!({ "key_id": key.id().to_string() }), || {
                println!("{}", key.id())
            });
            Ok(())
        }
        Command::Inspect { cookie, key, name } => {
            inspect(json, &cookie, &key, name.as_deref(), now)
        }
        Command::Migrate => {
            let db = database()?;
            let opened = Db::open(db, Access::Create)?;
            let check = opened.check().await.map_err(|e| Failure::registry(db, e))?;
            print(
                json,
                json!({ "database": db.to_string(), "backend": opened.backend(),
                        "schema_version": check.schema_version }),
                || {
                    println!(
                        "{} is ready: schema version {}",
                        escape(&db.to_string()),
                        check.schema_version
                    )
                },
            );
            Ok(())
        }
        command => {
            let db = database()?;
            let access = match command {
                Command::List { .. } | Command::Stats | Command::Check => Access::Read,
                _ => Access::Write,
            };
            let opened = Db::open(db, access)?;
            let result = on_registry(json, db, &opened, command, now).await;
            // Stops the registry's threads after its queued work (last-seen updates, none here).
            drop(opened);
            result
        }
    }
}

async fn on_registry(
    json: bool,
    db: Location<'_>,
    opened: &Db,
    command: Command,
    now: SystemTime,
) -> Result<(), Failure> {
    let failed = |e| Failure::registry(db, e);
    let registry = opened.registry();
    match command {
        Command::List { user } => {
            let list = registry.list_for_user(&user, now).await.map_err(failed)?;
            print(
                json,
                Value::Array(list.iter().map(session_json).collect()),
                || {
                    if list.is_empty() {
                        return;
                    }
                    let rows: Vec<Vec<String>> = list.iter().map(|s| session_row(s, now)).collect();
                    output::table(
                        &["ID", "CREATED", "LAST SEEN", "EXPIRES", "ADDRESS", "AGENT"],
                        &rows,
                    );
                },
            );
            if list.is_empty() {
                return Err(Failure::nothing(format!("{user} has no active session")));
            }
            Ok(())
        }
        Command::Revoke {
            user,
            all_users,
            signed_in_before,
            except,
            yes,
        } => {
            if all_users || signed_in_before.is_some() {
                let scope = Scope {
                    user: user.as_deref(),
                    signed_in_before,
                };
                return bulk::revoke(json, db, registry, scope, yes, now).await;
            }
            let Some(user) = user else {
                return Err(Failure::input(
                    "revoke whose sessions? Give a user or --all-users",
                ));
            };
            let except = except.as_deref().map(parse_id).transpose()?;
            if except.is_none() && !yes {
                let active = registry.list_for_user(&user, now).await.map_err(failed)?;
                if active.is_empty() {
                    return Err(Failure::nothing(format!("{user} has no active session")));
                }
                confirm(&format!(
                    "Revoke all {} active session{} of {user}?",
                    active.len(),
                    if active.len() == 1 { "" } else { "s" }
                ))?;
            }
            let n = registry.revoke_user(&user, except).await.map_err(failed)?;
            print(json, json!({ "user": user, "revoked": n }), || {
                println!(
                    "revoked {n} session{} of {}",
                    if n == 1 { "" } else { "s" },
                    escape(&user)
                )
            });
            if n == 0 {
                return Err(Failure::nothing(format!("{user} had no session to revoke")));
            }
            Ok(())
        }
        Command::ForgetUser { user, yes } => {
            bulk::forget_user(json, db, registry, &user, yes).await
        }
        Command::RevokeSession { id } => {
            let id = parse_id(&id)?;
            let revoked = registry.revoke_id(id).await.map_err(failed)?;
            print(
                json,
                json!({ "id": id.to_string(), "revoked": revoked }),
                || {
                    if revoked {
                        println!("revoked session {id}")
                    }
                },
            );
            if !revoked {
                return Err(Failure::nothing(format!(
                    "no active session {id} (unknown, already revoked or expired)"
                )));
            }
            Ok(())
        }
        Command::Cleanup => {
            let n = registry.delete_expired(now).await.map_err(failed)?;
            print(json, json!({ "deleted": n }), || {
                println!(
                    "deleted {n} expired session{}",
                    if n == 1 { "" } else { "s" }
                )
            });
            Ok(())
        }
        Command::Stats => {
            let s = opened.stats(now).await.map_err(failed)?;
            let oldest = s.oldest_active;
            print(
                json,
                json!({
                    "backend": opened.backend(),
                    "active_sessions": s.active_sessions,
                    "users": s.users,
                    "revoked_last_hour": s.revoked_last_hour,
                    "revoked_last_day": s.revoked_last_day,
                    "oldest_active": oldest.map(output::rfc3339),
                    "session_rows": s.session_rows,
                    "revocation_rows": s.revocation_rows,
                    "bytes": s.bytes,
                }),
                || {
                    let oldest = oldest.map_or_else(|| "none".to_owned(), |t| when(t, now));
                    output::table(
                        &["", ""],
                        &[
                            vec!["registry".into(), format!("{db} ({})", opened.backend())],
                            vec!["active sessions".into(), s.active_sessions.to_string()],
                            vec!["users signed in".into(), s.users.to_string()],
                            vec!["revoked, last hour".into(), s.revoked_last_hour.to_string()],
                            vec!["revoked, last day".into(), s.revoked_last_day.to_string()],
                            vec!["oldest active session".into(), oldest],
                            vec!["session rows".into(), s.session_rows.to_string()],
                            vec!["revocation rows".into(), s.revocation_rows.to_string()],
                            vec!["size".into(), output::size(s.bytes)],
                        ],
                    );
                },
            );
            Ok(())
        }
        Command::Check => {
            let c = opened.check().await.map_err(failed)?;
            print(
                json,
                json!({ "schema_version": c.schema_version, "problems": c.problems }),
                || {
                    println!("schema version {}", c.schema_version);
                    for problem in &c.problems {
                        println!("problem: {}", escape(problem));
                    }
                    if c.is_healthy() {
                        println!("no problems found");
                    }
                },
            );
            if !c.is_healthy() {
                return Err(Failure::nothing(format!(
                    "{} problem{} found",
                    c.problems.len(),
                    if c.problems.len() == 1 { "" } else { "s" }
                )));
            }
            Ok(())
        }
        Command::Keygen | Command::KeyId { .. } | Command::Inspect { .. } | Command::Migrate => {
            unreachable!("handled before a registry is opened")
        }
    }
}

/// Prints `value` as JSON, or runs `text` for people.
pub fn print(json: bool, value: Value, text: impl FnOnce()) {
    if json {
        println!("{}", output::json(&value));
    } else {
        text();
    }
}

fn parse_key(text: &str) -> Result<Key, Failure> {
    Key::from_base64(text.trim()).map_err(|e| Failure::input(format!("the key: {e}")))
}

fn parse_id(text: &str) -> Result<SessionId, Failure> {
    text.parse()
        .map_err(|e| Failure::input(format!("{text:?} is not a session id: {e}")))
}

/// Asks on the terminal; without one, refuses (a script must say --yes).
fn confirm(question: &str) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::input(format!(
            "{question} Not asked: standard input is not a terminal; pass --yes to confirm"
        )));
    }
    eprint!("{} [y/N] ", escape(question));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::nothing("nothing revoked"))
    }
}

fn session_json(s: &SessionInfo) -> Value {
    json!({
        "id": s.id.to_string(),
        "created_at": output::rfc3339(s.created_at),
        "last_seen_at": output::rfc3339(s.last_seen_at),
        "expires_at": output::rfc3339(s.expires_at),
        "ip": s.ip.map(|ip| ip.to_string()),
        "user_agent": s.user_agent,
    })
}

fn session_row(s: &SessionInfo, now: SystemTime) -> Vec<String> {
    vec![
        s.id.to_string(),
        when(s.created_at, now),
        when(s.last_seen_at, now),
        when(s.expires_at, now),
        s.ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
        s.user_agent.clone().unwrap_or_else(|| "-".into()),
    ]
}

/// The names `inspect` tries when it is given none: the library's defaults, in production
/// (`__Host-`, or `__Secure-` with a `Domain`) and in development (plain HTTP).
const DEFAULT_NAMES: [&str; 3] = ["__Host-session", "__Secure-session", "session"];

/// Opens `cookie` with `key` (in the mode its header names) and prints its claims. The seal is
/// bound to the cookie's name: `name`, else the one in a pasted `NAME=VALUE`, else the
/// library's default names, tried in turn.
fn inspect(
    json: bool,
    cookie: &str,
    key: &str,
    name: Option<&str>,
    now: SystemTime,
) -> Result<(), Failure> {
    let key = parse_key(key)?;
    let cookie = cookie.trim();
    // A value is base64url without padding: an `=` can only end a pasted name.
    let (pasted, value) = match cookie.split_once('=') {
        Some((pasted, value)) => (Some(pasted.trim()), value),
        None => (None, cookie),
    };
    let names: Vec<&str> = match name.or(pasted) {
        Some(name) => vec![name],
        None => DEFAULT_NAMES.to_vec(),
    };
    // The header (version, mode, key id) is the first 6 bytes: 8 base64 characters.
    let header = value
        .get(..8)
        .and_then(|h| URL_SAFE_NO_PAD.decode_to_vec(h).ok())
        .ok_or_else(|| Failure::input("that is not a sealed-sessions cookie value"))?;
    let mode = match header.get(1) {
        Some(1) => Mode::Private,
        Some(2) => Mode::Signed,
        _ => return Err(Failure::input("that is not a sealed-sessions cookie value")),
    };
    let key_id = header
        .get(2..6)
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let sealer = Sealer::new(KeyRing::new(key), mode);
    // Expiry is reported, not enforced: support wants to see an expired cookie too.
    let mut first_error = None;
    let mut opened = None;
    for name in &names {
        match sealer.open(name, value, SystemTime::UNIX_EPOCH) {
            Ok(claims) => {
                opened = Some((*name, claims));
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((name, opened)) = opened else {
        let tried: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        return Err(Failure::nothing(format!(
            "the cookie does not open with this key and the name{} {} (its key id is {}): {}; \
             if the application names its cookie otherwise, pass --name",
            if names.len() == 1 { "" } else { "s" },
            tried.join(", "),
            key_id.as_deref().unwrap_or("?"),
            first_error.map_or_else(String::new, |e| e.to_string()),
        )));
    };
    let c = &opened.claims;
    let data: serde_json::Map<String, Value> = c
        .keys()
        .map(|k| {
            (
                k.to_owned(),
                c.get::<Value>(k).ok().flatten().unwrap_or(Value::Null),
            )
        })
        .collect();
    let expired = c.is_expired(now);
    print(
        json,
        json!({
            "name": name,
            "mode": format!("{mode:?}").to_lowercase(),
            "key_id": key_id,
            "id": c.id().to_string(),
            "user": c.user(),
            "issued_at": output::rfc3339(c.issued_at()),
            "auth_time": c.auth_time().map(output::rfc3339),
            "expires_at": output::rfc3339(c.expires_at()),
            "idle_deadline": output::rfc3339(c.idle_deadline()),
            "persistent": c.is_persistent(),
            "expired": expired,
            "data": data,
        }),
        || {
            let rows = vec![
                vec!["cookie name".into(), name.to_owned()],
                vec!["mode".into(), format!("{mode:?}").to_lowercase()],
                vec!["key id".into(), key_id.clone().unwrap_or_default()],
                vec!["session id".into(), c.id().to_string()],
                vec!["user".into(), c.user().unwrap_or("(anonymous)").to_owned()],
                vec!["issued".into(), when(c.issued_at(), now)],
                vec![
                    "signed in".into(),
                    c.auth_time().map_or_else(|| "-".into(), |t| when(t, now)),
                ],
                vec!["expires".into(), when(c.expires_at(), now)],
                vec!["idle deadline".into(), when(c.idle_deadline(), now)],
                vec!["persistent".into(), c.is_persistent().to_string()],
                vec!["expired now".into(), expired.to_string()],
            ];
            output::table(&["", ""], &rows);
            for (k, v) in &data {
                println!("data {} = {}", escape(k), escape(&v.to_string()));
            }
        },
    );
    Ok(())
}
