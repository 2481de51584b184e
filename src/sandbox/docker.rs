//! The Docker backend: one container per learner through the Docker API
//! (bollard), the classroom default.
//!
//! - Names: container `pglab-<instance>-<learner>` (the server's instance id
//!   is in the name because container names are global to an engine and two
//!   pglab servers, or a test run, may share one); volume
//!   `pglab-<instance>-<key>` with a random key; labels `pglab.managed`,
//!   `pglab.instance`, `pglab.key` and `pglab.learner` (or `pglab.pool`).
//! - Data: a named volume at PGDATA, kept across container restarts and
//!   re-creations; only reset and destroy remove it.
//! - No network (`network_mode: none`): PostgreSQL listens on a unix socket
//!   in `<data-dir>/sockets/<key>/`, bind-mounted at /var/run/postgresql.
//!   pglab connects there with the per-sandbox random password (scram).
//! - Limits and isolation: see [`spec`].
//! - Readiness: `start` returns once PostgreSQL is the container's main
//!   process (the child of its init, docker-init) and answers `select 1` on
//!   `labdb` through the socket (polled every 25 ms, faster than the
//!   engine's health check, which the status shows).
//! - Faults: a container killed or removed behind pglab's back is started or
//!   re-created on the same volume by the next `start`; an engine that does
//!   not answer gives [`SandboxError::Unavailable`] after a deadline.
//! - Warm pool ([`pool`]): ready containers handed to new learners by rename.
//! - The swarm backend (`super::swarm`) reuses [`engine`], [`spec`] (with
//!   its compose plan), [`ready`], [`exec`] (on the task's node),
//!   [`ephemeral::Throwaways`] and [`connect`].

pub(super) mod connect;
pub(super) mod engine;
pub(super) mod ephemeral;
pub(super) mod exec;
mod hijack;
pub(super) mod inspect;
pub(super) mod logs;
mod pool;
pub(super) mod ready;
pub(super) mod spec;
pub(super) mod status;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::ContainerInspectResponse;
use sqlx::postgres::PgConnectOptions;

use engine::{Engine, Found};
use spec::ContainerSpec;

use super::compose::{self, ComposeFiles, ComposePlan};
use super::progress::{Reporter, finish_start};
use super::records::{Records, SandboxRecord};
use super::{
    BackendHealth, LAB_DB, LAB_USER, LearnerId, LearnerLocks, ProgressHub, Provisioner,
    SandboxConfig, SandboxDirs, SandboxError, SandboxKind, SandboxState, SandboxStatus,
    new_password, unix_now,
};
use crate::store::Store;

const BACKEND: &str = "docker";

/// Connects to the engine and returns the Docker provisioner, or says why
/// not (no engine, no answer, image missing under `--sandbox auto`).
pub async fn connect(
    config: &SandboxConfig,
    dirs: &SandboxDirs,
    store: &Store,
    instance: String,
) -> Result<Arc<dyn Provisioner>, String> {
    let p = DockerProvisioner::connect(config, dirs, store, instance).await?;
    Ok(Arc::new(p))
}

/// Runs learners' PostgreSQL servers as Docker containers.
pub struct DockerProvisioner {
    engine: Engine,
    spec: ContainerSpec,
    instance: String,
    sockets: PathBuf,
    /// The course's folder: its lab files are copied into each terminal's
    /// container (`labfiles`).
    content_dir: PathBuf,
    pool_size: usize,
    records: Records,
    /// Learners' compose files: the settings a compose up put in force are
    /// read at every creation of the learner's container.
    compose: ComposeFiles,
    locks: LearnerLocks,
    hub: ProgressHub,
    /// "Docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock".
    engine_desc: String,
    /// The image was seen present (checked again when a create fails).
    image_ok: AtomicBool,
    /// Containers seen ready: name → the `StartedAt` of that run. A start
    /// of a running container found here skips the readiness probe.
    ready: std::sync::Mutex<HashMap<String, String>>,
    /// Server versions seen at readiness, by container name.
    versions: std::sync::Mutex<HashMap<String, String>>,
    /// Serialises pool takes and wakes the pool filler.
    pool_lock: tokio::sync::Mutex<()>,
    pool_wake: Arc<tokio::sync::Notify>,
    /// The 14.D.4 throw-away containers this process made, and their locks.
    ephemeral: ephemeral::Throwaways,
    ephemeral_locks: LearnerLocks,
    /// Bounds the container starts running at once (see `start_slot`).
    start_slots: tokio::sync::Semaphore,
}

