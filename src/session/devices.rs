//! The signed-in user's sessions ("your devices"): listing them ([`Session::devices`]) and
//! revoking one, all others, or all of them. Each needs a signed-in user and a registry.

use super::{Session, SessionError};
use crate::id::SessionId;
use crate::registry::{Registry, SessionInfo};

/// One of the signed-in user's sessions ("devices"), as [`Session::devices`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// What the registry recorded: id, times, user agent, address.
    pub info: SessionInfo,
    /// Whether this is the session of the current request ("this device").
    pub current: bool,
}
impl Session {
    /// The signed-in user and the registry, for the actions on the user's devices.
    fn user_and_registry(&self) -> Result<(String, &dyn Registry), SessionError> {
        let user = self.user().ok_or(SessionError::NotSignedIn)?;
        let registry = self
            .inner
            .shared
            .registry
            .as_deref()
            .ok_or(SessionError::NoRegistry)?;
        Ok((user, registry))
    }

    /// The signed-in user's active sessions, this device first, then newest first: what a
    /// "your devices" page shows. Needs a registry.
    ///
    /// ```
    /// # async fn page(session: sealed_sessions::Session) -> Result<String, sealed_sessions::SessionError> {
    /// let mut page = String::new();
    /// for device in session.devices().await? {
    ///     let name = device.info.user_agent.as_deref().unwrap_or("unknown browser");
    ///     let this = if device.current { " (this device)" } else { "" };
    ///     page += &format!("{name}{this}\n");
    /// }
    /// # Ok(page)
    /// # }
    /// ```
    pub async fn devices(&self) -> Result<Vec<Device>, SessionError> {
        let (user, registry) = self.user_and_registry()?;
        let current = self.id();
        let mut devices: Vec<Device> = registry
            .list_for_user(&user, self.inner.now)
            .await?
            .into_iter()
            .map(|info| Device {
                current: info.id == current,
                info,
            })
            .collect();
        // Stable: the rest stay newest first.
        devices.sort_by_key(|d| !d.current);
        Ok(devices)
    }

    /// Revokes one of the signed-in user's sessions ("sign out that device"); returns whether
    /// an active one was revoked. Only the user's own sessions can be revoked: another user's id
    /// changes nothing and returns `false`. Revoking the current session signs out here too, as
    /// [`logout`](Self::logout) does.
    pub async fn revoke_device(&self, id: SessionId) -> Result<bool, SessionError> {
        let (user, registry) = self.user_and_registry()?;
        if id == self.id() {
            self.sign_out_here();
        }
        Ok(registry.revoke(&user, id).await?)
    }

    /// Revokes every session of the signed-in user but this one ("sign out other devices");
    /// returns how many were revoked. Each is refused from its next request on.
    pub async fn sign_out_other_devices(&self) -> Result<u64, SessionError> {
        let (user, registry) = self.user_and_registry()?;
        Ok(registry.revoke_user(&user, Some(self.id())).await?)
    }

    /// Revokes every session of the signed-in user, this one included ("sign out everywhere"),
    /// and removes this cookie; returns how many were revoked. The cookie is removed even if
    /// the registry fails, as with [`logout`](Self::logout).
    pub async fn sign_out_everywhere(&self) -> Result<u64, SessionError> {
        let (user, registry) = self.user_and_registry()?;
        self.sign_out_here();
        Ok(registry.revoke_user(&user, None).await?)
    }
}
