//! What every handler reads: one cloneable context.

use std::sync::Arc;

use super::{limits::Guards, progress::ProgressFeed, public::PublicConfig, siwe::SignIn};
use crate::{chain::Chain, health::Health, metrics::Metrics, store::Store, tokens::JoinTokens};

/// What the handlers read: the store, the public facts, the operations side (metrics, readiness), and
/// the issuer of join tokens.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub public: PublicConfig,
    pub metrics: Metrics,
    pub health: Health,
    pub join_tokens: JoinTokens,
    /// What Sign-In with Ethereum messages must name (the private routes take its sessions).
    pub signin: SignIn,
    /// The limits on what clients may hold, with their state.
    pub guards: Arc<Guards>,
    /// What the progress streams follow ([`ProgressFeed::run`] must run beside the API).
    pub progress: Arc<ProgressFeed>,
    /// The escrow, read (never written) to check customers' orders before they are kept; None where the
    /// API runs without a chain (tests), and `POST /api/orders` answers 503.
    pub chain: Option<Chain>,
}
