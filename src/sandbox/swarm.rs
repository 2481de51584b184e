//! The swarm backend: one Docker Swarm service per learner, spread over the
//! swarm's nodes (`--sandbox swarm`, `--docker-host` naming a manager).
//!
//! - Names: service `pglab-<instance>-<learner>`, volume
//!   `pglab-<instance>-<key>` (random key), labels `pglab.managed`,
//!   `pglab.instance`, `pglab.key`, `pglab.learner` and `pglab.node` on the
//!   service, its container and its volume.
//! - What runs: [`service`] (the Docker backend's image, environment, users,
//!   scram password, PostgreSQL settings, health check and limits, or the
//!   learner's compose plan applied to them), one replica, restart policy
//!   `any` (or the plan's), endpoint mode `dnsrr`, on the attachable
//!   overlay `--swarm-network` (so a pglab deployed as a container can reach
//!   the services by name), the named volume at PGDATA (or the plan's, or
//!   none).
//! - How pglab reaches it (`--swarm-reach`): a pglab on a host cannot join
//!   an overlay, so by default (`published`) PostgreSQL's port is published
//!   in `mode=host` on its node, on a port the engine picks, read back from
//!   the running task's port status, at the node's address (its
//!   `pglab.address` label, else its swarm address). A pglab deployed as a
//!   service on the overlay (`overlay`, deploy/swarm/pglab-stack.yml) reaches
//!   each sandbox by its service name on port 5432 and publishes nothing.
//! - Placement ([`placement`]): a node runs at most its capacity of
//!   sandboxes at once (`pglab.capacity` node label, else
//!   `--swarm-node-capacity`), the swarm at most `--sandbox-max-running`; a
//!   new learner goes to the ready, active node with a running place and the
//!   most free places; the service is then pinned to that node
//!   (`node.id==...`, recorded in its `pglab.node` label) for as long as its
//!   volume lives there. Only reset (a new volume) places it anew.
//! - Admission ([`super::admission`]): a start (new learner, or a stopped
//!   sandbox whose node is at its cap) that finds no place waits in the
//!   first-come line, hears its number through the start's progress
//!   (`queued`), and goes on by itself when a sandbox stops or is removed
//!   (or, checked every few seconds, a node or capacity is added). No
//!   running sandbox is ever stopped to make room; stop cancels a wait.
//! - Progress: the task's states (pending → assigned → preparing → starting
//!   → running) are the start's steps, then "waiting for healthy" until
//!   PostgreSQL answers over TCP.
//! - Faults: a node that is not ready makes its learners' status and starts
//!   say "the node running your sandbox is down"; the swarm starts the task
//!   again when the node is back, on the same volume. Stop is scale 0
//!   (data kept); destroy and reset remove the service and then its volumes
//!   (pglab's and those of compose files) through the node's own engine
//!   (`pglab.engine` node label; the manager's own node needs none); destroy
//!   removes the throw-away server too.
//! - On the task's node (the manager's connection, else the node's
//!   `pglab.engine` label): the terminal and tool runs (`docker exec`), the
//!   server log (the container's output, followed again when the task is
//!   re-created) and `docker inspect` of the task's container, redacted.
//! - Warm pool ([`pool`]): spare services per node with room, ready before
//!   anyone asks; a new learner takes one on their turn in line.
//! - The learner's compose file ([`compose`]): `compose up` re-creates the
//!   service on the learner's node with the plan's settings, which every
//!   later creation of the service uses too; `compose down` removes it.
//! - The 14.D.4 throw-away server ([`ephemeral`]): a second service per
//!   learner without a volume, whose data dies with its task.

mod cluster;
mod compose;
mod ephemeral;
mod placement;
mod pool;
mod service;
mod states;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::models::{Service, Task, TaskState};
use clap::{Args, ValueEnum};
use sqlx::postgres::PgConnectOptions;

use cluster::{Cluster, NodeInfo};
use service::{PG_PORT, ServiceParams, service_spec};

use super::admission::{Admission, Refused};
use super::compose::{ComposeFiles, ComposePlan, data_volume};
use super::docker::connect::{self, open_engine};
use super::docker::engine::{Engine, Found};
use super::docker::ephemeral::Throwaways;
use super::docker::exec::{self, ExecTarget};
use super::docker::inspect::inspect_redacted;
use super::docker::logs::follow_container;
use super::docker::ready::try_query;
use super::docker::spec::ContainerSpec;
use super::docker::status::parse_rfc3339;
use super::progress::{Reporter, finish_start};
use super::records::{Records, SandboxRecord};
use super::{
    BackendHealth, LAB_DB, LAB_USER, LearnerId, LearnerLocks, NodeReport, ProgressHub, Provisioner,
    SandboxConfig, SandboxDirs, SandboxError, SandboxState, SandboxStatus, Terminal, TerminalSize,
    ToolOutput, ToolRun, new_password, unix_now,
};
use crate::store::Store;

const BACKEND: &str = "swarm";

/// What a learner whose node is down is told.
pub const NODE_DOWN: &str = "the node running your sandbox is down";

/// How long a start may take before it is reported as failed.
const DEADLINE: Duration = Duration::from_secs(120);

/// Settings of the swarm backend.
#[derive(Clone, Debug, Args)]
pub struct SwarmConfig {
    /// Sandboxes one swarm node runs at once, unless the node has a
    /// `pglab.capacity` label; new learners' volumes spread by it too.
    #[arg(long, env = "PGLAB_SWARM_NODE_CAPACITY", default_value_t = 20)]
    pub swarm_node_capacity: usize,

    /// The attachable overlay network of the sandboxes' services (created
    /// when missing).
    #[arg(long, env = "PGLAB_SWARM_NETWORK", default_value = "pglab-sandboxes")]
    pub swarm_network: String,

    /// How pglab reaches the sandboxes' PostgreSQL: `published` (a port
    /// published in mode=host on the sandbox's node, for a pglab on a host)
    /// or `overlay` (the service's name on --swarm-network, for a pglab that
    /// runs as a service attached to it: deploy/swarm/pglab-stack.yml; no
    /// sandbox port is then published on any node).
    #[arg(long, env = "PGLAB_SWARM_REACH", value_enum, default_value_t = SwarmReach::Published)]
    pub swarm_reach: SwarmReach,
}

/// How pglab reaches a learner's PostgreSQL on the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SwarmReach {
    /// The node's address and the port published there in mode=host.
    Published,
    /// The service's name on the overlay network, port 5432.
    Overlay,
}

