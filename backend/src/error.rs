//! The crate's one error type.

use std::fmt::Display;

/// Everything that can go wrong in the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    #[error("chain: {0}")]
    Chain(String),

    #[error("conference orchestrator: {0}")]
    Orchestrator(String),

    /// No cluster can take the conference (its constraints, or no room): nothing was deployed.
    #[error("placement: {0}")]
    NoPlacement(String),

    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),

    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// A short, stable label per variant, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Database(_) => "database",
            Error::Migration(_) => "migration",
            Error::Chain(_) => "chain",
            Error::Orchestrator(_) => "orchestrator",
            Error::NoPlacement(_) => "placement",
            Error::Io(_) => "io",
            Error::Config(_) => "config",
        }
    }

    /// Wraps any chain-side error (transport, RPC, contract, decoding).
    pub fn chain(err: impl Display) -> Self {
        Error::Chain(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
