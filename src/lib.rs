//! pglab: a self-hosted, web-based interactive PostgreSQL course server.
//!
//! The modules map the parts of the product (see `docs/architecture.md`):
//! - [`cli`] and [`config`]: the command line and its settings;
//! - [`startup`]: builds the application, binds the listener, serves;
//! - [`store`]: the app's own SQLite store (users, progress, sandbox records);
//! - [`course`]: loading and rendering course sections;
//! - [`sandbox`]: per-learner PostgreSQL servers (Docker or local processes);
//! - [`web`]: HTTP routes, one file per area, thin over the modules above;
//! - [`metrics`]: Prometheus metrics every module updates;
//! - [`ops`]: backup/restore, the data dir lock, logging, reverse proxy.

pub mod app;
pub mod cli;
pub mod config;
pub mod course;
pub mod metrics;
pub mod ops;
pub mod sandbox;
pub mod startup;
pub mod store;
pub mod web;