/// The identity of one sandbox's container, volume and socket dir.
struct Slot {
    container: String,
    volume: String,
    key: String,
    password: String,
}

impl DockerProvisioner {
    async fn connect(
        config: &SandboxConfig,
        dirs: &SandboxDirs,
        store: &Store,
        instance: String,
    ) -> Result<Self, String> {
        let tls = connect::engine_tls(config.engine_tls.as_deref())?;
        let (docker, address) = connect::open_engine(config.docker_host.as_deref(), tls.as_ref())?;
        let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
            .await
            .map_err(|_| format!("the Docker engine at {address} does not answer"))?
            .map_err(|e| format!("no Docker engine answers at {address} ({e})"))?;
        let version = tokio::time::timeout(Duration::from_secs(5), docker.version())
            .await
            .map_err(|_| format!("the Docker engine at {address} does not answer"))?
            .map_err(|e| format!("the Docker engine at {address} failed to answer ({e})"))?;
        let engine_desc = format!(
            "Docker {} (API {}) at {address}",
            version.version.unwrap_or_default(),
            version.api_version.unwrap_or_default()
        );
        let engine = Engine {
            docker,
            tls: connect::tls_for(&address, tls.as_ref()),
            address: address.clone(),
        };
        let spec = ContainerSpec::from_config(config);
        let image_ok = engine
            .has_image(&spec.image)
            .await
            .map_err(|e| e.to_string())?;
        if !image_ok && config.kind == SandboxKind::Auto {
            return Err(format!(
                "{engine_desc} has no image {} (build it with scripts/build-sandbox-image.sh)",
                spec.image
            ));
        }
        let sockets = std::path::absolute(dirs.data_dir.join("sockets"))
            .map_err(|e| format!("bad data dir: {e}"))?;
        create_private_dir(&sockets)
            .map_err(|e| format!("cannot create {}: {e}", sockets.display()))?;
        Ok(Self {
            engine,
            spec,
            instance,
            sockets,
            content_dir: dirs.content_dir.clone(),
            pool_size: config.sandbox_pool,
            records: Records::new(store),
            compose: ComposeFiles::new(store),
            locks: LearnerLocks::default(),
            hub: ProgressHub::default(),
            engine_desc,
            image_ok: AtomicBool::new(image_ok),
            ready: Default::default(),
            versions: Default::default(),
            pool_lock: tokio::sync::Mutex::new(()),
            pool_wake: Arc::new(tokio::sync::Notify::new()),
            ephemeral: Default::default(),
            ephemeral_locks: LearnerLocks::default(),
            start_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            ),
        })
    }

    fn prefix(&self) -> String {
        format!("pglab-{}", self.instance)
    }

    fn learner_container(&self, learner: LearnerId) -> String {
        format!("{}-{learner}", self.prefix())
    }

    fn socket_dir(&self, key: &str) -> PathBuf {
        self.sockets.join(key)
    }

    fn labels(&self, key: &str, learner: Option<LearnerId>) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            ("pglab.managed".to_string(), "true".to_string()),
            ("pglab.instance".to_string(), self.instance.clone()),
            ("pglab.key".to_string(), key.to_string()),
        ]);
        match learner {
            Some(id) => labels.insert("pglab.learner".into(), id.to_string()),
            None => labels.insert("pglab.pool".into(), "true".into()),
        };
        labels
    }

    /// A new slot: fresh key, volume name and password.
    fn new_slot(&self, container: String) -> Slot {
        let key = format!("{:010x}", rand::random::<u64>() >> 24);
        Slot {
            container,
            volume: format!("{}-{key}", self.prefix()),
            key,
            password: new_password(),
        }
    }

    fn slot_of(record: &SandboxRecord) -> Slot {
        Slot {
            container: record.container.clone(),
            volume: record.volume.clone(),
            key: key_of(&record.volume).to_string(),
            password: record.password.clone(),
        }
    }

    fn options(&self, slot: &Slot) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir(&slot.key))
            .username(LAB_USER)
            .password(&slot.password)
            .database(LAB_DB)
    }

    /// The image is there, or is pulled now (with progress), or a clear
    /// error names the offline build script.
    async fn ensure_image(&self, rep: &Reporter<'_>) -> Result<(), SandboxError> {
        if self.image_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        let image = &self.spec.image;
        if self.engine.has_image(image).await? {
            self.image_ok.store(true, Ordering::Relaxed);
            return Ok(());
        }
        rep.step("pulling image", format!("pulling {image}"));
        match self.engine.pull(image, rep).await {
            Ok(()) => {
                self.image_ok.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(why) => Err(SandboxError::Unavailable(format!(
                "the sandbox image {image} is missing and cannot be pulled ({why}); \
                 build it offline with scripts/build-sandbox-image.sh"
            ))),
        }
    }

    /// Makes sure the slot's container exists, runs and accepts connections:
    /// starts it when stopped (or killed), re-creates it on its volume when
    /// removed, creates volume and container for a new sandbox.
    async fn ensure_running(
        &self,
        slot: &Slot,
        learner: Option<LearnerId>,
        rep: &Reporter<'_>,
    ) -> Result<(), SandboxError> {
        let socket_dir = self.socket_dir(&slot.key);
        // The learner's compose settings, if a compose up put some in force.
        let plan = match learner {
            Some(id) => self.compose.applied(id).await?,
            None => None,
        };
        let image = plan.as_ref().map_or(&self.spec.image, |p| &p.image).clone();
        let target_cpus = plan
            .as_ref()
            .and_then(|p| p.nano_cpus)
            .unwrap_or(self.spec.nano_cpus);
        // The named volume at PGDATA: pglab's, the learner's, or none.
        let data_volume = compose::data_volume(plan.as_ref(), &slot.volume);
        let mut first_start = false;
        // Whether the container may run without its CPU limit right now.
        let mut cpu_burst = false;
        // Held from the container's start until it is ready.
        let mut _start_slot = None;
        let mut existing = self.engine.inspect(&slot.container).await?;
        if let Found::Yes(info) = &existing
            && info.state.as_ref().and_then(|s| s.running) != Some(true)
            && self.made_from_another_image(info, &image).await
        {
            // The image was upgraded (e.g. a new PostgreSQL minor version):
            // a stopped container is re-created from it on its volume.
            rep.step(
                "upgrading",
                "the sandbox image changed: re-creating the container on its volume",
            );
            self.engine.remove(&slot.container).await?;
            existing = Found::No;
        }
        match existing {
            Found::Yes(info) => {
                cpu_burst = info.host_config.and_then(|h| h.nano_cpus) != Some(target_cpus);
                let state = info.state.unwrap_or_default();
                if state.running == Some(true) {
                    let started = state.started_at.unwrap_or_default();
                    if self.is_ready(&slot.container, &started) {
                        return Ok(());
                    }
                } else {
                    _start_slot = Some(self.start_slot(rep).await?);
                    rep.step("starting", "starting the sandbox container");
                    prepare_socket_dir(&socket_dir)?;
                    self.engine.start(&slot.container).await?;
                }
            }
            Found::No => {
                _start_slot = Some(self.start_slot(rep).await?);
                if image == self.spec.image {
                    self.ensure_image(rep).await?;
                } else if !self.engine.has_image(&image).await? {
                    return Err(SandboxError::Unavailable(format!(
                        "the image {image} of your compose file is not on this engine"
                    )));
                }
                first_start = match &data_volume {
                    Some(volume) => !self.engine.volume_exists(volume).await?,
                    None => true,
                };
                if first_start && let Some(volume) = &data_volume {
                    rep.step("creating volume", format!("Volume \"{volume}\" creating"));
                    self.engine
                        .create_volume(volume, self.labels(&slot.key, learner))
                        .await?;
                }
                prepare_socket_dir(&socket_dir)?;
                rep.step(
                    "creating container",
                    format!("Container {} creating", slot.container),
                );
                let mut body = self.spec.body(
                    self.labels(&slot.key, learner),
                    &slot.volume,
                    &socket_dir,
                    &slot.password,
                );
                if let Some(plan) = &plan {
                    spec::apply_plan(&mut body, plan, data_volume.as_deref());
                }
                if first_start && let Some(host) = body.host_config.as_mut() {
                    // initdb is CPU-bound (~1 s of CPU): under a 0.5 CPU
                    // limit it alone would take 2 s. The first start runs
                    // unthrottled; the limit applies as soon as it is ready.
                    host.nano_cpus = None;
                    cpu_burst = true;
                }
                if let Err(err) = self.engine.create(&slot.container, body).await {
                    // The image may have been removed since we looked.
                    self.image_ok.store(false, Ordering::Relaxed);
                    return Err(err);
                }
                self.engine.start(&slot.container).await?;
            }
        }
        if first_start {
            rep.step("initdb", "initialising a new PostgreSQL cluster (initdb)");
        }
        rep.step(
            "waiting for healthy",
            "waiting for PostgreSQL to accept connections",
        );
        let ready = ready::wait(&self.engine, &slot.container, &self.options(slot)).await?;
        if cpu_burst {
            self.engine.set_cpus(&slot.container, target_cpus).await?;
        }
        self.mark_ready(&slot.container, ready.started_at, ready.version);
        Ok(())
    }

    /// Whether the container was made from another image than the one the
    /// configured name points to now (unknown counts as no).
    async fn made_from_another_image(&self, info: &ContainerInspectResponse, image: &str) -> bool {
        let Ok(Some(current)) = self.engine.image_id(image).await else {
            return false;
        };
        info.image.as_deref().is_some_and(|had| had != current)
    }

    /// Waits for one of the start slots: at most one start per core (2 to
    /// 8) runs at once. A class pressing "start" together (200 learners in
    /// 3 s) otherwise had 159 containers starting on 2 cores, engine calls
    /// timing out after 30 s and the running cap unable to keep up; queued,
    /// each start stays quick and the queue says so.
    async fn start_slot(
        &self,
        rep: &Reporter<'_>,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, SandboxError> {
        if let Ok(permit) = self.start_slots.try_acquire() {
            return Ok(permit);
        }
        rep.step(
            "queued",
            "waiting for a free start slot: other sandboxes are starting",
        );
        self.start_slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Failed("the start slots are closed".into()))
    }

    fn is_ready(&self, container: &str, started_at: &str) -> bool {
        let map = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        map.get(container).is_some_and(|s| s == started_at)
    }

    /// Whether pglab's probe saw this container ready (in any run of it).
    fn seen_ready(&self, container: &str) -> bool {
        let map = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        map.contains_key(container)
    }

    fn mark_ready(&self, container: &str, started_at: String, version: String) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_string(), started_at);
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_string(), version);
    }

    fn rename_ready(&self, from: &str, to: &str) {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(started) = ready.remove(from) {
            ready.insert(to.to_string(), started);
        }
        drop(ready);
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = versions.remove(from) {
            versions.insert(to.to_string(), v);
        }
    }

    fn forget_ready(&self, container: &str) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container);
    }

    /// Start with the learner's lock held.
    async fn start_locked(
        &self,
        learner: LearnerId,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        let record = match self.records.get(learner).await? {
            Some(r) => r,
            None => match self.take_from_pool(learner).await? {
                Some(r) => {
                    rep.step("assigned", "took a ready sandbox from the warm pool");
                    r
                }
                None => self.new_record(learner).await?,
            },
        };
        let slot = Self::slot_of(&record);
        if record.state != SandboxState::Running.as_str() {
            self.records
                .set_state(learner, SandboxState::Starting)
                .await?;
        }
        self.ensure_running(&slot, Some(learner), rep).await?;
        self.records.touch(learner).await?;
        Ok(self.options(&slot))
    }

    async fn new_record(&self, learner: LearnerId) -> Result<SandboxRecord, SandboxError> {
        let slot = self.new_slot(self.learner_container(learner));
        let now = unix_now();
        let record = SandboxRecord {
            learner_id: learner,
            backend: BACKEND.into(),
            container: slot.container,
            volume: slot.volume,
            password: slot.password,
            state: SandboxState::Absent.as_str().into(),
            created_at: now,
            last_used: now,
        };
        self.records.put(&record).await?;
        Ok(record)
    }

    async fn stop_locked(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Ok(());
        };
        self.forget_ready(&record.container);
        self.engine.stop(&record.container).await?;
        self.records.set_state(learner, SandboxState::Stopped).await
    }

    /// Removes container, volumes (pglab's and those of compose files) and
    /// socket dir of a sandbox.
    async fn remove_slot(&self, slot: &Slot) -> Result<(), SandboxError> {
        self.forget_ready(&slot.container);
        self.engine.remove(&slot.container).await?;
        self.engine.remove_volume(&slot.volume).await?;
        let labelled = self
            .engine
            .list_volumes(&[
                format!("pglab.instance={}", self.instance),
                format!("pglab.key={}", slot.key),
            ])
            .await?;
        for volume in labelled {
            self.engine.remove_volume(&volume).await?;
        }
        let _ = tokio::fs::remove_dir_all(self.socket_dir(&slot.key)).await;
        Ok(())
    }

    async fn remove_locked(&self, learner: LearnerId) -> Result<(), SandboxError> {
        if let Some(record) = self.records.get(learner).await? {
            self.remove_slot(&Self::slot_of(&record)).await?;
            self.records.delete(learner).await?;
        }
        // A container made for this learner but never recorded.
        self.engine.remove(&self.learner_container(learner)).await
    }

    /// Re-creates the learner's container with the settings in force
    /// (the learner's compose plan or pglab's), lock held.
    async fn compose_up_locked(
        &self,
        learner: LearnerId,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        if let Some(record) = self.records.get(learner).await? {
            rep.step(
                "removing",
                format!("Container {} recreate", record.container),
            );
            self.forget_ready(&record.container);
            self.engine.remove(&record.container).await?;
        }
        self.start_locked(learner, rep).await
    }

    /// `docker compose down [--volumes]`, lock held.
    async fn compose_down_locked(
        &self,
        learner: LearnerId,
        plan: Option<ComposePlan>,
        volumes: bool,
    ) -> Result<(), SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Ok(());
        };
        let slot = Self::slot_of(&record);
        self.forget_ready(&slot.container);
        self.engine.remove(&slot.container).await?;
        if volumes && let Some(volume) = compose::data_volume(plan.as_ref(), &slot.volume) {
            self.engine.remove_volume(&volume).await?;
        }
        self.records.set_state(learner, SandboxState::Stopped).await
    }

    /// The engine's memory figure for a learner's container (benchmarks).
    pub async fn memory_bytes(&self, learner: LearnerId) -> Option<u64> {
        let record = self.records.get(learner).await.ok()??;
        self.engine.memory_bytes(&record.container).await
    }
}