/// Connects to the manager and returns the swarm provisioner, or says why
/// not (no engine, not a manager, no overlay network).
pub async fn connect(
    config: &SandboxConfig,
    dirs: &SandboxDirs,
    store: &Store,
    instance: String,
) -> Result<Arc<dyn Provisioner>, String> {
    Ok(Arc::new(
        SwarmProvisioner::connect(config, dirs, store, instance).await?,
    ))
}

/// A running task seen ready.
#[derive(Clone)]
struct Ready {
    task: String,
    host: String,
    port: u16,
    version: String,
}

/// Where an admitted start goes: its own service on a node, or a spare of
/// the warm pool (its record, its node).
enum Placed {
    Node(String),
    Spare(SandboxRecord, String),
}

/// What [`SwarmProvisioner::load`] reads.
struct Load {
    nodes: Vec<NodeInfo>,
    loads: Vec<placement::NodeLoad>,
    total: usize,
    spares: Vec<Service>,
}

/// Runs learners' PostgreSQL servers as swarm services.
pub struct SwarmProvisioner {
    cluster: Cluster,
    spec: ContainerSpec,
    /// What services run: the image id when the manager has the image.
    image_ref: String,
    instance: String,
    network: String,
    reach: SwarmReach,
    capacity: usize,
    /// Most sandboxes running at once over the whole swarm.
    max_running: usize,
    /// Starts waiting for a place.
    admission: Admission,
    records: Records,
    locks: LearnerLocks,
    hub: ProgressHub,
    desc: String,
    /// Serialises placements, so two new learners never take one last place.
    place_lock: tokio::sync::Mutex<()>,
    /// Services seen ready, by name.
    ready: std::sync::Mutex<HashMap<String, Ready>>,
    /// The course, whose lab files a terminal copies into the container.
    content_dir: std::path::PathBuf,
    /// Spares per node in the warm pool (`--sandbox-pool`).
    pool_size: usize,
    /// Wakes the pool's filler (a spare taken, a place freed).
    pool_wake: Arc<tokio::sync::Notify>,
    /// Learners' compose files: the settings a compose up put in force are
    /// read at every creation of the learner's service.
    compose: ComposeFiles,
    /// The 14.D.4 throw-away services this process made, and their locks.
    ephemeral: Throwaways,
    ephemeral_locks: LearnerLocks,
}

