//! What a learner's swarm service is, derived from the Docker backend's
//! container body ([`ContainerSpec::body`]) so that both backends run the
//! same image, environment (users, password, initdb settings), PostgreSQL
//! settings, health check, limits and capabilities.
//!
//! Differences, all forced by the swarm: PostgreSQL listens on TCP (the
//! service has a network; pglab reaches it through a port published in
//! `mode=host` on its node, chosen by the engine, or by name on the overlay
//! with nothing published); `/dev/shm` is a tmpfs
//! mount of the same size (services have no `ShmSize`); there is no
//! `no-new-privileges` and no swap limit (engine 20.10's services have
//! neither); one replica with restart policy `any`, pinned by
//! `node.id==NODE` to the node that holds the named volume at PGDATA.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use crate::sandbox::docker::spec::{ContainerSpec, PGDATA};

/// PostgreSQL's port inside the service's container.
pub const PG_PORT: i64 = 5432;

/// One learner's service.
pub struct ServiceParams<'a> {
    pub name: &'a str,
    pub labels: HashMap<String, String>,
    pub volume: &'a str,
    pub password: &'a str,
    /// The image by id when the manager has it (nodes then never try a
    /// registry), else by name.
    pub image: &'a str,
    pub node_id: &'a str,
    pub network: &'a str,
    /// Publish PostgreSQL's port in mode=host on the node (pglab on a host);
    /// false when pglab reaches the service over the overlay.
    pub publish: bool,
}

/// The health check every sandbox service gets (the Docker backend's).
pub fn health_check(spec: &ContainerSpec) -> Option<HealthConfig> {
    spec.body(HashMap::new(), "", Path::new("/nonexistent"), "")
        .healthcheck
}

/// The service spec of a learner's sandbox.
pub fn service_spec(spec: &ContainerSpec, p: &ServiceParams<'_>) -> ServiceSpec {
    // The socket dir is unused on the swarm: PostgreSQL listens on TCP.
    let body = spec.body(
        p.labels.clone(),
        p.volume,
        Path::new("/nonexistent"),
        p.password,
    );
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
    let mounts = vec![
        Mount {
            target: Some(PGDATA.into()),
            source: Some(p.volume.into()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(p.labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        Mount {
            target: Some("/dev/shm".into()),
            typ: Some(MountType::TMPFS),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: host.shm_size,
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    let container = TaskSpecContainerSpec {
        image: Some(p.image.to_string()),
        labels: Some(p.labels.clone()),
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
    let secs = |s: i64| s * 1_000_000_000;
    ServiceSpec {
        name: Some(p.name.to_string()),
        labels: Some(p.labels.clone()),
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
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(secs(1)),
                max_attempts: None,
                window: None,
            }),
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
                volume: "pglab-x-abc",
                password: "secret",
                image: "sha256:1234",
                node_id: "node9",
                network: "net",
                publish: true,
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
}
