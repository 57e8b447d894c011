//! The result tree, owned here alone: where everything lives ([`layout`]: the tag, group,
//! pair, variant, staging, hooks and attempts folders, reserved names, the default tag),
//! the records ([`record`]), committing a pair ([`commit`]), the tables ([`tables`]),
//! `run.json` ([`manifest`]), the one walker ([`walk`]), the tag lock and `latest`
//! ([`lock`]), and file access that never follows a link ([`nofollow`]).
//! See the README, "The result tree".

pub mod commit;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod nofollow;
pub mod record;
pub mod tables;
pub mod walk;

pub use commit::WriteError;
pub use layout::{Tree, pair_name};
pub use record::{Counts, Ended, MetricRow, PairRecord, Status};
