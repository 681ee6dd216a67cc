//! The crate's one error type.

/// Everything that can go wrong in the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// The node, a contract call or a decoding failed; the cause is kept as the source.
    #[error("chain: {0}")]
    Chain(#[source] BoxError),

    /// Starting, finding or removing a conference failed; the cause is kept as the source.
    #[error("conference orchestrator: {0}")]
    Orchestrator(#[source] BoxError),

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

    /// Wraps any chain-side error (transport, RPC, contract, decoding), keeping it as the source.
    pub fn chain(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Chain(Box::new(err))
    }

    /// An orchestrator's error while `doing` something, keeping `err` as the source.
    pub fn orchestrator(doing: impl Into<String>, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Orchestrator(Box::new(Caused { doing: doing.into(), source: Box::new(err) }))
    }
}

/// Any error, boxed: the cause an [`Error`] keeps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What was being done when `source` happened. Its text carries the source's too, so that a log line
/// of the error alone says everything; the source stays reachable for whoever walks the chain.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct Caused {
    doing: String,
    #[source]
    source: BoxError,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
