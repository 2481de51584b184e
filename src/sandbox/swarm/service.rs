//! What a learner's swarm service is, derived from the Docker backend's
//! container body ([`ContainerSpec::body`], with a learner's compose plan
//! applied by [`apply_plan`] when one is in force) so that both backends run
//! the same image, environment (users, password, initdb settings),
//! PostgreSQL settings, health check, limits and capabilities.
//!
//! Differences, all forced by the swarm: PostgreSQL listens on TCP (the
//! service has a network; pglab reaches it through a port published in
//! `mode=host` on its node, chosen by the engine, or by name on the overlay
//! with nothing published); `/dev/shm` is a tmpfs
//! mount of the same size (services have no `ShmSize`); there is no
//! `no-new-privileges` and no swap limit (engine 20.10's services have
//! neither); one replica, pinned by `node.id==NODE` to the node that holds
//! the named volume at PGDATA; the restart policy is the swarm's
//! ([`restart_policy`]). Without a named volume (a compose file with none,
//! the throw-away server) the image's anonymous volume belongs to the task's
//! container, and every new task (a restart, a stop and start) starts empty.
//! The health check the service is made with is also kept in its
//! [`LABEL_HEALTH`] label, so that an update puts that one back
//! (`cluster.rs`).

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkAttachmentConfig, RestartPolicy, RestartPolicyNameEnum, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use super::cluster::LABEL_HEALTH;
use crate::sandbox::compose::ComposePlan;
use crate::sandbox::docker::spec::{ContainerSpec, PGDATA, apply_plan};

/// PostgreSQL's port inside the service's container.
pub const PG_PORT: i64 = 5432;

/// One learner's service.
pub struct ServiceParams<'a> {
    pub name: &'a str,
    pub labels: HashMap<String, String>,
    /// The named volume at PGDATA; `None`: none (the image's anonymous
    /// volume, which dies with the task's container).
    pub volume: Option<&'a str>,
    pub password: &'a str,
    /// The image by id when the manager has it (nodes then never try a
    /// registry), else by name.
    pub image: &'a str,
    pub node_id: &'a str,
    pub network: &'a str,
    /// Publish PostgreSQL's port in mode=host on the node (pglab on a host);
    /// false when pglab reaches the service over the overlay.
    pub publish: bool,
    /// The learner's compose settings in force, if any.
    pub plan: Option<&'a ComposePlan>,
}

/// The health check every sandbox service gets (the Docker backend's).
pub fn health_check(spec: &ContainerSpec) -> Option<HealthConfig> {
    spec.body(HashMap::new(), "", Path::new("/nonexistent"), "")
        .healthcheck
}

/// The swarm's restart policy for a container's (a compose file's
/// `restart`; `None`, pglab's own, is `any`). The swarm has no exact match:
/// - `always` and `unless-stopped` are both `any`: a service's task is
///   never stopped by hand (pglab's stop is scale 0, which ends the task
///   whatever its policy), so "unless stopped" adds nothing, and a task that
///   ends is replaced by a **new container**, not restarted in place.
/// - `on-failure[:N]` is `on-failure` with `N` attempts at most (0 or none:
///   unlimited); the swarm counts the attempts of the service's slot over
///   its whole life (no window), Docker those of one container.
/// - `no` is `none`: a task that ends stays ended (no automatic restart,
///   like Docker's `no`); pglab's next start asks the swarm for a new task,
///   as `docker start` would start the exited container.
///
/// Every swarm restart waits 1 s (Docker backs off from 100 ms).
pub fn restart_policy(docker: Option<&RestartPolicy>) -> TaskSpecRestartPolicy {
    let (condition, max_attempts) = match docker.and_then(|r| r.name) {
        Some(RestartPolicyNameEnum::NO) => (TaskSpecRestartPolicyConditionEnum::NONE, None),
        Some(RestartPolicyNameEnum::ON_FAILURE) => (
            TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            docker
                .and_then(|r| r.maximum_retry_count)
                .filter(|n| *n > 0),
        ),
        _ => (TaskSpecRestartPolicyConditionEnum::ANY, None),
    };
    TaskSpecRestartPolicy {
        condition: Some(condition),
        delay: Some(1_000_000_000),
        max_attempts,
        window: None,
    }
}

