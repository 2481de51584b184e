//! The Docker engine calls the backend makes, each with a deadline, and
//! their errors turned into [`SandboxError`]s a learner can read.
//!
//! A stopped or wedged engine must give a clear error, never a hang: bollard
//! has a per-connection timeout, and every call here is also wrapped in
//! `tokio::time::timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    RenameContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;

use crate::sandbox::SandboxError;
use crate::sandbox::progress::Reporter;

/// Deadline of quick calls (inspect, list, rename...).
const QUICK: Duration = Duration::from_secs(10);

/// A connected engine plus where it is, for messages.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    /// e.g. "unix:///var/run/docker.sock", for error messages.
    pub address: String,
    /// Set when the engine is reached over TLS (`super::connect`): the
    /// terminal's own connection needs it too.
    pub tls: Option<super::connect::EngineTls>,
}

/// The answer to "does this exist?".
pub enum Found<T> {
    Yes(T),
    No,
}

impl Engine {
    /// "Docker 20.10.24 (API 1.41)", asked of the engine; the error says
    /// why it did not answer.
    pub async fn describe(&self) -> Result<String, String> {
        match tokio::time::timeout(QUICK, self.docker.version()).await {
            Ok(Ok(v)) => Ok(format!(
                "Docker {} (API {})",
                v.version.unwrap_or_default(),
                v.api_version.unwrap_or_default()
            )),
            Ok(Err(e)) => Err(format!(
                "the engine at {} failed to answer ({e})",
                self.address
            )),
            Err(_) => Err(format!("the engine at {} does not answer", self.address)),
        }
    }

    fn unavailable(&self, what: &str, err: impl std::fmt::Display) -> SandboxError {
        SandboxError::Unavailable(format!(
            "the Docker engine at {} did not {what}: {err}",
            self.address
        ))
    }

