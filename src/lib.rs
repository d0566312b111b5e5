//! sealed-sessions: web sessions sealed in a cookie, with an optional registry for revocation.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod id;
mod random;

pub use id::{ParseSessionIdError, SessionId};
mod key;
mod xaes;
pub use key::{Key, KeyError, KeyId, KeyRing};
mod claims;
pub use claims::{Claims, DecodeError};
mod seal;
pub use seal::{Mode, OpenError, Opened, SealError, Sealer, MAX_COOKIE_LEN, VERSION};
pub mod registry;

#[cfg(feature = "hyper")]
mod client_ip;
#[cfg(feature = "hyper")]
mod config;
#[cfg(feature = "hyper")]
mod cookie_header;
#[cfg(feature = "hyper")]
mod service;
#[cfg(feature = "hyper")]
mod session;
#[cfg(feature = "hyper")]
pub use client_ip::PeerAddr;
#[cfg(feature = "hyper")]
pub use config::{
    ConfigError, RegistryErrorPolicy, SessionConfig, SessionConfigBuilder, DEFAULT_COOKIE_NAME,
};
#[cfg(feature = "hyper")]
pub use cookie_header::SameSite;
#[cfg(feature = "hyper")]
pub use service::{SessionLayer, SessionService};
#[cfg(feature = "hyper")]
pub use session::{Flash, Session, SessionError};
#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
