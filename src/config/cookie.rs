//! The session cookie's name and attributes: the `__Host-` and `__Secure-` prefix rules and
//! the longest `Domain` or `Path` browsers heed, which [`SessionConfigBuilder::build`] checks.
//!
//! **Why `__Host-` by default.** Without a prefix, any sibling subdomain (or a man in the middle
//! on a plain-http page of the site) can set a cookie of our name for the parent domain, and the
//! server cannot tell it from its own: an attacker signed in to their own account could plant
//! their session in a victim's browser and see what the victim then does in it ("cookie
//! tossing"). Browsers accept a `__Host-` cookie only if it is `Secure`, has `Path=/` and no
//! `Domain`, so only this host, over https, can set it. The default name therefore takes the
//! prefix whenever the cookie is `Secure` with `Path=/` and no `Domain`, and `__Secure-` (which
//! at least keeps plain-http pages from setting it) when it is `Secure` otherwise. What remains:
//! a name chosen with [`SessionConfigBuilder::cookie_name`] is used as given, and a site that
//! needs a `Domain` cookie shares it with every subdomain by design. Prefixes are recognised
//! whatever their case, as RFC 6265bis has browsers do.
//!
//! [`SessionConfigBuilder::build`]: super::SessionConfigBuilder::build
//! [`SessionConfigBuilder::cookie_name`]: super::SessionConfigBuilder::cookie_name

use super::error::ConfigError;
use crate::cookie_header::MAX_ATTRIBUTE_LEN;

/// The cookie name used unless [`SessionConfigBuilder::cookie_name`] says otherwise, after the
/// `__Host-` or `__Secure-` prefix the cookie's attributes allow (see the module docs).
///
/// [`SessionConfigBuilder::cookie_name`]: crate::SessionConfigBuilder::cookie_name
pub const DEFAULT_COOKIE_NAME: &str = "session";

pub(super) const HOST_PREFIX: &str = "__Host-";
pub(super) const SECURE_PREFIX: &str = "__Secure-";

/// Refuses a `Domain` or `Path` longer than browsers heed.
pub(super) fn check_attribute_len(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(ConfigError::AttributeTooLong {
            what,
            len: value.len(),
            max: MAX_ATTRIBUTE_LEN,
        });
    }
    Ok(())
}

/// Whether `name` starts with the cookie prefix `prefix`, in any case (RFC 6265bis).
pub(super) fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, SessionConfig, SessionConfigBuilder};
    use crate::key::{Key, KeyRing};

    fn builder() -> SessionConfigBuilder {
        SessionConfig::builder(KeyRing::new(Key::generate()))
    }

    #[test]
    fn the_default_name_takes_the_strongest_prefix_the_attributes_allow() {
        let name = |b: SessionConfigBuilder| b.build().unwrap().cookie_name().to_owned();
        assert_eq!(name(builder()), "__Host-session");
        assert_eq!(name(builder().path("/app")), "__Secure-session");
        assert_eq!(name(builder().domain("example.com")), "__Secure-session");
        assert_eq!(name(builder().insecure_http_for_development()), "session");
        // A name chosen by hand is used as given.
        assert_eq!(name(builder().cookie_name("sid")), "sid");
        assert_eq!(
            name(builder().cookie_name("sid").host_prefix()),
            "__Host-sid"
        );
    }

    #[test]
    fn prefixes_are_recognised_in_any_case() {
        let err = |b: SessionConfigBuilder| b.build().unwrap_err();
        assert_eq!(
            err(builder().cookie_name("__HOST-s").domain("example.com")),
            ConfigError::HostPrefixConflict
        );
        assert_eq!(
            err(builder()
                .cookie_name("__secure-s")
                .insecure_http_for_development()),
            ConfigError::SecurePrefixInsecure
        );
        let c = builder()
            .cookie_name("__host-x")
            .host_prefix()
            .build()
            .unwrap();
        assert_eq!(c.cookie_name(), "__host-x", "no second prefix");
    }

    /// Browsers ignore a `Path` or `Domain` longer than 1024 bytes (RFC 6265bis 5.6), and a
    /// comma or control character would split or spoil the `Set-Cookie` line: the cookie, and
    /// its removal, would not have the scope configured. Each is refused with a sentence.
    #[test]
    fn attributes_browsers_would_ignore_are_errors() {
        let message = |b: SessionConfigBuilder| match b.build() {
            Ok(_) => "built without error".to_owned(),
            Err(e) => e.to_string(),
        };
        let long_path = format!("/{}", "a".repeat(1024));
        let long_domain = format!("{}.example.com", "a".repeat(1013));
        assert_eq!(long_domain.len(), 1025);
        for (b, says) in [
            (builder().path(long_path.clone()), "1025 bytes"),
            (builder().domain(long_domain.clone()), "1025 bytes"),
            (builder().path("/a,b"), "not a valid cookie Domain or Path"),
            (
                builder().domain("a,b.example.com"),
                "not a valid cookie Domain or Path",
            ),
            (builder().path("/a\tb"), "not a valid cookie Domain or Path"),
            (
                builder().domain("exa\u{7f}mple.com"),
                "not a valid cookie Domain or Path",
            ),
        ] {
            let got = message(b);
            assert!(got.contains(says), "{got:?} does not say {says:?}");
        }
        // 1024 bytes is allowed.
        assert!(builder().path(&long_path[..1024]).build().is_ok());
        assert!(builder().domain(&long_domain[1..]).build().is_ok());
    }

    #[test]
    fn host_prefix_is_added_once() {
        let c = builder()
            .cookie_name("__Host-x")
            .host_prefix()
            .build()
            .unwrap();
        assert_eq!(c.cookie_name(), "__Host-x");
    }
}
