//! The domain: plain types and pure decisions, with no database, cluster, HTTP or chain connection in
//! them. Everything else in the crate is built on these; nothing here imports from above.
//!
//! - [`agreement`]: the agreement as the backend tracks it, the terms it was signed under, and the
//!   progress a customer sees;
//! - [`event`]: what the backend keeps of each contract event ([`event::ChainEvent`]);
//! - [`operator`]: the operator's calls on an agreement and the transactions signed for them;
//! - [`order`]: the customer's signed order that opens a conference from its account, and what it locks;
//! - [`stop`]: the customer's signed (gasless) stop;
//! - [`step`]: the reconciler's decision, [`step::next_step`], from an agreement's record and the clock;
//! - [`conference`]: what an orchestrator is asked to run, and what it reports back;
//! - [`availability`]: probes and the availability figure a settlement reports;
//! - [`placement`]: which cluster runs a conference.

pub mod agreement;
pub mod availability;
pub mod conference;
pub mod event;
pub mod operator;
pub mod order;
pub mod placement;
pub mod step;
pub mod stop;
