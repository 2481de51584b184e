//! The swarm calls the backend makes on the manager (nodes, services,
//! tasks, the overlay network) and on a node's own engine (its volumes),
//! each with a deadline, through the Docker backend's [`Engine`] wrapper so
//! that errors read the same.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    HealthConfig, NetworkCreateRequest, Node, NodeSpecAvailabilityEnum, NodeState, Service,
    ServiceSpec, Task,
};
use bollard::query_parameters::{
    InspectServiceOptionsBuilder, ListNodesOptions, ListServicesOptionsBuilder,
    ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};

use crate::sandbox::SandboxError;
use crate::sandbox::docker::connect::{EngineTls, open_engine, tls_for};
use crate::sandbox::docker::engine::{Engine, Found};

const QUICK: Duration = Duration::from_secs(10);

/// Node label: the address of the node's own engine (`unix://...`,
/// `tcp://...`), used to remove a learner's volume there.
pub const LABEL_ENGINE: &str = "pglab.engine";
/// Node label: how many sandboxes the node holds (else `--swarm-node-capacity`).
pub const LABEL_CAPACITY: &str = "pglab.capacity";
/// Node label: the address pglab reaches the node's published ports at
/// (else the node's swarm address).
pub const LABEL_ADDRESS: &str = "pglab.address";

/// Service label: the health check the service was made with, as the
/// engine's JSON (`{"Test":["NONE"]}` for none), which an update puts back
/// (see [`Cluster::update`]).
pub const LABEL_HEALTH: &str = "pglab.health";

/// What pglab needs of one node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// Where its published ports are reached.
    pub addr: String,
    pub ready: bool,
    pub active: bool,
    pub capacity: Option<usize>,
    pub engine: Option<String>,
}

impl NodeInfo {
    fn from_node(node: Node) -> Self {
        let spec = node.spec.unwrap_or_default();
        let labels = spec.labels.unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let swarm_addr = status
            .addr
            .filter(|a| !a.is_empty() && a != "0.0.0.0")
            .or_else(|| {
                let m = node.manager_status?.addr?;
                Some(m.rsplit_once(':').map_or(m.clone(), |(h, _)| h.to_string()))
            })
            .unwrap_or_default();
        Self {
            id: node.id.unwrap_or_default(),
            hostname: node
                .description
                .and_then(|d| d.hostname)
                .unwrap_or_default(),
            addr: labels.get(LABEL_ADDRESS).cloned().unwrap_or(swarm_addr),
            ready: status.state == Some(NodeState::READY),
            active: spec.availability == Some(NodeSpecAvailabilityEnum::ACTIVE),
            capacity: labels
                .get(LABEL_CAPACITY)
                .and_then(|c| c.trim().parse().ok()),
            engine: labels.get(LABEL_ENGINE).cloned().filter(|e| !e.is_empty()),
        }
    }

    /// "HOSTNAME ADDRESS", as `pglab sandbox list` shows it.
    pub fn label(&self) -> String {
        format!("{} {}", self.hostname, self.addr)
    }
}

/// How long a node engine that could not be reached is not tried again.
const RETRY_ENGINE: Duration = Duration::from_secs(5);

struct EngineFailure {
    at: std::time::Instant,
    why: String,
    logged: std::time::Instant,
}

/// The manager's engine, plus connections to nodes' own engines.
pub struct Cluster {
    pub manager: Engine,
    /// The swarm id of the node the manager connection runs on.
    pub manager_node: String,
    node_engines: std::sync::Mutex<HashMap<String, Engine>>,
    /// `--engine-tls`: how `tcp://` labels are reached.
    tls: Option<EngineTls>,
    /// Node engines that could not be reached: when, why, and when that was
    /// last logged. A failure is answered from here for [`RETRY_ENGINE`]
    /// (a down node must not cost every call a connect timeout) and logged
    /// once a minute.
    engine_failures: std::sync::Mutex<HashMap<String, EngineFailure>>,
    /// The sandboxes' own health check, put back into a spec read for an
    /// update when the service has no [`LABEL_HEALTH`] (one made by an
    /// older pglab): bollard reads the task template's health check as
    /// `HealthCheck` where the engine writes `Healthcheck`, so a spec read
    /// and sent back would lose it, and the changed task template would
    /// make the swarm replace the running task.
    health: Option<HealthConfig>,
}

fn filters(pairs: &[(&str, String)]) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        map.entry(k.to_string()).or_default().push(v.clone());
    }
    map
}

