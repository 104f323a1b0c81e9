//! Strategies and helpers shared by the property tests, one concept per module; every item is
//! re-exported here, so a test names it `common::…` whichever module holds it.
//!
//! - [`pools`]: the tiny pools generated values are drawn from (replicas, keys, credentials,
//!   twin paths, metadata names), and devices tests name themselves.
//! - [`history`]: a history as abstract steps ([`Plan`]), valid by construction, and what
//!   running it leaves ([`World`], [`History`]).
//! - [`writes`]: how an abstract write lands on a replica's current state, and performing it.
//! - [`strategies`]: the proptest configuration and the strategies for every value above.
//! - [`fork`]: stale forks, for the security properties.
//! - [`held`]: credentials as a device holds them (the kind its type does not use unknown).
//! - [`states`]: a state's bytes, comparing states by them, and a delta carried as an event.
//! - [`reader_inputs`]: fixed inputs for the readers' tests, and a secret no reader's error may
//!   show.

#![allow(dead_code)] // every test binary uses its own part of this module

mod fork;
mod held;
mod history;
mod pools;
mod reader_inputs;
mod states;
mod strategies;
mod writes;

// Each test binary uses its own part of these re-exports (as of the items: `dead_code` above).
#[allow(unused_imports)]
pub use self::{
    fork::*, held::*, history::*, pools::*, reader_inputs::*, states::*, strategies::*, writes::*,
};

// Seeded shuffles (`tests/support/rng.rs`, shared with the generated data and the benches).
#[path = "../support/rng.rs"]
mod rng;
pub use rng::Rng;
