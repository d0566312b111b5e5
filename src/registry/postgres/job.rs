//! The job queue's messages: what the handle sends the registry's thread (`worker.rs`), each
//! with the `oneshot` its answer goes back on. Its own file because the handle, the thread and
//! the operator's calls (`operator.rs`) all speak it, and none of them should import another
//! for it.

use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::id::SessionId;
use crate::registry::operator::{RegistryCheck, RegistryStats};
use crate::registry::ops::{Outcome, WriteOp};
use crate::registry::{RegistryError, SessionInfo};

pub(super) type Reply<T> = oneshot::Sender<Result<T, RegistryError>>;

/// A job for the registry's thread.
pub(crate) enum Job {
    Write(WriteOp, Reply<Outcome>),
    Validate {
        id: SessionId,
        user_id: String,
        now: SystemTime,
        epoch: u64,
        reply: Reply<bool>,
    },
    List {
        user_id: String,
        now: SystemTime,
        reply: Reply<Vec<SessionInfo>>,
    },
    Stats {
        now: SystemTime,
        reply: Reply<RegistryStats>,
    },
    Check {
        reply: Reply<RegistryCheck>,
    },
    Stop,
}
