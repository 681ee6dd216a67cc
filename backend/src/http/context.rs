//! What every handler reads: one cloneable context.

use super::{public::PublicConfig, siwe::SignIn};
use crate::{health::Health, metrics::Metrics, store::Store, tokens::JoinTokens};

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
}