/// The service spec of a learner's sandbox.
pub fn service_spec(spec: &ContainerSpec, p: &ServiceParams<'_>) -> ServiceSpec {
    // The socket dir is unused on the swarm: PostgreSQL listens on TCP.
    let mut body = spec.body(
        p.labels.clone(),
        p.volume.unwrap_or_default(),
        Path::new("/nonexistent"),
        p.password,
    );
    if let Some(plan) = p.plan {
        apply_plan(&mut body, plan, p.volume);
    }
    // The container's labels (with `pglab.compose` when a plan is in
    // force), and the service's: those plus its health check.
    let labels = body.labels.take().unwrap_or_default();
    let mut service_labels = labels.clone();
    if let Ok(health) = serde_json::to_string(&body.healthcheck) {
        service_labels.insert(LABEL_HEALTH.into(), health);
    }
    let host = body.host_config.unwrap_or_default();
    let args = body.cmd.map(|cmd| {
        cmd.into_iter()
            .map(|a| {
                if a == "listen_addresses=" {
                    "listen_addresses=*".to_string()
                } else {
                    a
                }
            })
            .collect()
    });
    let mut mounts = Vec::new();
    if let Some(volume) = p.volume {
        mounts.push(Mount {
            target: Some(PGDATA.into()),
            source: Some(volume.into()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(p.labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    mounts.push(Mount {
        target: Some("/dev/shm".into()),
        typ: Some(MountType::TMPFS),
        tmpfs_options: Some(MountTmpfsOptions {
            size_bytes: host.shm_size,
            ..Default::default()
        }),
        ..Default::default()
    });
    let container = TaskSpecContainerSpec {
        image: Some(p.image.to_string()),
        labels: Some(labels),
        args,
        env: body.env,
        mounts: Some(mounts),
        stop_signal: body.stop_signal,
        stop_grace_period: body.stop_timeout.map(|s| s * 1_000_000_000),
        health_check: body.healthcheck,
        init: host.init,
        capability_add: host.cap_add,
        capability_drop: host.cap_drop,
        ..Default::default()
    };
    ServiceSpec {
        name: Some(p.name.to_string()),
        labels: Some(service_labels),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: host.nano_cpus,
                    memory_bytes: host.memory,
                    pids: host.pids_limit,
                }),
                ..Default::default()
            }),
            restart_policy: Some(restart_policy(host.restart_policy.as_ref())),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={}", p.node_id)]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(p.network.to_string()),
                aliases: Some(vec![p.name.to_string()]),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: p.publish.then(|| {
                vec![EndpointPortConfig {
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    target_port: Some(PG_PORT),
                    // None: the engine picks a free port on the node.
                    published_port: None,
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    name: None,
                }]
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            image: "pglab/sandbox:15".into(),
            memory_bytes: 256 << 20,
            nano_cpus: 500_000_000,
            pids: 256,
            shm_bytes: 64 << 20,
        }
    }

    #[test]
    fn the_service_has_the_docker_backends_limits_and_a_named_volume() {
        let labels = HashMap::from([("pglab.learner".to_string(), "7".to_string())]);
        let s = service_spec(
            &spec(),
            &ServiceParams {
                name: "pglab-x-7",
                labels,
                volume: Some("pglab-x-abc"),
                password: "secret",
                image: "sha256:1234",
                node_id: "node9",
                network: "net",
                publish: true,
                plan: None,
            },
        );
        let task = s.task_template.unwrap();
        let c = task.container_spec.unwrap();
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.memory_bytes, Some(256 << 20));
        assert_eq!(limits.nano_cpus, Some(500_000_000));
        assert_eq!(limits.pids, Some(256));
        let mounts = c.mounts.unwrap();
        assert!(mounts.iter().all(|m| m.typ != Some(MountType::BIND)));
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[0].source.as_deref(), Some("pglab-x-abc"));
        assert!(
            c.env
                .unwrap()
                .contains(&"POSTGRES_PASSWORD=secret".to_string())
        );
        let args = c.args.unwrap();
        assert!(args.contains(&"listen_addresses=*".to_string()));
        assert!(!args.contains(&"listen_addresses=".to_string()));
        assert_eq!(c.capability_drop, Some(vec!["ALL".to_string()]));
        // What an update puts back (cluster.rs) is what a service is made with.
        assert_eq!(c.health_check, health_check(&spec()));
        assert!(c.health_check.and_then(|h| h.test).is_some());
        assert_eq!(
            task.placement.unwrap().constraints,
            Some(vec!["node.id==node9".to_string()])
        );
        let endpoint = s.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        assert_eq!(
            endpoint.ports.unwrap()[0].publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
    }

    fn plan() -> ComposePlan {
        ComposePlan {
            image_written: "postgres:15".into(),
            image: "pglab/sandbox:15".into(),
            volume: None,
            healthcheck: Some(crate::sandbox::compose::Health {
                test: vec!["CMD-SHELL".into(), "pg_isready -U labuser".into()],
                interval_ns: Some(30_000_000_000),
                timeout_ns: None,
                retries: Some(5),
                start_period_ns: None,
            }),
            memory_bytes: Some(200 << 20),
            nano_cpus: None,
            pids: None,
            settings: vec![("work_mem".into(), "8MB".into())],
            restart: Some("on-failure".into()),
            restart_retries: Some(3),
        }
    }

    #[test]
    fn a_compose_plan_gives_its_settings_limits_health_check_and_no_volume() {
        let plan = plan();
        let s = service_spec(
            &spec(),
            &ServiceParams {
                name: "pglab-x-7",
                labels: HashMap::from([("pglab.learner".to_string(), "7".to_string())]),
                volume: None,
                password: "secret",
                image: "sha256:1234",
                node_id: "node9",
                network: "net",
                publish: true,
                plan: Some(&plan),
            },
        );
        let task = s.task_template.unwrap();
        let c = task.container_spec.unwrap();
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.memory_bytes, Some(200 << 20));
        assert_eq!(
            limits.nano_cpus,
            Some(500_000_000),
            "the cap where none is set"
        );
        let args = c.args.unwrap();
        let at = args.iter().position(|a| a == "work_mem=8MB").unwrap();
        assert!(at > args.iter().position(|a| a == "work_mem=4MB").unwrap());
        assert!(args.contains(&"listen_addresses=*".to_string()));
        let mounts = c.mounts.unwrap();
        assert!(mounts.iter().all(|m| m.target.as_deref() != Some(PGDATA)));
        let restart = task.restart_policy.unwrap();
        assert_eq!(
            restart.condition,
            Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE)
        );
        assert_eq!(restart.max_attempts, Some(3));
        assert_eq!(
            c.labels.unwrap().get("pglab.compose").map(String::as_str),
            Some("learner")
        );
        // The label an update reads back holds the plan's health check.
        let health = c.health_check.unwrap();
        assert_eq!(health.interval, Some(30_000_000_000));
        let label = &s.labels.unwrap()[LABEL_HEALTH];
        let back: Option<HealthConfig> = serde_json::from_str(label).unwrap();
        assert_eq!(back, Some(health));
    }

    #[test]
    fn restart_policies_map_to_the_swarms_conditions() {
        use TaskSpecRestartPolicyConditionEnum as C;
        let of = |name, retries| {
            let r = restart_policy(Some(&RestartPolicy {
                name: Some(name),
                maximum_retry_count: retries,
            }));
            (r.condition.unwrap(), r.max_attempts)
        };
        assert_eq!(of(RestartPolicyNameEnum::NO, None), (C::NONE, None));
        assert_eq!(of(RestartPolicyNameEnum::ALWAYS, None), (C::ANY, None));
        assert_eq!(
            of(RestartPolicyNameEnum::UNLESS_STOPPED, None),
            (C::ANY, None)
        );
        assert_eq!(
            of(RestartPolicyNameEnum::ON_FAILURE, Some(2)),
            (C::ON_FAILURE, Some(2))
        );
        assert_eq!(
            of(RestartPolicyNameEnum::ON_FAILURE, None),
            (C::ON_FAILURE, None)
        );
        assert_eq!(restart_policy(None).condition, Some(C::ANY), "pglab's own");
    }
}
