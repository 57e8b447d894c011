//! pairbench: run every local × remote pair of client/server test scripts, on this machine
//! or over SSH, and keep a result tree of SUCCESS/FAILED/ERROR pairs with logs and tables.

pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod console;
pub mod contain;
pub mod control;
pub mod discover;
pub mod exit_status;
pub mod group_toml;
pub mod helpers;
pub mod hostinfo;
pub mod interrupt;
pub mod inventory;
pub mod list;
pub mod merge;
pub mod outcome;
pub mod plan;
pub mod process;
pub mod report;
pub mod runner;
pub mod sample;
pub mod skeleton;
pub mod slurm;
pub mod sockets;
pub mod stats;
pub mod terminal;
pub mod testbed;
pub mod trace;
pub mod transport;
pub mod tree;
