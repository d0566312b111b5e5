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
