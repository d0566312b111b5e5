//! What the crate tells operators: metrics through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`) and spans and events through `tracing`.
//!
//! The crate only records; the application installs a recorder (Prometheus, OpenTelemetry,
//! StatsD). Without the feature every handle is an empty type and recording compiles to
//! nothing; with it and no recorder, a handle is the facade's no-op and recording costs a
//! branch.
//!
//! **Handles are taken once.** The configuration takes the middleware's handles when
//! [`SessionConfigBuilder::build`](crate::SessionConfigBuilder::build) runs, and a registry its
//! own when it opens. The facade binds a handle to the recorder installed at that moment, and one
//! taken before any recorder records nothing, ever: **install the recorder before building the
//! configuration and opening the registry.** This is the price of a hot path with no name lookup
//! and no allocation (a cached, signed-in request records two counters: an atomic add each with
//! the Prometheus recorder). A handle looked up lazily at first use would not fix the ordering:
//! it would bind to whatever recorder was there at the first request instead.
//!
//! Every metric is named `sealed_sessions_*`, and every label value comes from a fixed set that
//! the enums of this module spell out (never a user id, session id, address or agent);
//! `docs/operations.md` lists them all, with alert rules.
//!
//! One concept per file: the handles and their stand-ins (`handle.rs`), cookie refusals
//! (`refusals.rs`), `Set-Cookie` reasons (`set_cookies.rs`), session events (`sessions.rs`), the
//! registry's operations and cache (`registry.rs`), the revocation feed (`feed.rs`).

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod feed;
pub(crate) mod handle;
#[cfg(feature = "hyper")]
pub(crate) mod refusals;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod registry;
#[cfg(feature = "hyper")]
pub(crate) mod sessions;
#[cfg(feature = "hyper")]
pub(crate) mod set_cookies;