impl SwarmProvisioner {
    async fn connect(
        config: &SandboxConfig,
        dirs: &SandboxDirs,
        store: &Store,
        instance: String,
    ) -> Result<Self, String> {
        let tls = connect::engine_tls(config.engine_tls.as_deref())?;
        let (docker, address) = open_engine(config.docker_host.as_deref(), tls.as_ref())?;
        let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
            .await
            .map_err(|_| format!("the Docker engine at {address} does not answer"))?
            .map_err(|e| format!("no Docker engine answers at {address} ({e})"))?;
        let info = tokio::time::timeout(Duration::from_secs(5), docker.info())
            .await
            .map_err(|_| format!("the Docker engine at {address} does not answer"))?
            .map_err(|e| format!("the Docker engine at {address} failed to answer ({e})"))?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.control_available != Some(true) {
            return Err(format!(
                "the Docker engine at {address} is not a swarm manager \
                 (run `docker swarm init` there, or point --docker-host at a manager)"
            ));
        }
        let manager = Engine {
            docker,
            tls: connect::tls_for(&address, tls.as_ref()),
            address: address.clone(),
        };
        let spec = ContainerSpec::from_config(config);
        let cluster = Cluster::new(
            manager,
            swarm.node_id.unwrap_or_default(),
            service::health_check(&spec),
            tls,
        );
        let image_ref = cluster
            .manager
            .image_id(&spec.image)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| spec.image.clone());
        let network = config.swarm.swarm_network.clone();
        cluster
            .ensure_network(
                &network,
                HashMap::from([("pglab.managed".to_string(), "true".to_string())]),
            )
            .await
            .map_err(|e| e.to_string())?;
        let desc = format!(
            "Docker Swarm of {} node(s) managed at {address} (Docker {})",
            swarm.nodes.unwrap_or(0),
            info.server_version.unwrap_or_default()
        );
        Ok(Self {
            cluster,
            spec,
            image_ref,
            instance,
            network,
            reach: config.swarm.swarm_reach,
            capacity: config.swarm.swarm_node_capacity,
            max_running: config.sandbox_max_running,
            admission: Admission::default(),
            records: Records::new(store),
            locks: LearnerLocks::default(),
            hub: ProgressHub::default(),
            desc,
            place_lock: tokio::sync::Mutex::new(()),
            ready: Default::default(),
            content_dir: dirs.content_dir.clone(),
            pool_size: config.sandbox_pool,
            pool_wake: Arc::new(tokio::sync::Notify::new()),
            compose: ComposeFiles::new(store),
            ephemeral: Default::default(),
            ephemeral_locks: LearnerLocks::default(),
        })
    }

    fn prefix(&self) -> String {
        format!("pglab-{}", self.instance)
    }

    fn service_name(&self, learner: LearnerId) -> String {
        format!("{}-{learner}", self.prefix())
    }

    fn labels(&self, key: &str, learner: LearnerId, node: &str) -> HashMap<String, String> {
        HashMap::from([
            ("pglab.managed".to_string(), "true".to_string()),
            ("pglab.instance".to_string(), self.instance.clone()),
            ("pglab.key".to_string(), key.to_string()),
            ("pglab.learner".to_string(), learner.to_string()),
            ("pglab.node".to_string(), node.to_string()),
        ])
    }

    fn options(host: &str, port: u16, password: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(host)
            .port(port)
            .username(LAB_USER)
            .password(password)
            .database(LAB_DB)
    }

    /// Where the running `task` of `service` on `node` takes connections.
    fn endpoint(&self, service: &str, task: &Task, node: &NodeInfo) -> Option<(String, u16)> {
        match self.reach {
            SwarmReach::Published => Some((node.addr.clone(), published_port(task)?)),
            SwarmReach::Overlay => Some((service.to_string(), PG_PORT as u16)),
        }
    }

    /// Where the task's container takes connections while the swarm still
    /// holds the task `starting`: with a health check, the swarm reports
    /// `running` (and the published port) only once the first check passed,
    /// an `interval` after the container started (10 s for pglab's own),
    /// though PostgreSQL answers within a second or two. So the container
    /// is inspected on its node's engine: running, its published port
    /// (`published`) or its address on the overlay (`overlay`: the
    /// service's name resolves only once healthy). `None` until it runs, or
    /// when pglab cannot reach the node's engine (then `running` is awaited).
    async fn early_endpoint(&self, task: &Task, node: &NodeInfo) -> Option<(String, u16)> {
        let container = task
            .status
            .as_ref()?
            .container_status
            .as_ref()?
            .container_id
            .clone()?;
        let engine = self.cluster.node_engine(node).await.ok()?;
        let Ok(Found::Yes(c)) = engine.inspect(&container).await else {
            return None;
        };
        if !c.state.as_ref()?.running.unwrap_or(false) {
            return None;
        }
        let net = c.network_settings.as_ref()?;
        match self.reach {
            SwarmReach::Published => {
                let port = net
                    .ports
                    .as_ref()?
                    .get(&format!("{PG_PORT}/tcp"))?
                    .as_ref()?
                    .iter()
                    .find_map(|b| b.host_port.as_deref()?.parse().ok())?;
                Some((node.addr.clone(), port))
            }
            SwarmReach::Overlay => {
                let ip = net
                    .networks
                    .as_ref()?
                    .get(&self.network)?
                    .ip_address
                    .clone()
                    .filter(|ip| !ip.is_empty())?;
                Some((ip, PG_PORT as u16))
            }
        }
    }

    fn cached(&self, service: &str) -> Option<Ready> {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .cloned()
    }

    /// The service's task seen ready, if it still runs (one task list).
    async fn still_ready(&self, service: &str) -> Result<Option<Ready>, SandboxError> {
        let Some(ready) = self.cached(service) else {
            return Ok(None);
        };
        let tasks = self.cluster.tasks(service).await?;
        if tasks.iter().any(|t| {
            t.id.as_deref() == Some(ready.task.as_str())
                && t.desired_state == Some(TaskState::RUNNING)
                && usable(t, true)
        }) {
            return Ok(Some(ready));
        }
        self.forget_ready(service);
        Ok(None)
    }

    fn forget_ready(&self, service: &str) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(service);
    }

    async fn new_record(&self, learner: LearnerId) -> Result<SandboxRecord, SandboxError> {
        let key = format!("{:010x}", rand::random::<u64>() >> 24);
        let now = unix_now();
        let record = SandboxRecord {
            learner_id: learner,
            backend: BACKEND.into(),
            container: self.service_name(learner),
            volume: format!("{}-{key}", self.prefix()),
            password: new_password(),
            state: SandboxState::Absent.as_str().into(),
            created_at: now,
            last_used: now,
        };
        self.records.put(&record).await?;
        Ok(record)
    }

    /// The swarm as placement sees it: its nodes, each node's learners'
    /// sandboxes (placed, and asked to run), how many run in total, and the
    /// warm pool's spares (which take no place: see [`pool`]).
    async fn load(&self) -> Result<Load, SandboxError> {
        let nodes = self.cluster.nodes().await?;
        let services = self
            .cluster
            .services(&[format!("pglab.instance={}", self.instance)])
            .await?;
        let mut placed: HashMap<String, usize> = HashMap::new();
        let mut running: HashMap<String, usize> = HashMap::new();
        let mut total = 0;
        let mut spares = Vec::new();
        for s in services {
            if service_label(&s, "pglab.pool").is_some() {
                spares.push(s);
                continue;
            }
            // Throw-away servers take no place (the labs cap them).
            if service_label(&s, ephemeral::LABEL).is_some() {
                continue;
            }
            if let Some(node) = service_label(&s, "pglab.node") {
                *placed.entry(node.clone()).or_default() += 1;
                if replicas(&s) > 0 {
                    *running.entry(node).or_default() += 1;
                    total += 1;
                }
            }
        }
        let loads = nodes
            .iter()
            .map(|n| placement::NodeLoad {
                id: n.id.clone(),
                usable: n.ready && n.active,
                capacity: n.capacity.unwrap_or(self.capacity),
                placed: placed.get(&n.id).copied().unwrap_or(0),
                running: running.get(&n.id).copied().unwrap_or(0),
            })
            .collect();
        Ok(Load {
            nodes,
            loads,
            total,
            spares,
        })
    }

    /// Takes a running place for the learner's sandbox if there is one:
    /// scales its stopped service to 1, or creates its service (on `home`,
    /// the node holding its volume, else on the node [`placement::choose`]
    /// picks). `Ok(None)`: no place now (its node, every node, or the whole
    /// swarm at its cap). Places are counted from the services' asked
    /// replicas under `place_lock`, so two starts never take one place.
    async fn take_place(
        &self,
        learner: LearnerId,
        record: &SandboxRecord,
        home: Option<&NodeInfo>,
        plan: Option<&ComposePlan>,
        rep: &Reporter<'_>,
    ) -> Result<Option<String>, SandboxError> {
        let _placing = self.place_lock.lock().await;
        let Load {
            nodes,
            loads,
            total,
            ..
        } = self.load().await?;
        if total >= self.max_running {
            return Ok(None);
        }
        // A pinned sandbox waits for its own node; a node that is down or
        // drained is left to `wait_ready` to report, as before.
        let full = |id: &str| {
            loads
                .iter()
                .any(|l| l.id == id && l.usable && !l.has_room())
        };
        let name = &record.container;
        if let Found::Yes(service) = self.cluster.service(name).await? {
            let node = service_label(&service, "pglab.node").unwrap_or_default();
            if replicas(&service) == 0 {
                if full(&node) {
                    return Ok(None);
                }
                rep.step("starting", "starting the sandbox service (scale 1)");
                self.cluster.scale(name, 1).await?;
            }
            return Ok(Some(node));
        }
        let node = match home {
            Some(home) if full(&home.id) => return Ok(None),
            Some(home) => home.clone(),
            None => {
                if !loads.iter().any(|l| l.usable) {
                    return Err(SandboxError::Unavailable(
                        "no node of the swarm is ready and active: the classroom cannot run sandboxes now"
                            .into(),
                    ));
                }
                let Some(choice) = placement::choose(&loads) else {
                    return Ok(None);
                };
                let id = choice.id.clone();
                nodes
                    .into_iter()
                    .find(|n| n.id == id)
                    .ok_or_else(|| SandboxError::Failed(format!("the swarm node {id} vanished")))?
            }
        };
        rep.step(
            "creating service",
            format!("Service {name} creating on node {}", node.label()),
        );
        self.create_service(learner, record, &node, plan).await?;
        Ok(Some(node.id))
    }

    /// The node whose engine holds one of `volumes` (the first found wins),
    /// among nodes whose engines pglab can reach: where a learner's data
    /// lives when their service is gone (compose down, or removed behind
    /// pglab's back).
    async fn node_with_volume(&self, volumes: &[String]) -> Option<NodeInfo> {
        let nodes = self.cluster.nodes().await.ok()?;
        for volume in volumes {
            for node in &nodes {
                if let Ok(engine) = self.cluster.node_engine(node).await
                    && engine.volume_exists(volume).await.unwrap_or(false)
                {
                    return Some(node.clone());
                }
            }
        }
        None
    }

    /// The volumes that tie a learner to a node, the settings' own first:
    /// the named volume of the compose plan in force, and pglab's own.
    fn home_volumes(record: &SandboxRecord, plan: Option<&ComposePlan>) -> Vec<String> {
        let mut volumes: Vec<String> = data_volume(plan, &record.volume).into_iter().collect();
        if !volumes.contains(&record.volume) {
            volumes.push(record.volume.clone());
        }
        volumes
    }

    /// Creates the learner's service on `node`, with the compose plan in
    /// force (or pglab's settings) and its volume at PGDATA, or none.
    async fn create_service(
        &self,
        learner: LearnerId,
        record: &SandboxRecord,
        node: &NodeInfo,
        plan: Option<&ComposePlan>,
    ) -> Result<(), SandboxError> {
        let key = record.volume.rsplit('-').next().unwrap_or_default();
        let volume = data_volume(plan, &record.volume);
        self.create(
            &record.container,
            volume.as_deref(),
            &record.password,
            self.labels(key, learner, &node.id),
            node,
            plan,
        )
        .await
    }

    /// Creates a sandbox service (a learner's, a spare or a throw-away
    /// server) pinned to `node`: pglab's settings or a learner's compose
    /// plan, `volume` at PGDATA or none.
    async fn create(
        &self,
        name: &str,
        volume: Option<&str>,
        password: &str,
        labels: HashMap<String, String>,
        node: &NodeInfo,
        plan: Option<&ComposePlan>,
    ) -> Result<(), SandboxError> {
        let image = self.image_for(plan).await?;
        let spec = service_spec(
            &self.spec,
            &ServiceParams {
                name,
                labels,
                volume,
                password,
                image: &image,
                node_id: &node.id,
                network: &self.network,
                publish: self.reach == SwarmReach::Published,
                plan,
            },
        );
        self.cluster.create_service(spec).await
    }

    /// What a service runs: pglab's image, or the compose plan's (the
    /// allow-list's image), by id when the manager has it, else by name.
    async fn image_for(&self, plan: Option<&ComposePlan>) -> Result<String, SandboxError> {
        match plan {
            Some(p) if p.image != self.spec.image => Ok(self
                .cluster
                .manager
                .image_id(&p.image)
                .await?
                .unwrap_or_else(|| p.image.clone())),
            _ => Ok(self.image_ref.clone()),
        }
    }

    /// Start with the learner's lock held.
    async fn start_locked(
        &self,
        learner: LearnerId,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        self.start_on(learner, None, rep).await
    }

    /// Start with the learner's lock held; a service made anew goes to
    /// `home` when given (a compose up knows the node of the service it
    /// removed), else to the node holding the learner's volume, else where
    /// placement says.
    async fn start_on(
        &self,
        learner: LearnerId,
        home: Option<NodeInfo>,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        // A record made by this start names a volume with a new random key:
        // no node holds it yet, so the nodes' engines are not asked.
        let (mut record, made_now) = match self.records.get(learner).await? {
            Some(r) => (r, false),
            None => (self.new_record(learner).await?, true),
        };
        let mut name = record.container.clone();
        // Quick path: the task seen ready still runs.
        if let Some(ready) = self.still_ready(&name).await? {
            self.records.touch(learner).await?;
            return Ok(Self::options(&ready.host, ready.port, &record.password));
        }
        let plan = self.compose.applied(learner).await?;
        // Whether the service was asked to run before this start: its task
        // may then have ended for good (see `ended_for_good`).
        let mut revive = false;
        let mut from_spare = false;
        let node_id = match self.cluster.service(&name).await? {
            // Asked to run already: it holds its place.
            Found::Yes(service) if replicas(&service) > 0 => {
                revive = true;
                service_label(&service, "pglab.node").unwrap_or_default()
            }
            found => {
                let absent = matches!(found, Found::No);
                let home = match home {
                    _ if !absent => None,
                    Some(home) => Some(home),
                    None if made_now => None,
                    None => {
                        self.node_with_volume(&Self::home_volumes(&record, plan.as_ref()))
                            .await
                    }
                };
                // A sandbox never made (no service, no volume) may be a
                // spare of the warm pool instead, unless the learner's own
                // compose settings are in force.
                let fresh = absent && home.is_none() && plan.is_none();
                let admitted = self
                    .admission
                    .admit(
                        learner,
                        |position| rep.in_line(position),
                        || {
                            let (record, home, plan) = (&record, home.as_ref(), plan.as_ref());
                            async move {
                                if fresh
                                    && let Some((spare, node)) = self.take_spare(learner).await?
                                {
                                    rep.step("assigned", "took a ready sandbox from the warm pool");
                                    return Ok(Some(Placed::Spare(spare, node)));
                                }
                                Ok(self
                                    .take_place(learner, record, home, plan, rep)
                                    .await?
                                    .map(Placed::Node))
                            }
                        },
                    )
                    .await;
                match admitted {
                    Ok(Placed::Node(node)) => node,
                    Ok(Placed::Spare(spare, node)) => {
                        // The record made above names a service never
                        // created; the spare's record replaced it.
                        record = spare;
                        from_spare = true;
                        name = record.container.clone();
                        node
                    }
                    Err(Refused::Left) => {
                        return Err(SandboxError::Left(
                            "you left the line: your sandbox was not started".into(),
                        ));
                    }
                    Err(Refused::Failed(e)) => return Err(e),
                }
            }
        };
        if record.state != SandboxState::Running.as_str() {
            self.records
                .set_state(learner, SandboxState::Starting)
                .await?;
        }
        // A spare the pool saw answering, whose task still runs, is ready
        // as it is: no need to ask its node's engine again.
        let seen = match from_spare {
            true => self.still_ready(&name).await?,
            false => None,
        };
        let ready = match seen {
            Some(ready) => ready,
            None => {
                self.wait_ready(&name, &node_id, &record.password, revive, rep)
                    .await?
            }
        };
        let options = Self::options(&ready.host, ready.port, &record.password);
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ready);
        self.records.touch(learner).await?;
        Ok(options)
    }

    /// Follows the service's task until PostgreSQL answers on its published
    /// port, reporting its states; fails at once when its node is down.
    /// With `revive` (a service asked to run before this start), a task that
    /// ended for good is asked for again, once.
    async fn wait_ready(
        &self,
        service: &str,
        node_id: &str,
        password: &str,
        revive: bool,
        rep: &Reporter<'_>,
    ) -> Result<Ready, SandboxError> {
        let mut revive = revive;
        let began = Instant::now();
        let mut last_step = String::new();
        let mut node: Option<NodeInfo> = None;
        let mut next_node_check = Instant::now();
        let mut last_error = String::new();
        // The container's endpoint found while its task is `starting`
        // (`early_endpoint`), for the task of that id.
        let mut early: Option<(String, String, u16)> = None;
        loop {
            if Instant::now() >= next_node_check {
                next_node_check = Instant::now() + Duration::from_secs(1);
                match self.cluster.node(node_id).await? {
                    Found::Yes(n) if n.ready => node = Some(n),
                    Found::Yes(n) => {
                        return Err(SandboxError::Unavailable(format!(
                            "{NODE_DOWN} ({}); it comes back with your data when the node does",
                            n.label()
                        )));
                    }
                    Found::No => {
                        return Err(SandboxError::Unavailable(format!(
                            "{NODE_DOWN}: the node that holds your data left the swarm; \
                             an instructor can reset your sandbox onto another node"
                        )));
                    }
                }
            }
            let tasks = self.cluster.tasks(service).await?;
            if revive && ended_for_good(&tasks) {
                revive = false;
                rep.step(
                    "starting",
                    "the sandbox's container ended and its restart policy keeps it down: starting a new one",
                );
                self.cluster.force_new_task(service).await?;
            }
            let current = tasks
                .iter()
                .find(|t| t.desired_state == Some(TaskState::RUNNING));
            // The newest failure, to explain a task the swarm is retrying.
            if let Some(err) = tasks
                .iter()
                .filter(|t| matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED)))
                .find_map(|t| t.status.as_ref()?.err.clone())
            {
                last_error = err;
            }
            if let Some(task) = current {
                let state = task_state(task);
                let task_id = task.id.clone().unwrap_or_default();
                let endpoint = match (state, &node) {
                    (Some(TaskState::RUNNING), Some(n)) => self.endpoint(service, task, n),
                    (Some(TaskState::STARTING), Some(n)) => match &early {
                        Some((id, host, port)) if *id == task_id => Some((host.clone(), *port)),
                        _ => {
                            let found = self.early_endpoint(task, n).await;
                            if let Some((host, port)) = &found {
                                early = Some((task_id.clone(), host.clone(), *port));
                            }
                            found
                        }
                    },
                    _ => None,
                };
                // The container runs: what is left is PostgreSQL's own start.
                let (step, message) = match (state, &endpoint) {
                    (Some(TaskState::STARTING), Some(_)) => {
                        step_of(Some(TaskState::RUNNING), node.as_ref())
                    }
                    _ => step_of(state, node.as_ref()),
                };
                if step != last_step {
                    rep.step(step, message);
                    last_step = step.to_string();
                }
                if let Some((host, port)) = endpoint {
                    let options = Self::options(&host, port, password);
                    if let Some(version) = try_query(&options).await {
                        return Ok(Ready {
                            task: task_id,
                            host,
                            port,
                            version,
                        });
                    }
                }
            }
            if began.elapsed() > DEADLINE {
                return Err(SandboxError::Failed(format!(
                    "PostgreSQL did not accept connections within {} s{}",
                    DEADLINE.as_secs(),
                    if last_error.is_empty() {
                        String::new()
                    } else {
                        format!(" (the swarm says: {last_error})")
                    }
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no task of the service runs (its container stopped), up
    /// to `deadline`; a node that is down counts as stopped.
    async fn wait_stopped(&self, service: &str, deadline: Duration) -> Result<(), SandboxError> {
        let end = Instant::now() + deadline;
        loop {
            let tasks = self.cluster.tasks(service).await?;
            let live = tasks.iter().any(|t| {
                matches!(
                    task_state(t),
                    Some(
                        TaskState::ASSIGNED
                            | TaskState::ACCEPTED
                            | TaskState::PREPARING
                            | TaskState::READY
                            | TaskState::STARTING
                            | TaskState::RUNNING
                    )
                )
            });
            if !live || Instant::now() > end {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops (scale 0). With `free`, the place goes to the line; a restart
    /// keeps it for its own start.
    async fn stop_locked(&self, learner: LearnerId, free: bool) -> Result<(), SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Ok(());
        };
        self.forget_ready(&record.container);
        if let Found::Yes(_) = self.cluster.service(&record.container).await? {
            self.cluster.scale(&record.container, 0).await?;
            if free {
                self.admission.slot_freed();
                self.pool_wake.notify_one();
            }
            self.wait_stopped(&record.container, Duration::from_secs(30))
                .await?;
        }
        self.records.set_state(learner, SandboxState::Stopped).await
    }

    /// Removes service and volumes (pglab's and those of the learner's
    /// compose files) of the learner's sandbox, and its record. With
    /// `free`, its place goes to the line (a reset keeps it).
    async fn remove_locked(&self, learner: LearnerId, free: bool) -> Result<(), SandboxError> {
        let record = self.records.get(learner).await?;
        // A learner given a spare of the warm pool keeps the spare's name.
        let name = record
            .as_ref()
            .map(|r| r.container.clone())
            .unwrap_or_else(|| self.service_name(learner));
        let service = self.cluster.service(&name).await?;
        let node_id = match &service {
            Found::Yes(s) => service_label(s, "pglab.node"),
            Found::No => None,
        };
        self.forget_ready(&name);
        self.cluster.remove_service(&name).await?;
        if free {
            self.admission.slot_freed();
            self.pool_wake.notify_one();
        }
        if let Some(record) = &record {
            let plan = self.compose.applied(learner).await?;
            let node = self
                .node_of(node_id, &Self::home_volumes(record, plan.as_ref()))
                .await?;
            let key = record.volume.rsplit('-').next().unwrap_or_default();
            self.remove_volumes(&name, &record.volume, Some(key), node.as_ref())
                .await;
            self.records.delete(learner).await?;
        }
        Ok(())
    }

    /// The node of a service's `pglab.node` label (`None`: it left the
    /// swarm), else, without a label, the node holding one of `volumes`.
    async fn node_of(
        &self,
        label: Option<String>,
        volumes: &[String],
    ) -> Result<Option<NodeInfo>, SandboxError> {
        Ok(match label {
            Some(id) => match self.cluster.node(&id).await? {
                Found::Yes(n) => Some(n),
                Found::No => None,
            },
            None => self.node_with_volume(volumes).await,
        })
    }

    /// Removes `volume` on its node once the service's container is gone
    /// there, and with `key` every volume of this instance labelled with
    /// that key (those of the learner's compose files). A node pglab cannot
    /// reach keeps them (logged, labelled with this instance and the key for
    /// a later clean-up). Says whether all went.
    async fn remove_volumes(
        &self,
        service: &str,
        volume: &str,
        key: Option<&str>,
        node: Option<&NodeInfo>,
    ) -> bool {
        let engine = match node {
            Some(n) if n.ready => self.cluster.node_engine(n).await.ok(),
            _ => None,
        };
        let Some(engine) = engine else {
            tracing::warn!(
                volume,
                node = node.map(NodeInfo::label).unwrap_or_default(),
                "the sandbox volume is left on its node: pglab cannot reach the node's engine \
                 (down, or no pglab.engine label)"
            );
            return false;
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let containers = engine
                .list(&[format!("com.docker.swarm.service.name={service}")])
                .await
                .unwrap_or_default();
            if containers.is_empty() || Instant::now() > end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut volumes = vec![volume.to_string()];
        if let Some(key) = key {
            let labelled = engine
                .list_volumes(&[
                    format!("pglab.instance={}", self.instance),
                    format!("pglab.key={key}"),
                ])
                .await
                .unwrap_or_default();
            volumes.extend(labelled.into_iter().filter(|v| v != volume));
        }
        let mut all = true;
        for volume in &volumes {
            all &= remove_volume_until(&engine, volume, end).await;
        }
        all
    }

    /// Where an exec in the learner's sandbox happens (starting it if
    /// needed): see [`Self::task_target`].
    async fn exec_target(
        &self,
        learner: LearnerId,
    ) -> Result<(Engine, String, String), SandboxError> {
        self.start(learner).await?;
        self.task_target(learner).await
    }

    /// The learner's running task as an engine can reach it: the engine of
    /// the node that runs it (the manager's connection, else the node's
    /// `pglab.engine` label), the task's container and the sandbox's
    /// password. Starts nothing: exec, the server log and inspect all use
    /// the container where it runs.
    async fn task_target(
        &self,
        learner: LearnerId,
    ) -> Result<(Engine, String, String), SandboxError> {
        let record = self
            .records
            .get(learner)
            .await?
            .ok_or_else(|| SandboxError::Failed("your sandbox has no server yet".into()))?;
        let tasks = self.cluster.tasks(&record.container).await?;
        let seen = self.cached(&record.container).map(|r| r.task);
        let running = tasks.iter().find(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && usable(t, seen.is_some() && seen.as_deref() == t.id.as_deref())
        });
        let (Some(container), Some(node_id)) = (
            running.and_then(|t| {
                t.status
                    .as_ref()?
                    .container_status
                    .as_ref()?
                    .container_id
                    .clone()
            }),
            running.and_then(|t| t.node_id.clone()),
        ) else {
            return Err(SandboxError::Unavailable(
                "your sandbox's task is not running at the moment: start it, or try again in a few seconds"
                    .into(),
            ));
        };
        let node = match self.cluster.node(&node_id).await? {
            Found::Yes(n) if n.ready => n,
            _ => return Err(SandboxError::Unavailable(NODE_DOWN.to_string())),
        };
        let engine = self.cluster.node_engine(&node).await.map_err(|why| {
            SandboxError::Unavailable(format!(
                "pglab cannot reach the engine of the node running your sandbox ({}): {why}",
                node.label()
            ))
        })?;
        Ok((engine, container, record.password))
    }

    async fn describe(&self, learner: LearnerId, record: &SandboxRecord) -> SandboxStatus {
        let mut status = SandboxStatus::bare(learner, BACKEND, SandboxState::Stopped, None);
        status.name = Some(record.container.clone());
        status.last_used = Some(record.last_used);
        let service = match self.cluster.service(&record.container).await {
            Ok(Found::Yes(s)) => s,
            // Made for a start that never got a place (it left the line).
            Ok(Found::No) if record.state == SandboxState::Absent.as_str() => {
                status.state = SandboxState::Absent;
                return status;
            }
            Ok(Found::No) => {
                status.detail = Some(
                    "the service is gone; starting creates it again (on the node of its volume, when pglab can find it)"
                        .into(),
                );
                return status;
            }
            Err(e) => {
                status.state = SandboxState::Failed;
                status.detail = Some(e.to_string());
                return status;
            }
        };
        let node_id = service_label(&service, "pglab.node").unwrap_or_default();
        let node = match self.cluster.node(&node_id).await {
            Ok(Found::Yes(n)) => n,
            Ok(Found::No) => {
                status.state = SandboxState::Failed;
                status.detail = Some(format!(
                    "{NODE_DOWN}: the node that held your data left the swarm; reset your sandbox to start afresh"
                ));
                return status;
            }
            Err(e) => {
                status.state = SandboxState::Failed;
                status.detail = Some(e.to_string());
                return status;
            }
        };
        status.node = Some(node.label());
        if !node.ready {
            status.state = SandboxState::Failed;
            status.detail = Some(format!(
                "{NODE_DOWN} ({}); it comes back with your data when the node does",
                node.label()
            ));
            return status;
        }
        if replicas(&service) == 0 {
            return status;
        }
        let tasks = self
            .cluster
            .tasks(&record.container)
            .await
            .unwrap_or_default();
        if ended_for_good(&tasks) {
            status.detail = Some(
                "PostgreSQL's container ended and your compose file's restart policy keeps it down; \
                 starting runs it again"
                    .into(),
            );
            return status;
        }
        let Some(task) = tasks
            .iter()
            .find(|t| t.desired_state == Some(TaskState::RUNNING))
        else {
            status.state = SandboxState::Starting;
            return status;
        };
        let state = task_state(task);
        let task_id = task.id.clone().unwrap_or_default();
        let mut ready = self.cached(&record.container).filter(|r| r.task == task_id);
        if !usable(task, ready.is_some()) {
            status.state = SandboxState::Starting;
            status.detail = Some(step_of(state, Some(&node)).1);
            return status;
        }
        if ready.is_none()
            && let Some((host, port)) = self.endpoint(&record.container, task, &node)
        {
            let options = Self::options(&host, port, &record.password);
            if let Some(version) = try_query(&options).await {
                let r = Ready {
                    task: task_id,
                    host,
                    port,
                    version,
                };
                self.ready
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(record.container.clone(), r.clone());
                ready = Some(r);
            }
        }
        match ready {
            Some(r) => {
                status.state = SandboxState::Running;
                status.pg_version = Some(r.version);
                status.uptime_s = task
                    .status
                    .as_ref()
                    .and_then(|s| s.timestamp.as_deref())
                    .and_then(parse_rfc3339)
                    .map(|t| unix_now().saturating_sub(t).max(0) as u64);
            }
            None => {
                status.state = SandboxState::Starting;
                status.detail = Some("waiting for PostgreSQL to accept connections".into());
            }
        }
        status
    }
}

/// Removes a volume, trying again (its container may still be going) until
/// `end`; says whether it went.
async fn remove_volume_until(engine: &Engine, volume: &str, end: Instant) -> bool {
    loop {
        match engine.remove_volume(volume).await {
            Ok(()) => return true,
            Err(e) if Instant::now() > end => {
                tracing::warn!(volume, error = %e, "the sandbox volume could not be removed");
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// A service `list` shows without a record of its own (`node`: its node's
/// label, else its `pglab.node`): running while a task runs.
fn listed(
    service: &Service,
    learner: LearnerId,
    detail: &str,
    node: Option<String>,
) -> SandboxStatus {
    let state = if running_tasks(service) > 0 {
        SandboxState::Running
    } else {
        SandboxState::Stopped
    };
    let mut status = SandboxStatus::bare(learner, BACKEND, state, Some(detail.into()));
    status.name = service.spec.as_ref().and_then(|sp| sp.name.clone());
    status.node = node.or_else(|| service_label(service, "pglab.node"));
    status
}

fn service_label(service: &Service, key: &str) -> Option<String> {
    service.spec.as_ref()?.labels.as_ref()?.get(key).cloned()
}

/// Tasks the swarm counts as running (with a health check: once healthy).
fn running_tasks(service: &Service) -> u64 {
    service
        .service_status
        .as_ref()
        .and_then(|st| st.running_tasks)
        .unwrap_or(0)
}

fn replicas(service: &Service) -> i64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(1)
}

/// Whether a service's task ended and nothing will run it again: its
/// restart policy (a compose file's `restart: no`, or `on-failure` out of
/// attempts) let it end, so no task is desired running (nor `ready`, as one
/// waiting out its restart delay is). Docker starts such an exited
/// container on the next start; the swarm needs a forced update. With
/// pglab's own policy (`any`) the swarm shuts the old task and makes its
/// replacement at once, so this never holds.
fn ended_for_good(tasks: &[Task]) -> bool {
    !tasks.is_empty()
        && !tasks
            .iter()
            .any(|t| matches!(t.desired_state, Some(TaskState::RUNNING | TaskState::READY)))
}

fn task_state(task: &Task) -> Option<TaskState> {
    task.status.as_ref()?.state
}

/// Whether pglab uses the task's server: `running`, or `starting` with
/// PostgreSQL seen answering in it (`seen_ready`: the swarm holds a task
/// with a health check `starting` until its first check passes; see
/// `early_endpoint`).
fn usable(task: &Task, seen_ready: bool) -> bool {
    match task_state(task) {
        Some(TaskState::RUNNING) => true,
        Some(TaskState::STARTING) => seen_ready,
        _ => false,
    }
}

/// The host port PostgreSQL's port is published at on the task's node.
fn published_port(task: &Task) -> Option<u16> {
    task.status
        .as_ref()?
        .port_status
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.target_port == Some(PG_PORT))
        .and_then(|p| p.published_port)
        .and_then(|p| u16::try_from(p).ok())
}

/// The progress step of a task state, and its sentence.
fn step_of(state: Option<TaskState>, node: Option<&NodeInfo>) -> (&'static str, String) {
    let on = node
        .map(|n| format!(" on node {}", n.label()))
        .unwrap_or_default();
    match state {
        Some(TaskState::NEW | TaskState::ALLOCATED | TaskState::PENDING) | None => (
            "pending",
            "the swarm is scheduling the sandbox (task new, pending)".into(),
        ),
        Some(TaskState::ASSIGNED | TaskState::ACCEPTED) => {
            ("assigned", format!("the swarm assigned the sandbox{on}"))
        }
        Some(TaskState::PREPARING | TaskState::READY) => (
            "preparing",
            format!("preparing the sandbox's container{on} (image, volume, network)"),
        ),
        Some(TaskState::STARTING) => ("starting", format!("starting the sandbox's container{on}")),
        Some(TaskState::RUNNING) => (
            "waiting for healthy",
            "waiting for PostgreSQL to accept connections".into(),
        ),
        Some(_) => (
            "retrying",
            "the sandbox's container ended; the swarm starts it again".into(),
        ),
    }
}

#[async_trait]
impl Provisioner for SwarmProvisioner {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    async fn health(&self) -> BackendHealth {
        let (usable, reason) = match self.cluster.nodes().await {
            Ok(nodes) => {
                let ready = nodes.iter().filter(|n| n.ready).count();
                (
                    ready > 0,
                    format!(
                        "{}: {ready} of {} node(s) ready, image {}",
                        self.desc,
                        nodes.len(),
                        self.spec.image
                    ),
                )
            }
            Err(e) => (false, format!("the swarm manager fails: {e}")),
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
        // A start waiting in line holds the learner's lock: end it first.
        self.admission.cancel(learner);
        let _guard = self.locks.lock(learner).await;
        self.stop_locked(learner, true).await
    }

    async fn restart(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("stopping", "stopping PostgreSQL");
        let result = match self.stop_locked(learner, false).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn reset(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("removing", "removing the old service and its data");
        let result = match self.remove_locked(learner, false).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn destroy(&self, learner: LearnerId) -> Result<(), SandboxError> {
        self.admission.cancel(learner);
        let _guard = self.locks.lock(learner).await;
        self.remove_ephemeral(learner).await?;
        self.remove_locked(learner, true).await
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
        self.admission.cancel(learner);
        let _guard = self.locks.lock(learner).await;
        self.compose_down_locked(learner, volumes).await
    }

    async fn ephemeral_start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        self.start_ephemeral(learner).await
    }

    async fn ephemeral_remove(&self, learner: LearnerId) -> Result<(), SandboxError> {
        self.remove_ephemeral(learner).await
    }

    async fn nodes(&self) -> Result<Vec<NodeReport>, SandboxError> {
        let load = self.load().await?;
        let mut out = Vec::with_capacity(load.nodes.len());
        for (node, l) in load.nodes.iter().zip(&load.loads) {
            // The manager's node is reached through pglab's own connection.
            let (engine, engine_check) = match self.cluster.node_engine(node).await {
                Ok(engine) => (Some(engine.address.clone()), engine.describe().await),
                Err(why) => (node.engine.clone(), Err(why)),
            };
            out.push(NodeReport {
                node: node.label(),
                ready: node.ready,
                active: node.active,
                capacity: l.capacity,
                placed: l.placed,
                running: l.running,
                engine,
                engine_check,
            });
        }
        Ok(out)
    }

    async fn list(&self) -> Result<Vec<SandboxStatus>, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            out.push(self.describe(r.learner_id, r).await);
        }
        // Services of this instance without a record (a store restored from
        // an older backup).
        let services = self
            .cluster
            .services(&[format!("pglab.instance={}", self.instance)])
            .await?;
        for s in services {
            if service_label(&s, ephemeral::LABEL).is_some() {
                let node = service_label(&s, "pglab.node").unwrap_or_default();
                let node = match self.cluster.node(&node).await {
                    Ok(Found::Yes(n)) => Some(n.label()),
                    _ => None,
                };
                out.extend(ephemeral::listed(&s, node));
                continue;
            }
            let Some(learner) = service_label(&s, "pglab.learner").and_then(|l| l.parse().ok())
            else {
                continue;
            };
            if records.iter().any(|r| r.learner_id == learner) {
                continue;
            }
            out.push(listed(&s, learner, "no record in the store", None));
        }
        Ok(out)
    }

    async fn open_terminal(
        &self,
        learner: LearnerId,
        size: TerminalSize,
    ) -> Result<Terminal, SandboxError> {
        let (engine, container, password) = self.exec_target(learner).await?;
        let target = ExecTarget {
            engine: &engine,
            container: &container,
            password: &password,
        };
        exec::open_terminal(&target, &self.content_dir, &self.spec.image, size).await
    }

    async fn run_tool(&self, learner: LearnerId, run: ToolRun) -> Result<ToolOutput, SandboxError> {
        let (engine, container, password) = self.exec_target(learner).await?;
        let target = ExecTarget {
            engine: &engine,
            container: &container,
            password: &password,
        };
        exec::run_tool(&target, run).await
    }

    async fn log_follow(
        &self,
        learner: LearnerId,
        after: Option<String>,
        tail: usize,
    ) -> Result<super::log::LogStream, SandboxError> {
        let (engine, container, _) = self.task_target(learner).await?;
        Ok(follow_container(engine.docker, container, after, tail))
    }

    async fn inspect(&self, learner: LearnerId) -> Result<serde_json::Value, SandboxError> {
        let (engine, container, password) = self.task_target(learner).await?;
        inspect_redacted(&engine, &container, &password).await
    }

    async fn states(&self) -> Result<Vec<(LearnerId, SandboxState)>, SandboxError> {
        SwarmProvisioner::states(self).await
    }

    async fn running_count(&self) -> Result<usize, SandboxError> {
        let services = self
            .cluster
            .services(&[
                format!("pglab.instance={}", self.instance),
                "pglab.learner".to_string(),
            ])
            .await?;
        // A task with a health check counts as running in the service's
        // status only once its first check passed; one pglab already uses
        // (seen answering while `starting`, `usable`) is running too, at the
        // cost of one task list for each such service, seconds after its
        // start.
        let mut count = 0;
        for s in &services {
            if running_tasks(s) > 0 {
                count += 1;
                continue;
            }
            let Some(name) = s.spec.as_ref().and_then(|s| s.name.as_deref()) else {
                continue;
            };
            if replicas(s) > 0
                && self.cached(name).is_some()
                && self.still_ready(name).await?.is_some()
            {
                count += 1;
            }
        }
        Ok(count)
    }

    fn progress(&self) -> &ProgressHub {
        &self.hub
    }

    fn admission(&self) -> &Admission {
        &self.admission
    }

    fn start_background(self: Arc<Self>) {
        let sweeper = self.clone();
        tokio::spawn(async move { sweeper.sweep_ephemerals().await });
        if self.pool_size > 0 {
            tokio::spawn(pool::run(self));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_task_is_used_once_postgres_was_seen_answering_in_it() {
        let task = |state| Task {
            status: Some(bollard::models::TaskStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(usable(&task(TaskState::RUNNING), false));
        assert!(!usable(&task(TaskState::STARTING), false));
        assert!(usable(&task(TaskState::STARTING), true));
        assert!(!usable(&task(TaskState::PREPARING), true));
        assert!(!usable(&task(TaskState::SHUTDOWN), true));
    }

    #[test]
    fn a_task_ended_for_good_has_no_task_desired_running_or_ready() {
        let task = |desired| Task {
            desired_state: Some(desired),
            ..Default::default()
        };
        assert!(!ended_for_good(&[]), "no task yet: the swarm makes one");
        assert!(ended_for_good(&[task(TaskState::SHUTDOWN)]));
        assert!(!ended_for_good(&[
            task(TaskState::READY),
            task(TaskState::SHUTDOWN)
        ]));
        assert!(!ended_for_good(&[task(TaskState::RUNNING)]));
    }

    #[test]
    fn task_states_are_the_start_steps_in_order() {
        let steps: Vec<&str> = [
            TaskState::NEW,
            TaskState::PENDING,
            TaskState::ASSIGNED,
            TaskState::PREPARING,
            TaskState::STARTING,
            TaskState::RUNNING,
            TaskState::FAILED,
        ]
        .into_iter()
        .map(|s| step_of(Some(s), None).0)
        .collect();
        assert_eq!(
            steps,
            [
                "pending",
                "pending",
                "assigned",
                "preparing",
                "starting",
                "waiting for healthy",
                "retrying"
            ]
        );
    }
}
