//! Which address a request came from, for the registry's "your devices" list.
//!
//! By default only the socket peer address counts: `X-Forwarded-For` is written by whoever sends
//! the request, so trusting it by default would let any client record any address. Behind a
//! reverse proxy, name the proxies with
//! [`SessionConfigBuilder::trust_forwarded_for`](crate::SessionConfigBuilder::trust_forwarded_for):
//! when the peer is one of them, the header is read from the right, skipping trusted proxies, and
//! the first address that is not one of them is the client.

use std::net::{IpAddr, SocketAddr};

use http::header::HeaderName;
use http::{Extensions, HeaderMap};

/// The socket peer address of the connection a request came on.
///
/// hyper does not put the peer address into requests; a server that wants it recorded in the
/// registry inserts this into the request extensions (the `hyper_stateless` example shows how).
/// Under the `axum` feature, axum's `ConnectInfo<SocketAddr>` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Where the client address comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ClientIpSource {
    /// The socket peer address only.
    #[default]
    Peer,
    /// `X-Forwarded-For`, when the peer is one of these proxies.
    ForwardedFor(Vec<IpAddr>),
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl ClientIpSource {
    /// The client address of a request with these headers and extensions, if known.
    pub(crate) fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = peer_ip(extensions)?;
        let trusted = match self {
            ClientIpSource::Peer => return Some(peer),
            ClientIpSource::ForwardedFor(trusted) => trusted,
        };
        if !trusted.contains(&peer) {
            return Some(peer);
        }
        // Every header line is one list; the rightmost entries were added by the nearest proxies.
        let lines = headers.get_all(&X_FORWARDED_FOR).iter().rev();
        for entry in lines.flat_map(|l| l.to_str().unwrap_or("?").rsplit(',')) {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => return Some(ip),
                // Garbage at this position was written by someone we do not trust: stop here
                // and record the last address a trusted proxy vouched for.
                Err(_) => break,
            }
        }
        Some(peer)
    }
}

fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ext(ip: &str) -> Extensions {
        let mut e = Extensions::new();
        e.insert(PeerAddr(SocketAddr::new(ip.parse().unwrap(), 1234)));
        e
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(&X_FORWARDED_FOR, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn peer_only_by_default() {
        let h = xff(&["198.51.100.1"]);
        assert_eq!(
            ClientIpSource::Peer.client_ip(&h, &ext("192.0.2.9")),
            ip("192.0.2.9")
        );
        assert_eq!(ClientIpSource::Peer.client_ip(&h, &Extensions::new()), None);
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let src = ClientIpSource::ForwardedFor(vec![
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        ]);
        let h = xff(&["6.6.6.6, 198.51.100.1", "10.0.0.2"]);
        // From a trusted proxy: skip trusted hops from the right, take the first other one.
        assert_eq!(src.client_ip(&h, &ext("10.0.0.1")), ip("198.51.100.1"));
        // From anyone else: the header is ignored.
        assert_eq!(src.client_ip(&h, &ext("192.0.2.9")), ip("192.0.2.9"));
        // Garbage stops the walk at the last vouched-for address.
        let h = xff(&["nonsense"]);
        assert_eq!(src.client_ip(&h, &ext("10.0.0.1")), ip("10.0.0.1"));
    }
}
