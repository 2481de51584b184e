//! pglab: a self-hosted, web-based interactive PostgreSQL course server.
//!
//! The modules map the parts of the product (see `docs/architecture.md`):
//! - [`cli`] and [`config`]: the command line and its settings ([`settings`]:
//!   switches and secrets every area's settings share);
//! - [`startup`]: builds the application, binds the listener, serves;
//! - [`store`]: the app's own SQLite store (users, progress, sandbox records);
//! - [`course`]: loading and rendering course sections;
//! - [`console`]: learners' SQL sessions, psql-faithful results;
//! - [`labs`]: section 14's server-side labs (traffic, leak, monitor, volume demo);
//! - [`explain`]: query plans (EXPLAIN parsing, analysis, findings, HTML, compare);
//! - [`sandbox`]: per-learner PostgreSQL servers (Docker or local processes);
//! - [`web`]: HTTP routes, one file per area, thin over the modules above;
//! - [`metrics`]: Prometheus metrics every module updates;
//! - [`ops`]: backup/restore, the data dir lock, logging, reverse proxy.

//! - [`auth`]: accounts, sessions, classrooms and sign-in rate limits;
//! - [`web`]: HTTP routes, one file per area, thin over the modules above.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod course;
pub mod dumps;
pub mod labs;
pub mod metrics;
pub mod ops;

pub mod explain;
pub mod progress;
pub mod sandbox;
pub mod settings;
pub mod startup;
pub mod store;
pub mod terminal;
pub mod web;