impl Cluster {
    pub fn new(
        manager: Engine,
        manager_node: String,
        health: Option<HealthConfig>,
        tls: Option<EngineTls>,
    ) -> Self {
        Self {
            manager,
            manager_node,
            node_engines: Default::default(),
            tls,
            engine_failures: Default::default(),
            health,
        }
    }

    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, SandboxError> {
        let nodes = self
            .manager
            .must(
                "list the swarm's nodes",
                QUICK,
                self.manager.docker.list_nodes(None::<ListNodesOptions>),
            )
            .await?;
        Ok(nodes.into_iter().map(NodeInfo::from_node).collect())
    }

    pub async fn node(&self, id: &str) -> Result<Found<NodeInfo>, SandboxError> {
        Ok(
            match self
                .manager
                .call(
                    "inspect a swarm node",
                    QUICK,
                    self.manager.docker.inspect_node(id),
                )
                .await?
            {
                Found::Yes(n) => Found::Yes(NodeInfo::from_node(n)),
                Found::No => Found::No,
            },
        )
    }

    pub async fn service(&self, name: &str) -> Result<Found<Service>, SandboxError> {
        let options = InspectServiceOptionsBuilder::default().build();
        self.manager
            .call(
                "inspect a service",
                QUICK,
                self.manager.docker.inspect_service(name, Some(options)),
            )
            .await
    }

    /// Services carrying all these labels (`key=value` or `key`), with
    /// their running-task counts.
    pub async fn services(&self, labels: &[String]) -> Result<Vec<Service>, SandboxError> {
        let pairs: Vec<(&str, String)> = labels.iter().map(|l| ("label", l.clone())).collect();
        let options = ListServicesOptionsBuilder::default()
            .filters(&filters(&pairs))
            .status(true)
            .build();
        self.manager
            .must(
                "list services",
                QUICK,
                self.manager.docker.list_services(Some(options)),
            )
            .await
    }

    pub async fn create_service(&self, spec: ServiceSpec) -> Result<(), SandboxError> {
        self.manager
            .must(
                "create a service",
                Duration::from_secs(30),
                self.manager.docker.create_service(spec, None),
            )
            .await
            .map(|_| ())
    }

    /// Sets the service's replica count (0 stops it, 1 runs it).
    pub async fn scale(&self, name: &str, replicas: i64) -> Result<(), SandboxError> {
        self.update(name, "scaled", |spec| {
            let mode = spec.mode.get_or_insert_with(Default::default);
            let replicated = mode.replicated.get_or_insert_with(Default::default);
            if replicated.replicas == Some(replicas) {
                return false;
            }
            replicated.replicas = Some(replicas);
            true
        })
        .await
    }

    /// Asks the swarm for a new task of a service whose task ended and is
    /// not restarted (restart policy `none`, or `on-failure` out of
    /// attempts): `docker service update --force`.
    pub async fn force_new_task(&self, name: &str) -> Result<(), SandboxError> {
        self.update(name, "forced", |spec| {
            let task = spec.task_template.get_or_insert_with(Default::default);
            task.force_update = Some(task.force_update.unwrap_or(0).wrapping_add(1));
            true
        })
        .await
    }

    /// Sets and removes labels of the service itself (not of its tasks'
    /// containers, so its task keeps running).
    pub async fn set_labels(
        &self,
        name: &str,
        set: &[(&str, String)],
        remove: &[&str],
    ) -> Result<(), SandboxError> {
        self.update(name, "relabelled", |spec| {
            let labels = spec.labels.get_or_insert_with(Default::default);
            let before = labels.clone();
            for key in remove {
                labels.remove(*key);
            }
            for (key, value) in set {
                labels.insert((*key).to_string(), value.clone());
            }
            *labels != before
        })
        .await
    }

