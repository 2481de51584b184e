//! Running pglab as a service: what an operator needs beside the web app.
//!
//! - [`backup`]: `pglab backup` / `pglab restore` of the SQLite store;
//! - [`lock`]: the data dir lock (`<data-dir>/pglab.pid`) that keeps two
//!   servers, or a server and a restore, off one store;
//! - [`logging`]: text or JSON logs, and the HTTP trace layer that never logs
//!   headers, cookies or query strings;
//! - [`proxy`]: behind a reverse proxy: `X-Forwarded-Proto` and the public URL;
//! - [`healthcheck`]: `pglab healthcheck`, the probe of the container image.

pub mod backup;
pub mod healthcheck;
pub mod lock;
pub mod logging;
pub mod proxy;
