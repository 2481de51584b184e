//! Docker helpers of the tests: the guard that removes what one pglab
//! instance made on the shared engine.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

/// The sandbox image under test (`PGLAB_SANDBOX_IMAGE`, else the offline one).
pub fn image() -> String {
    std::env::var("PGLAB_SANDBOX_IMAGE").unwrap_or_else(|_| "pglab/sandbox:15".into())
}

/// A server on the Docker backend with no warm pool (every start is a
/// learner's own), running `image`, with `extra` flags after those.
pub fn server_options(image: &str, extra: &[&str]) -> super::ServerOptions {
    let mut extra_args: Vec<String> = vec![
        "--sandbox-pool".into(),
        "0".into(),
        "--sandbox-image".into(),
        image.into(),
    ];
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    super::ServerOptions {
        sandbox: "docker".into(),
        extra_args,
        ..Default::default()
    }
}

/// Removes every container (with its anonymous volumes, e.g. a throw-away
/// server's) and every named volume labelled with a pglab instance id, on
/// drop: also when the test failed. Only that instance's: other tests and
/// other servers share the engine.
pub struct DockerCleanup(pub String);

impl DockerCleanup {
    /// The guard for the server whose data dir is `data`.
    pub async fn for_data_dir(data: &std::path::Path) -> Self {
        let store = pglab::store::Store::open(&data.join("pglab.db"))
            .await
            .unwrap();
        Self(store.instance_id().await.unwrap())
    }
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let label = format!("label=pglab.instance={}", self.0);
        let ids = |args: &[&str]| -> Vec<String> {
            let out = Command::new("docker").args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        let containers = ids(&["ps", "-aq", "--filter", &label]);
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&containers)
                .output();
        }
        let volumes = ids(&["volume", "ls", "-q", "--filter", &label]);
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&volumes)
                .output();
        }
    }
}
