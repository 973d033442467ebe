//! Mudmap's integration tests, in one test binary: each former `tests/*.rs` file is a module.
//!
//! One binary instead of one per file: every integration-test binary links the whole server, so
//! nine of them cost nine links and several gigabytes of `target/` (CI once ran out of disk).
//! nextest still runs every test in its own process, so tests stay isolated from one another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

mod accounts;
mod activation;
mod agent_conformance;
mod cli;
mod engine;
mod groups;
mod http;
mod jobs;
mod mail_crash;
mod monitor;
mod openssh;
mod store_contract;
