//! End-to-end tests live in `tests/e2e_*.rs`; this crate has no library code of its own.
