//! The conference escrow backend, in layers whose imports only point down (`backend/README.md`;
//! `tests/layers.rs` fails on an import that points up or closes a circle):
//!
//! 1. [`domain`]: plain types and pure decisions (the agreement, events, operator calls, the next
//!    step, placement), with [`error`], [`config`] (the command line), [`fault`] (crash points) and [`signal`];
//! 2. adapters: [`chain`] (the node and the contracts), [`store`] (SQLite or PostgreSQL),
//!    [`orchestrator`] (local rooms, Jitsi pods on Kubernetes, no-op), [`http`] (the API and the web
//!    app), with [`tokens`] (join tokens), [`metrics`], [`health`] and [`wake`];
//! 3. the loops: [`watcher`] (chain events → store) → [`reconciler`] (what must happen next: deploy,
//!    activate, end, undeploy, settle) → [`settler`] (operator transactions) and [`monitor`]
//!    (availability), with [`lease`] (one leader among replicas); and [`attestor`], the independent
//!    monitor's loop (its own probes of its offers' conferences, and the reports it signs);
//! 4. [`service`], which wires them, [`monitor_process`], which wires the independent monitor's own
//!    process (`conference-backend monitor`), and [`dev`] (the local chain and database).

pub mod attestor;
pub mod chain;
pub mod config;
pub mod dev;
pub mod domain;
pub mod error;
pub mod fault;
pub mod health;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod monitor;
pub mod monitor_process;
pub mod orchestrator;
pub mod reconciler;
pub mod service;
pub mod settler;
pub mod signal;
pub mod store;
pub mod tokens;
pub mod wake;
pub mod watcher;

pub use error::{Error, Result};
