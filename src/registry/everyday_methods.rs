//! The [`everyday_methods!`] macro: a backend's everyday operations as inherent methods.
//!
//! Its own file because it is no part of the [`Registry`](super::Registry) contract that
//! `mod.rs` defines: it is a convenience each backend (`sqlite/`, `postgres/`) invokes on its
//! own type, so that callers need not import the trait.

/// Gives a backend the everyday operations as inherent methods, so that
/// `registry.revoke_user(..)` compiles on an `SqliteRegistry` or `PostgresRegistry` without
/// importing the [`Registry`](super::Registry) trait. Each forwards to the trait method of the
/// same name and returns the same type, so that code written against the trait (a wrapper that
/// forwards to an `SqliteRegistry`, say) compiles as before.
macro_rules! everyday_methods {
    ($backend:ty) => {
        impl $backend {
            /// The active sessions of `user_id` at `now`, newest first; see
            /// [`Registry::list_for_user`](crate::registry::Registry::list_for_user).
            pub fn list_for_user<'a>(
                &'a self,
                user_id: &'a str,
                now: std::time::SystemTime,
            ) -> crate::registry::BoxFuture<
                'a,
                Result<Vec<crate::registry::SessionInfo>, crate::registry::RegistryError>,
            > {
                crate::registry::Registry::list_for_user(self, user_id, now)
            }

            /// Revokes the session `id` of `user_id`; see
            /// [`Registry::revoke`](crate::registry::Registry::revoke).
            pub fn revoke<'a>(
                &'a self,
                user_id: &'a str,
                id: crate::id::SessionId,
            ) -> crate::registry::BoxFuture<'a, Result<bool, crate::registry::RegistryError>> {
                crate::registry::Registry::revoke(self, user_id, id)
            }

            /// Revokes the session `id` whoever it belongs to; see
            /// [`Registry::revoke_id`](crate::registry::Registry::revoke_id).
            pub fn revoke_id(
                &self,
                id: crate::id::SessionId,
            ) -> crate::registry::BoxFuture<'_, Result<bool, crate::registry::RegistryError>> {
                crate::registry::Registry::revoke_id(self, id)
            }

            /// Revokes every session of `user_id` but `except`; see
            /// [`Registry::revoke_user`](crate::registry::Registry::revoke_user).
            pub fn revoke_user<'a>(
                &'a self,
                user_id: &'a str,
                except: Option<crate::id::SessionId>,
            ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
                crate::registry::Registry::revoke_user(self, user_id, except)
            }

            /// Revokes every session of every user, or those signed in before a time; see
            /// [`Registry::revoke_all`](crate::registry::Registry::revoke_all).
            pub fn revoke_all(
                &self,
                signed_in_before: Option<std::time::SystemTime>,
            ) -> crate::registry::BoxFuture<'_, Result<u64, crate::registry::RegistryError>> {
                crate::registry::Registry::revoke_all(self, signed_in_before)
            }

            /// Revokes the sessions of `user_id` signed in before a time; see
            /// [`Registry::revoke_user_signed_in_before`](crate::registry::Registry::revoke_user_signed_in_before).
            pub fn revoke_user_signed_in_before<'a>(
                &'a self,
                user_id: &'a str,
                signed_in_before: std::time::SystemTime,
            ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
                crate::registry::Registry::revoke_user_signed_in_before(
                    self,
                    user_id,
                    signed_in_before,
                )
            }

            /// Deletes every row of `user_id`, ending their sessions everywhere; see
            /// [`Registry::forget_user`](crate::registry::Registry::forget_user).
            pub fn forget_user<'a>(
                &'a self,
                user_id: &'a str,
            ) -> crate::registry::BoxFuture<'a, Result<u64, crate::registry::RegistryError>> {
                crate::registry::Registry::forget_user(self, user_id)
            }

            /// Deletes the sessions expired at `now`; see
            /// [`Registry::delete_expired`](crate::registry::Registry::delete_expired).
            pub fn delete_expired(
                &self,
                now: std::time::SystemTime,
            ) -> crate::registry::BoxFuture<'_, Result<u64, crate::registry::RegistryError>> {
                crate::registry::Registry::delete_expired(self, now)
            }
        }
    };
}
pub(crate) use everyday_methods;
