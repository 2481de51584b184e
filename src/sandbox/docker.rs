//! The Docker backend (filled in next).

use std::sync::Arc;

use super::Provisioner;
use crate::config::ServeConfig;
use crate::store::Store;

/// Connects to the engine and returns the Docker provisioner, or says why not.
pub async fn connect(
    _c: &ServeConfig,
    _s: &Store,
    _i: String,
) -> Result<Arc<dyn Provisioner>, String> {
    Err("the Docker backend is not built yet".into())
}