#[async_trait]
impl Provisioner for DockerProvisioner {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    async fn health(&self) -> BackendHealth {
        let ping = tokio::time::timeout(Duration::from_secs(3), self.engine.docker.ping()).await;
        let (usable, reason) = match ping {
            Ok(Ok(_)) if self.image_ok.load(Ordering::Relaxed) => (
                true,
                format!("{} with image {}", self.engine_desc, self.spec.image),
            ),
            Ok(Ok(_)) => (
                true,
                format!(
                    "{} without image {} yet: the first start pulls it, or build it with scripts/build-sandbox-image.sh",
                    self.engine_desc, self.spec.image
                ),
            ),
            Ok(Err(e)) => (
                false,
                format!("the Docker engine at {} fails: {e}", self.engine.address),
            ),
            Err(_) => (
                false,
                format!(
                    "the Docker engine at {} does not answer",
                    self.engine.address
                ),
            ),
        };
        BackendHealth {
            backend: BACKEND,
            usable,
            reason,
        }
    }

    async fn start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        let result = self.start_locked(learner, &rep).await;
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError> {
        Ok(match self.records.get(learner).await? {
            Some(record) => self.describe(learner, &record).await,
            None => SandboxStatus::bare(learner, BACKEND, SandboxState::Absent, None),
        })
    }

