//! Shared core of bedrock-cmk-guard.
//!
//! An event travels one way: [`intake`] parses it into a [`intake::Trigger`], a [`Reactor`]
//! gathers the resource as it is now, [`keys`] classifies its KMS key, [`verdict`] judges
//! (pure), the account's [`settings`] decide the plan, and [`pipeline`] acts, publishes the
//! [`finding::Finding`] through [`notify`] and returns it.

pub mod clients;
pub mod finding;
pub mod idempotency;
pub mod intake;
pub mod keys;
pub mod lambda;
pub mod notify;
pub mod pipeline;
pub mod reactor;
pub mod settings;
pub mod verdict;

pub use clients::{Context, Scope};
pub use finding::Finding;
pub use reactor::{EventSpec, GatherError, Observed, Reactor, RemediationError};
