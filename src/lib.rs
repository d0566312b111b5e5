//! Web sessions sealed in a cookie, with an optional registry for listing and revoking them.
//!
//! The session lives in the cookie, encrypted with XAES-256-GCM ([`Mode::Private`], the default)
//! or authenticated with HMAC-SHA256 ([`Mode::Signed`]), so a service needs no session store on
//! its hot path. Keys rotate without logging anyone out: a [`KeyRing`] seals with its primary key
//! and still opens cookies sealed with older ones.
//!
//! # Quick start
//!
//! With the default features, [`SessionLayer`] is a tower layer for axum, hyper or any
//! `http`-based service; handlers find a [`Session`] in the request extensions. With the `axum`
//! feature, `session: Session` is an extractor and [`SessionError`] a response, so `?` works in
//! handlers (the README's quick start is a whole app):
//!
//! ```
//! # #[cfg(feature = "hyper")] {
//! use sealed_sessions::{Key, KeyRing, Session, SessionConfig, SessionLayer};
//!
//! let config = SessionConfig::builder(KeyRing::new(Key::generate())).build()?;
//! let layer = SessionLayer::new(config); // axum: Router::new().route(..).layer(layer)
//!
//! fn count(session: &Session) -> Result<u32, sealed_sessions::SessionError> {
//!     let visits = session.get::<u32>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?; // the cookie is re-sealed on the way out
//!     Ok(visits)
//! }
//! # let _ = (layer, count);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The sealing core on its own, without HTTP:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use sealed_sessions::{Claims, Key, KeyRing, Mode, Sealer};
//!
//! // At start-up: load the key (here a fresh one) and build the sealer once.
//! let key = Key::generate(); // in production: Key::from_base64(&std::env::var("SESSION_KEY")?)?
//! let sealer = Sealer::new(KeyRing::new(key), Mode::Private);
//!
//! // A request writes to the session; the response carries the sealed value.
//! let now = SystemTime::now();
//! let mut session = Claims::new(now, Duration::from_secs(8 * 3600), Duration::from_secs(1800));
//! session.insert("cart", &["apple", "pear"])?;
//! let cookie_value = sealer.seal("session", &session)?;
//!
//! // The next request opens it: tampered, foreign, renamed or expired cookies are errors.
//! let opened = sealer.open("session", &cookie_value, now)?;
//! assert_eq!(opened.claims.get::<Vec<String>>("cart")?.unwrap(), ["apple", "pear"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a [`registry`] (SQLite by default), sessions bound to a user are checked against an
//! allow-list on every request (from memory, ~50 ns), so they can be listed and revoked — one,
//! all others, or all of a user's — effective on the next request.
//!
//! # Modules and layering
//!
//! `key` (master secrets, HKDF, rotation) → `xaes` (the AEAD) → `seal` (the envelope) →
//! `claims` (what is sealed). None of them knows about HTTP. The middleware (`service`,
//! `session`, `config`) sits on top; the `registry` knows nothing of cookies or crypto. The cookie format is specified in
//! the README and in [`Sealer`]'s module, and frozen by golden tests.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod claims;
mod clear_bytes;
mod data;
mod id;
mod key;
mod random;
pub mod registry;
mod seal;
#[cfg(any(feature = "hyper", feature = "sqlite", feature = "postgres"))]
mod telemetry;
mod wire;
mod xaes;

pub use claims::Claims;
pub use id::{ParseSessionIdError, SessionId};
pub use key::{Key, KeyError, KeyId, KeyRing};
pub use seal::{Mode, OpenError, Opened, SealError, Sealer, MAX_COOKIE_LEN, VERSION};
pub use wire::DecodeError;

#[cfg(feature = "hyper")]
mod client_ip;
#[cfg(feature = "hyper")]
mod config;
#[cfg(feature = "hyper")]
mod cookie_buf;
#[cfg(feature = "hyper")]
mod cookie_header;
#[cfg(feature = "hyper")]
mod envelope_bytes;
#[cfg(feature = "hyper")]
mod load;
#[cfg(feature = "hyper")]
mod opened_cache;
#[cfg(feature = "hyper")]
mod service;
#[cfg(feature = "hyper")]
mod session;

#[cfg(feature = "hyper")]
pub use client_ip::PeerAddr;
#[cfg(feature = "hyper")]
pub use config::{
    ConfigError, RegistryErrorPolicy, SessionConfig, SessionConfigBuilder, DEFAULT_COOKIE_NAME,
    DEFAULT_PERSISTENT_IDLE_TIMEOUT, DEFAULT_PERSISTENT_LIFETIME, DEFAULT_REAUTHENTICATION_WINDOW,
    MAX_LIFETIME, MAX_RETRY_AFTER,
};
#[cfg(feature = "hyper")]
pub use cookie_header::SameSite;
#[cfg(feature = "hyper")]
pub use service::{ResponseFuture, SessionLayer, SessionService};
#[cfg(feature = "hyper")]
pub use session::{Device, Flash, Session, SessionError};

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
pub use extract::{MissingSessionLayer, REAUTHENTICATION_HEADER};

/// The README's code blocks, compiled and run as doc tests.
#[cfg(all(doctest, feature = "axum", feature = "sqlite"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
