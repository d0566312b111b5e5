//! sealed-sessions: web sessions sealed in a cookie, with an optional registry for revocation.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod id;
mod random;

pub use id::{ParseSessionIdError, SessionId};
pub mod registry;
