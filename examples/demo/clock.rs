//! The demo's clock: the system clock, or (for the tests only) the system clock moved forward by
//! a number of seconds read from a file on every call.
//!
//! Sudo mode asks for the password again once the sign-in is older than the window (20 minutes
//! by default). A test cannot wait 20 minutes, and a short window (`--reauthenticate-after 2`
//! and a sleep) races the machine: the click that must land *inside* the window after a
//! re-authentication may not, on a loaded machine. With `--clock-offset-file PATH` the test
//! writes, say, `1260` into the file and the next request sees a sign-in 21 minutes old, while
//! the requests that follow a re-authentication are as close to it as they really are. The
//! session layer reads this clock for everything it dates (sign-in, idle and absolute expiry,
//! the registry's rows), so an offset past the idle timeout (30 minutes) signs everyone out, as
//! it would. The sign-in throttle counts on the monotonic clock and is not moved.
//!
//! A missing file is an offset of zero; so is a file that does not hold a whole number of
//! seconds (the demo says so on stderr, once). Never use the flag outside tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

pub struct Clock {
    offset_file: Option<PathBuf>,
    warned: AtomicBool,
}

impl Clock {
    /// The system clock, moved by the seconds in `offset_file` if there is one.
    pub fn new(offset_file: Option<PathBuf>) -> Clock {
        Clock {
            offset_file,
            warned: AtomicBool::new(false),
        }
    }

    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let offset = self.offset();
        now.checked_add(offset).unwrap_or(now)
    }

    fn offset(&self) -> Duration {
        let Some(path) = &self.offset_file else {
            return Duration::ZERO;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Duration::ZERO,
            Err(err) => {
                self.warn_once(&format!("cannot read {}: {err}", path.display()));
                return Duration::ZERO;
            }
        };
        match text.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) if text.trim().is_empty() => Duration::ZERO,
            Err(_) => {
                self.warn_once(&format!(
                    "{} does not hold a whole number of seconds",
                    path.display()
                ));
                Duration::ZERO
            }
        }
    }

    fn warn_once(&self, problem: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!("demo: clock offset taken as 0: {problem}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_file_moves_the_clock_and_bad_contents_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        let clock = Clock::new(Some(path.clone()));
        // Between two readings of the system clock, moved by `offset`.
        let moved_by = |clock: &Clock, offset: u64| {
            let offset = Duration::from_secs(offset);
            let before = SystemTime::now();
            let t = clock.now();
            let after = SystemTime::now();
            before + offset <= t && t <= after + offset
        };
        assert!(moved_by(&clock, 0), "no file: the system clock");
        std::fs::write(&path, "1260\n").unwrap();
        assert!(moved_by(&clock, 1260));
        for junk in ["", "-5", "soon", "99999999999999999999999"] {
            std::fs::write(&path, junk).unwrap();
            assert!(moved_by(&clock, 0), "{junk:?}");
        }
        assert!(moved_by(&Clock::new(None), 0));
    }
}
