//! The floor: a layer that does nothing but put one `Arc` into the request's extensions for the
//! handler to read. Any middleware that hands a handler a per-request value pays at least this
//! (the `Arc`'s allocation and `http::Extensions`' boxed map, its table and the boxed value), so
//! every session case is measured against it (issue 16). The floor itself serves ~0.88-0.97 of
//! bare hyper's requests/s; bare is printed beside it, not used as the yardstick.
//!
//! A module of `server.rs` (so of `examples/loadgen.rs`, `benches/middleware.rs` and
//! `benches/peers`); `examples/hotpath.rs` includes it with `#[path]`.
#![allow(dead_code)] // each includer uses a different part

use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;

/// What the floor hands the handler: one small per-request value, as a session layer's state.
#[derive(Debug)]
pub struct FloorValue {
    /// Read by the handlers, so the value is not optimised away.
    pub visits: u64,
}

/// The floor's layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloorLayer;

impl<S> tower::Layer<S> for FloorLayer {
    type Service = Floor<S>;
    fn layer(&self, inner: S) -> Floor<S> {
        Floor { inner }
    }
}

/// The floor's service: inserts an `Arc<FloorValue>` and calls the inner service, whose future
/// it returns as it is (no boxing, nothing on the way out).
#[derive(Clone, Debug)]
pub struct Floor<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for Floor<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(Arc::new(FloorValue { visits: 1 }));
        self.inner.call(req)
    }
}

/// What a handler does with the floor's value, if there is one: reads it.
pub fn read_floor<B>(req: &Request<B>) {
    if let Some(v) = req.extensions().get::<Arc<FloorValue>>() {
        std::hint::black_box(v.visits);
    }
}
