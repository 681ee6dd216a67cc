//! The conference escrow backend. Follow one agreement through the modules in this order:
//! [`watcher`] (chain events → store) → [`reconciler`] (what must happen next) → [`placement`] (which
//! cluster) and [`orchestrator`] (local rooms, or Jitsi pods on Kubernetes) and [`settler`] (operator
//! transactions) → [`monitor`] (availability) → [`api`] (what customers and auditors read). [`service`] wires them; [`devnet`] is the local chain; [`metrics`] and
//! [`health`] are what operators read.

pub mod agreement;
pub mod api;
pub mod chain;
pub mod config;
pub mod devdb;
pub mod devnet;
pub mod error;
pub mod fault;
pub mod health;
pub mod jitsi;
pub mod lease;
pub mod metrics;
pub mod monitor;
pub mod orchestrator;
pub mod placement;
pub mod reconciler;
pub mod room;
pub mod service;
pub mod session;
pub mod settler;
pub mod store;
pub mod watcher;
pub mod web;

pub use error::{Error, Result};
