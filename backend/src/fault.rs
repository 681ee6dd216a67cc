//! Crash points for the fault tests: `CONFERENCE_CRASH_AT=<point>` in the environment makes the process
//! kill itself with SIGKILL the first time it passes that point, exactly as an operator's `kill -9` or
//! a node failure would land there. Unset (always, outside the tests) it does nothing.
//!
//! The points, in the life of an agreement: `stored` (its signature's event is recorded), `deployed`
//! (its conference runs), `sent-activate` (the activation is broadcast, its receipt not yet seen),
//! `undeployed` (its conference is removed), `sent-settle` (the settlement is broadcast).

use std::sync::OnceLock;

/// Dies here with SIGKILL if the environment names this point.
pub fn crash_point(point: &str) {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    if CRASH_AT.get_or_init(|| std::env::var("CONFERENCE_CRASH_AT").ok()).as_deref() == Some(point) {
        tracing::warn!(point, "crash point reached: SIGKILL");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