    /// Runs one engine call with a deadline; "not found" is an answer, not
    /// an error.
    pub(crate) async fn call<T>(
        &self,
        what: &str,
        deadline: Duration,
        fut: impl Future<Output = Result<T, DockerError>>,
    ) -> Result<Found<T>, SandboxError> {
        match tokio::time::timeout(deadline, fut).await {
            Err(_) => Err(self.unavailable(what, format!("no answer within {deadline:?}"))),
            Ok(Ok(v)) => Ok(Found::Yes(v)),
            Ok(Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            })) => Ok(Found::No),
            Ok(Err(DockerError::DockerResponseServerError {
                status_code,
                message,
            })) if status_code < 500 => Err(SandboxError::Failed(format!(
                "the Docker engine refused to {what}: {message}"
            ))),
            Ok(Err(err)) => Err(self.unavailable(what, err)),
        }
    }

    pub(crate) async fn must<T>(
        &self,
        what: &str,
        deadline: Duration,
        fut: impl Future<Output = Result<T, DockerError>>,
    ) -> Result<T, SandboxError> {
        match self.call(what, deadline, fut).await? {
            Found::Yes(v) => Ok(v),
            Found::No => Err(SandboxError::Failed(format!(
                "the Docker engine could not {what}: not found"
            ))),
        }
    }

    pub async fn inspect(
        &self,
        name: &str,
    ) -> Result<Found<ContainerInspectResponse>, SandboxError> {
        self.call(
            "inspect a container",
            QUICK,
            self.docker.inspect_container(name, None),
        )
        .await
    }

    pub async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<(), SandboxError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.must(
            "create a container",
            Duration::from_secs(30),
            self.docker.create_container(Some(options), body),
        )
        .await
        .map(|_| ())
    }

    pub async fn start(&self, name: &str) -> Result<(), SandboxError> {
        self.must(
            "start a container",
            Duration::from_secs(30),
            self.docker.start_container(name, None),
        )
        .await
    }

    /// Stops (SIGINT, PostgreSQL's fast shutdown, then SIGKILL after 10 s).
    /// Gone already is fine.
    pub async fn stop(&self, name: &str) -> Result<(), SandboxError> {
        let options = StopContainerOptionsBuilder::default().t(10).build();
        self.call(
            "stop a container",
            Duration::from_secs(25),
            self.docker.stop_container(name, Some(options)),
        )
        .await
        .map(|_| ())
    }

    /// Removes a container with its anonymous volumes (a compose sandbox
    /// without a named volume keeps its data in one); named volumes are
    /// kept. Gone already is fine.
    pub async fn remove(&self, name: &str) -> Result<(), SandboxError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        self.call(
            "remove a container",
            Duration::from_secs(25),
            self.docker.remove_container(name, Some(options)),
        )
        .await
        .map(|_| ())
    }

    /// Changes the CPU limit of a container (running or not).
    pub async fn set_cpus(&self, name: &str, nano_cpus: i64) -> Result<(), SandboxError> {
        let body = bollard::models::ContainerUpdateBody {
            nano_cpus: Some(nano_cpus),
            ..Default::default()
        };
        self.must(
            "update a container",
            QUICK,
            self.docker.update_container(name, body),
        )
        .await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<(), SandboxError> {
        let options = RenameContainerOptionsBuilder::default().name(to).build();
        self.must(
            "rename a container",
            QUICK,
            self.docker.rename_container(from, options),
        )
        .await
    }

    /// Creates the named volume (creating an existing one is a no-op).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), SandboxError> {
        let body = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        self.must("create a volume", QUICK, self.docker.create_volume(body))
            .await
            .map(|_| ())
    }

    pub async fn volume_exists(&self, name: &str) -> Result<bool, SandboxError> {
        Ok(matches!(
            self.call("inspect a volume", QUICK, self.docker.inspect_volume(name))
                .await?,
            Found::Yes(_)
        ))
    }

    /// Where the volume's files are on the engine's host.
    pub async fn volume_mountpoint(&self, name: &str) -> Option<String> {
        match self
            .call("inspect a volume", QUICK, self.docker.inspect_volume(name))
            .await
        {
            Ok(Found::Yes(v)) => Some(v.mountpoint),
            _ => None,
        }
    }

    /// Removes a volume. Gone already is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), SandboxError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        self.call(
            "remove a volume",
            Duration::from_secs(25),
            self.docker.remove_volume(name, Some(options)),
        )
        .await
        .map(|_| ())
    }

    /// Names of the volumes carrying all these labels.
    pub async fn list_volumes(&self, labels: &[String]) -> Result<Vec<String>, SandboxError> {
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let answer = self
            .must(
                "list volumes",
                QUICK,
                self.docker.list_volumes(Some(options)),
            )
            .await?;
        Ok(answer
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Containers (running or not) carrying all these labels.
    pub async fn list(&self, labels: &[String]) -> Result<Vec<ContainerSummary>, SandboxError> {
        let filters: HashMap<String, Vec<String>> =
            HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.must(
            "list containers",
            QUICK,
            self.docker.list_containers(Some(options)),
        )
        .await
    }

    /// How many running containers carry all these labels.
    pub async fn count_running(&self, labels: &[String]) -> Result<usize, SandboxError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([
            ("label".to_string(), labels.to_vec()),
            ("status".to_string(), vec!["running".to_string()]),
        ]);
        let options = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        self.must(
            "list containers",
            QUICK,
            self.docker.list_containers(Some(options)),
        )
        .await
        .map(|list| list.len())
    }

    /// The last lines of a container's output, to explain a failure.
    pub async fn log_tail(&self, name: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let collect = async {
            let mut out = String::new();
            let mut logs = self.docker.logs(name, Some(options));
            while let Some(Ok(chunk)) = logs.next().await {
                out.push_str(&chunk.to_string());
            }
            out
        };
        tokio::time::timeout(QUICK, collect)
            .await
            .unwrap_or_else(|_| "(no logs: the engine did not answer)".into())
            .trim()
            .to_string()
    }

    /// Memory the container uses now (engine stats, minus page cache as
    /// `docker stats` shows it).
    pub async fn memory_bytes(&self, name: &str) -> Option<u64> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = self.docker.stats(name, Some(options));
        let s = tokio::time::timeout(QUICK, stats.next())
            .await
            .ok()??
            .ok()?;
        let mem = s.memory_stats?;
        let usage = mem.usage?;
        let cache = mem
            .stats
            .as_ref()
            .and_then(|m| {
                m.get("total_inactive_file")
                    .or_else(|| m.get("inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        Some(usage.saturating_sub(cache))
    }

    /// Whether the image is present locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, SandboxError> {
        Ok(matches!(
            self.call("inspect an image", QUICK, self.docker.inspect_image(image))
                .await?,
            Found::Yes(_)
        ))
    }

    /// The id (`sha256:...`) the image name points to now, if present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, SandboxError> {
        Ok(
            match self
                .call("inspect an image", QUICK, self.docker.inspect_image(image))
                .await?
            {
                Found::Yes(info) => info.id,
                Found::No => None,
            },
        )
    }

    /// Pulls the image from its registry, reporting progress.
    pub async fn pull(&self, image: &str, rep: &Reporter<'_>) -> Result<(), String> {
        let (repo, tag) = split_image(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(repo)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        let mut last = String::new();
        let pull = async {
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| e.to_string())?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(err);
                }
                let mut line = [info.id, info.status]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Some(d) = info.progress_detail
                    && let (Some(cur), Some(total)) = (d.current, d.total)
                    && total > 0
                {
                    line.push_str(&format!(" {}%", cur * 100 / total));
                }
                if !line.is_empty() && line != last {
                    rep.step("pulling image", format!("pulling {image}: {line}"));
                    last = line;
                }
            }
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(900), pull)
            .await
            .map_err(|_| "the pull did not finish within 15 minutes".to_string())?
    }
}

/// `repo:tag` (tag defaults to `latest`; a registry port is not a tag).
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_names_split_into_repo_and_tag() {
        assert_eq!(split_image("pglab/sandbox:15"), ("pglab/sandbox", "15"));
        assert_eq!(split_image("postgres"), ("postgres", "latest"));
        assert_eq!(
            split_image("registry:5000/pg"),
            ("registry:5000/pg", "latest")
        );
    }
}
