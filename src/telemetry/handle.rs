//! The handles the crate records through: the `metrics` facade's, or empty stand-ins when the
//! `metrics` feature is off, so that call sites read the same either way and cost nothing then.
//!
//! A handle is taken once, by [`counter`], [`gauge`] or [`histogram`], when the configuration
//! or the registry that records through it is built; recording is then a call on the handle (an
//! atomic add with the Prometheus recorder), with no name lookup and no allocation. The facade
//! binds a handle to the recorder installed when it was taken: one taken before any recorder was
//! installed records nothing, ever (see the module documentation of `telemetry`).

// The middleware alone records only counters.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

#[cfg(feature = "metrics")]
pub(crate) use metrics::{Counter, Gauge, Histogram};

/// A label: its name and its value, both from a fixed set the crate names.
pub(crate) type Label = (&'static str, &'static str);

/// What a metric measures, for the recorder's description (Prometheus' `# HELP`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// A count of events or things.
    Count,
    /// A duration, in seconds.
    Seconds,
}

#[cfg(feature = "metrics")]
impl Unit {
    fn unit(self) -> metrics::Unit {
        match self {
            Unit::Count => metrics::Unit::Count,
            Unit::Seconds => metrics::Unit::Seconds,
        }
    }
}

/// The counter `name` with `labels`, described as `help`.
#[cfg(feature = "metrics")]
pub(crate) fn counter(
    name: &'static str,
    labels: &[Label],
    unit: Unit,
    help: &'static str,
) -> Counter {
    metrics::describe_counter!(name, unit.unit(), help);
    metrics::counter!(name, labels)
}

/// The gauge `name` with `labels`, described as `help`.
#[cfg(feature = "metrics")]
pub(crate) fn gauge(name: &'static str, labels: &[Label], unit: Unit, help: &'static str) -> Gauge {
    metrics::describe_gauge!(name, unit.unit(), help);
    metrics::gauge!(name, labels)
}

/// The histogram `name` with `labels`, described as `help`.
#[cfg(feature = "metrics")]
pub(crate) fn histogram(
    name: &'static str,
    labels: &[Label],
    unit: Unit,
    help: &'static str,
) -> Histogram {
    metrics::describe_histogram!(name, unit.unit(), help);
    metrics::histogram!(name, labels)
}

/// A counter that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Clone, Default)]
pub(crate) struct Counter;

#[cfg(not(feature = "metrics"))]
impl Counter {
    #[inline(always)]
    pub(crate) fn increment(&self, _: u64) {}
}

/// A gauge that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauge;

#[cfg(not(feature = "metrics"))]
impl Gauge {
    #[inline(always)]
    pub(crate) fn set(&self, _: f64) {}
}

/// A histogram that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram;

#[cfg(not(feature = "metrics"))]
impl Histogram {
    #[inline(always)]
    pub(crate) fn record(&self, _: f64) {}
}

/// A counter that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
pub(crate) fn counter(_: &'static str, _: &[Label], _: Unit, _: &'static str) -> Counter {
    Counter
}

/// A gauge that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
pub(crate) fn gauge(_: &'static str, _: &[Label], _: Unit, _: &'static str) -> Gauge {
    Gauge
}

/// A histogram that records nothing (the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
pub(crate) fn histogram(_: &'static str, _: &[Label], _: Unit, _: &'static str) -> Histogram {
    Histogram
}
