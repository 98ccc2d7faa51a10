//! `barong`: a Barong-compatible auth gateway. See the README for the map of the code:
//! `authz` (the decision path), `api` (REST, one module per Barong namespace), `domain` (types
//! and rules, no I/O), `store` (one trait, SQLite and PostgreSQL), `crypto` (keys, hashing),
//! `config` (settings), `server` (listeners and lifecycle), `cli` (the `barong` command).

pub mod api;
pub mod authz;
pub mod captcha;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod import;
pub mod invalidation;
pub mod keys;
pub mod kyc;
pub mod limits;
pub mod mail;
pub mod memory;
pub mod observe;
pub mod seed;
pub mod server;
pub mod service;
pub mod sms;
pub mod snapshot;
pub mod store;
pub mod uploads;
