//! Shared core of bedrock-cmk-guard.
//!
//! An event travels one way: [`intake`] parses it into a [`intake::Trigger`], a [`Reactor`]
//! gathers the resource as it is now (every encrypted part of it), [`keys`] classifies each
//! KMS key, [`verdict`] and [`decide`] judge and plan (pure), and [`pipeline`] acts, tells
//! what is news through [`notify`], records it in the [`ledger`] and returns the
//! [`finding::Finding`].

pub mod aws;
pub mod clients;
pub mod decide;
pub mod finding;
pub mod intake;
pub mod job_fix;
pub mod jobs;
pub mod keys;
pub mod lambda;
pub mod ledger;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod raw;
pub mod reactor;
pub mod settings;
pub mod verdict;

pub use aws::AwsError;
pub use clients::{Context, Scope};
pub use finding::Finding;
pub use intake::Named;
pub use reactor::{
    EventSpec, Fix, FixEffect, FixError, Fixed, Found, Names, Observed, Protection, Reactor,
    Subject,
};
