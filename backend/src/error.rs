//! The crate's one error type.

/// Everything that can go wrong in the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {}", redact_urls_in(&.0.to_string()))]
    Database(#[from] sqlx::Error),

    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// The node, a contract call or a decoding failed; the cause is kept as the source. The text has
    /// the credentials of any URL in it redacted (a node's URL may carry a key).
    #[error("chain: {}", redact_urls_in(&.0.to_string()))]
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

/// `url` fit to be printed: its user information (a password) and its query (an API key) replaced by
/// `***`. Every URL the service names in a log line or an error goes through this.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        // Not a URL: keep only what precedes anything that could be a credential.
        let cut = url.find(['@', '?']).unwrap_or(url.len());
        return if cut < url.len() { format!("{}***", &url[..cut]) } else { url.to_owned() };
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        parsed.set_query(Some("***"));
    }
    parsed.to_string()
}

/// `text` with every URL in it passed through [`redact_url`].
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters (and +.-) just before "://".
        let scheme_start =
            rest[..at].rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c))).map_or(0, |i| i + 1);
        let end =
            rest[at..].find(|c: char| c.is_whitespace() || "\"'<>()[],`".contains(c)).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_printed_without_credentials() {
        assert_eq!(redact_url("http://user:secret@node.example/v1?apikey=k"), "http://***@node.example/v1?***");
        assert_eq!(redact_url("postgres://app:pw@db:5432/conference"), "postgres://***@db:5432/conference");
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545/");
        assert_eq!(redact_url("postgress//app:pw@db"), "postgress//app:pw***");
        let text = "error sending request for url (https://a:b@rpc.example/?key=1): timed out";
        assert_eq!(redact_urls_in(text), "error sending request for url (https://***@rpc.example/?***): timed out");
        let err = Error::Chain("connecting to wss://rpc.example/ws?key=s3cret failed".into());
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