    async fn stop(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.locks.lock(learner).await;
        self.stop_locked(learner).await
    }

    async fn restart(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("stopping", "stopping PostgreSQL");
        let result = match self.stop_locked(learner).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn reset(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("removing", "removing the old container and its data");
        let result = match self.remove_locked(learner).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn destroy(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.locks.lock(learner).await;
        self.remove_ephemeral(learner).await?;
        self.remove_locked(learner).await
    }

    fn runs_compose(&self) -> bool {
        true
    }

    async fn compose_up(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        let result = self.compose_up_locked(learner, &rep).await;
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn compose_down(&self, learner: LearnerId, volumes: bool) -> Result<(), SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let plan = self.compose.applied(learner).await?;
        self.compose_down_locked(learner, plan, volumes).await
    }

    async fn ephemeral_start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        self.start_ephemeral(learner).await
    }

    async fn ephemeral_remove(&self, learner: LearnerId) -> Result<(), SandboxError> {
        self.remove_ephemeral(learner).await
    }

    async fn list(&self) -> Result<Vec<SandboxStatus>, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            out.push(self.describe(r.learner_id, r).await);
        }
        // Containers of this instance made for a learner but without a
        // record (e.g. a store restored from an older backup).
        let labelled = self
            .engine
            .list(&[format!("pglab.instance={}", self.instance)])
            .await?;
        for c in labelled {
            let labels = c.labels.clone().unwrap_or_default();
            if let Some(learner) = labels.get("pglab.ephemeral").and_then(|l| l.parse().ok()) {
                out.push(ephemeral::listed(learner, &c));
                continue;
            }
            let Some(learner) = labels.get("pglab.learner").and_then(|l| l.parse().ok()) else {
                continue;
            };
            if records.iter().any(|r| r.learner_id == learner) {
                continue;
            }
            let mut status = SandboxStatus::bare(
                learner,
                BACKEND,
                if c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING) {
                    SandboxState::Running
                } else {
                    SandboxState::Stopped
                },
                Some("no record in the store".into()),
            );
            status.name = c
                .names
                .and_then(|n| n.first().map(|s| s.trim_start_matches('/').to_string()));
            out.push(status);
        }
        Ok(out)
    }

    async fn states(&self) -> Result<Vec<(LearnerId, SandboxState)>, SandboxError> {
        DockerProvisioner::states(self).await
    }

    async fn running_count(&self) -> Result<usize, SandboxError> {
        self.engine
            .count_running(&[
                format!("pglab.instance={}", self.instance),
                "pglab.learner".to_string(),
            ])
            .await
    }

    fn progress(&self) -> &ProgressHub {
        &self.hub
    }

    async fn open_terminal(
        &self,
        learner: LearnerId,
        size: super::TerminalSize,
    ) -> Result<super::Terminal, SandboxError> {
        self.exec_terminal(learner, size).await
    }

    async fn run_tool(
        &self,
        learner: LearnerId,
        run: super::ToolRun,
    ) -> Result<super::ToolOutput, SandboxError> {
        self.exec_tool(learner, run).await
    }

    async fn log_follow(
        &self,
        learner: LearnerId,
        after: Option<String>,
        tail: usize,
    ) -> Result<super::log::LogStream, SandboxError> {
        self.follow_log(learner, after, tail).await
    }

    async fn inspect(&self, learner: LearnerId) -> Result<serde_json::Value, SandboxError> {
        self.inspect_container(learner).await
    }

    fn start_background(self: Arc<Self>) {
        let sweeper = self.clone();
        tokio::spawn(async move { sweeper.sweep_ephemerals().await });
        if self.pool_size > 0 {
            tokio::spawn(pool::run(self));
        }
    }
}

/// The random key at the end of a volume name.
fn key_of(volume: &str) -> &str {
    volume.rsplit('-').next().unwrap_or(volume)
}

/// `<data-dir>/sockets`: only pglab's OS user may enter it, so no other
/// local user reaches a sandbox's socket.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Creates the socket dir and removes a socket and lock file left behind by
/// a killed server, so that polling never reaches a dead socket.
fn prepare_socket_dir(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| SandboxError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    for name in [".s.PGSQL.5432", ".s.PGSQL.5432.lock"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn the_key_is_the_volume_suffix() {
        assert_eq!(key_of("pglab-0123-abcdef0123"), "abcdef0123");
    }
}
