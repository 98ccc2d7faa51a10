//! The integration tests, in one binary (one link of the crate instead of one per file): each
//! module is one area, run against the real `barong` binary on loopback ports, on SQLite and on
//! PostgreSQL, and through the real nginx and Envoy where a gateway is involved.
//!
//! `cargo test --test it authz::` runs one module; `scripts/test -- --test it authz::` does the
//! set-up first.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

// The shared harness stays beside the test directories it has always lived in: its Python
// helpers and fixtures are found by path at run time.
#[macro_use]
#[path = "../common/mod.rs"]
mod common;
#[path = "../mgmt_support/mod.rs"]
mod mgmt_support;
#[path = "../support/mod.rs"]
mod support;

mod admin;
mod admin_cli;
mod authz;
mod cli;
mod events;
mod faults;
mod fuzz_replay;
mod gateways;
mod gateways_admin;
mod gateways_grpc;
mod gateways_journey;
mod gateways_paths;
mod gateways_request_id;
mod hardening;
mod identity;
mod journey;
mod keys;
mod kyc_documents;
mod kyc_profiles;
mod limits;
mod management;
mod memory;
mod openapi;
mod passkeys;
mod passkeys_browser;
mod passkeys_storage;
mod public_api;
mod resource;
mod sessions;
mod storage;
mod tls;
mod tokens;
mod users_import;
