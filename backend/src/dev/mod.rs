//! What the local stack and the tests run beside the service: a fresh chain with the contracts
//! ([`devnet`], for `make run`, the demo and the tests) and a private PostgreSQL server ([`devdb`]).

pub mod devdb;
pub mod devnet;

pub use crate::orchestrator::local::free_loopback_port;