    /// Changes a service's spec with `change` (which answers whether it
    /// changed anything), at the version read, again when someone else
    /// updated it in between.
    async fn update(
        &self,
        name: &str,
        what: &str,
        change: impl Fn(&mut ServiceSpec) -> bool,
    ) -> Result<(), SandboxError> {
        for _attempt in 0..3 {
            let Found::Yes(service) = self.service(name).await? else {
                return Err(SandboxError::Failed(format!("the service {name} is gone")));
            };
            let version = service.version.and_then(|v| v.index).unwrap_or(0);
            let mut spec = service.spec.unwrap_or_default();
            if !change(&mut spec) {
                return Ok(());
            }
            let made_with = spec
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_HEALTH))
                .and_then(|h| serde_json::from_str::<Option<HealthConfig>>(h).ok());
            if let Some(container) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.container_spec.as_mut())
                && container.health_check.is_none()
            {
                container.health_check = made_with.unwrap_or_else(|| self.health.clone());
            }
            let options = UpdateServiceOptionsBuilder::default()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            match self
                .manager
                .call(
                    "update a service",
                    Duration::from_secs(30),
                    self.manager
                        .docker
                        .update_service(name, spec, options, None),
                )
                .await
            {
                Ok(Found::Yes(_)) => return Ok(()),
                Ok(Found::No) => {
                    return Err(SandboxError::Failed(format!("the service {name} is gone")));
                }
                // "update out of sequence": someone else updated it; again.
                Err(SandboxError::Failed(m)) if m.contains("out of sequence") => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SandboxError::Failed(format!(
            "the service {name} kept changing while it was {what}"
        )))
    }

    /// Removes a service (gone already is fine).
    pub async fn remove_service(&self, name: &str) -> Result<(), SandboxError> {
        self.manager
            .call(
                "remove a service",
                Duration::from_secs(30),
                self.manager.docker.delete_service(name),
            )
            .await
            .map(|_| ())
    }

    /// The service's tasks, newest first.
    pub async fn tasks(&self, service: &str) -> Result<Vec<Task>, SandboxError> {
        let options = ListTasksOptionsBuilder::default()
            .filters(&filters(&[("service", service.to_string())]))
            .build();
        let mut tasks = self
            .manager
            .must(
                "list a service's tasks",
                QUICK,
                self.manager.docker.list_tasks(Some(options)),
            )
            .await?;
        tasks.sort_by_key(|t| {
            std::cmp::Reverse(t.version.as_ref().and_then(|v| v.index).unwrap_or(0))
        });
        Ok(tasks)
    }

    /// Creates the attachable overlay network unless it exists.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), SandboxError> {
        let exists = self
            .manager
            .call(
                "inspect a network",
                QUICK,
                self.manager.docker.inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                ),
            )
            .await?;
        if matches!(exists, Found::Yes(_)) {
            return Ok(());
        }
        let body = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        self.manager
            .must(
                "create the overlay network",
                QUICK,
                self.manager.docker.create_network(body),
            )
            .await
            .map(|_| ())
    }

    /// The node's own engine: the manager's connection for the manager's
    /// node, else the node's `pglab.engine` label (connected once, over TLS
    /// for `tcp://` with `--engine-tls`). The error says why not, for the
    /// learner's message; it is also logged, once a minute per address.
    pub async fn node_engine(&self, node: &NodeInfo) -> Result<Engine, String> {
        if node.id == self.manager_node {
            return Ok(self.manager.clone());
        }
        let Some(address) = node.engine.as_deref() else {
            return Err(format!(
                "the node has no {LABEL_ENGINE} label: an operator sets it to the address of \
                 the node's engine (docs/operations.md)"
            ));
        };
        if let Some(e) = self
            .node_engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
        {
            return Ok(e.clone());
        }
        if let Some(f) = self
            .engine_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
            && f.at.elapsed() < RETRY_ENGINE
        {
            return Err(f.why.clone());
        }
        let engine = match self.connect_node(address).await {
            Ok(engine) => engine,
            Err(why) => {
                self.failed(node, address, &why);
                return Err(why);
            }
        };
        self.engine_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(address);
        self.node_engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(engine.address.clone(), engine.clone());
        Ok(engine)
    }

    async fn connect_node(&self, address: &str) -> Result<Engine, String> {
        let (docker, address) = open_engine(Some(address), self.tls.as_ref())?;
        let docker = tokio::time::timeout(QUICK, docker.negotiate_version())
            .await
            .map_err(|_| format!("the engine at {address} does not answer"))?
            .map_err(|e| {
                format!("the engine at {address} did not take pglab's connection ({e})")
            })?;
        Ok(Engine {
            docker,
            tls: tls_for(&address, self.tls.as_ref()),
            address,
        })
    }

    /// Remembers a failed connection; logs it unless it was logged in the
    /// last minute.
    fn failed(&self, node: &NodeInfo, address: &str, why: &str) {
        let now = std::time::Instant::now();
        let mut failures = self
            .engine_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let log = failures
            .get(address)
            .is_none_or(|f| now.duration_since(f.logged) >= Duration::from_secs(60));
        let logged = match failures.get(address) {
            Some(f) if !log => f.logged,
            _ => now,
        };
        failures.insert(
            address.to_string(),
            EngineFailure {
                at: now,
                why: why.to_string(),
                logged,
            },
        );
        if log {
            tracing::warn!(node = node.label(), "cannot reach the node's engine: {why}");
        }
    }
}
