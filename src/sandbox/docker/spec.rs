//! What a sandbox container is: image, environment, PostgreSQL settings,
//! resource limits, isolation, labels, health check and mounts.
//!
//! The environment follows the official `postgres` image (POSTGRES_USER,
//! POSTGRES_PASSWORD, POSTGRES_DB, POSTGRES_INITDB_ARGS, PGDATA), which our
//! own image's entrypoint honours too, so `--sandbox-image postgres:16` works
//! unchanged.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, Mount, MountType, RestartPolicy,
    RestartPolicyNameEnum,
};

use crate::sandbox::compose::ComposePlan;
use crate::sandbox::{LAB_DB, LAB_USER, SandboxConfig};

/// PGDATA inside the container (the official image's, and ours).
pub const PGDATA: &str = "/var/lib/postgresql/data";
/// PostgreSQL's socket dir inside the container (Debian's default).
pub const SOCKET_DIR: &str = "/var/run/postgresql";

/// Limits and image of every sandbox container.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    pub image: String,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
    pub shm_bytes: i64,
}

impl ContainerSpec {
    pub fn from_config(config: &SandboxConfig) -> Self {
        const MIB: i64 = 1024 * 1024;
        Self {
            image: config.sandbox_image.clone(),
            memory_bytes: i64::try_from(config.sandbox_memory_mib).unwrap_or(256) * MIB,
            nano_cpus: (config.sandbox_cpus * 1e9).round() as i64,
            pids: config.sandbox_pids,
            shm_bytes: i64::try_from(config.sandbox_shm_mib).unwrap_or(64) * MIB,
        }
    }

    /// The create body of one sandbox container.
    pub fn body(
        &self,
        labels: HashMap<String, String>,
        volume: &str,
        socket_dir: &Path,
        password: &str,
    ) -> ContainerCreateBody {
        let env = vec![
            format!("POSTGRES_USER={LAB_USER}"),
            format!("POSTGRES_PASSWORD={password}"),
            format!("POSTGRES_DB={LAB_DB}"),
            // scram on the socket too, so that one learner's password never
            // opens another's server; --no-sync because initdb's final sync
            // costs a second and only guards against an OS crash during
            // initdb (the cluster would then be re-created anyway).
            "POSTGRES_INITDB_ARGS=--auth-local=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8"
                .to_string(),
            format!("PGDATA={PGDATA}"),
        ];
        // Small memory so that dozens fit on one machine; the socket only.
        // Not max_connections: the connections lab lowers it with ALTER
        // SYSTEM, which a command-line setting would outrank. The image's
        // template cluster has 20, and its entrypoint never starts with
        // fewer than 10, so pglab always has a way in.
        let settings = [
            "listen_addresses=",
            "shared_buffers=16MB",
            "work_mem=4MB",
            "maintenance_work_mem=16MB",
            "effective_cache_size=128MB",
            "max_wal_size=256MB",
            "min_wal_size=32MB",
            "max_worker_processes=4",
            "max_parallel_workers=2",
            "max_parallel_workers_per_gather=1",
            "jit=off",
            // The server log (GET /api/sandbox/log, the container's stderr)
            // shows lock waits past deadlock_timeout (1 s) and deadlocks
            // with both statements, by pid.
            "log_lock_waits=on",
            "log_line_prefix=%m [%p] ",
            // The performance labs use it; both our image and the official
            // one ship it.
            "shared_preload_libraries=pg_stat_statements",
        ];
        let mut cmd = vec!["postgres".to_string()];
        for s in settings {
            cmd.push("-c".into());
            cmd.push(s.into());
        }
        let nanos = |ms: i64| ms * 1_000_000;
        ContainerCreateBody {
            image: Some(self.image.clone()),
            env: Some(env),
            cmd: Some(cmd),
            labels: Some(labels),
            // SIGINT is PostgreSQL's fast shutdown (the image cannot carry
            // STOPSIGNAL when imported on engine 20.10).
            stop_signal: Some("SIGINT".into()),
            stop_timeout: Some(10),
            healthcheck: Some(HealthConfig {
                // The container's main process (PID 1, or the child of the
                // init process) is postgres only once the entrypoint's
                // first-start work is over: a temporary server does not count.
                test: Some(vec![
                    "CMD-SHELL".into(),
                    format!(
                        "main=1; [ \"$(cat /proc/1/comm)\" = postgres ] || main=$(cut -d' ' -f1 /proc/1/task/1/children); \
                         [ \"$(cat /proc/$main/comm)\" = postgres ] && pg_isready -q -h {SOCKET_DIR} -U {LAB_USER} -d {LAB_DB}"
                    ),
                ]),
                // Every check is a `docker exec`: at 2 s, 20 idle sandboxes
                // cost 28 % of a 2-core machine, at 10 s 8 % (measured).
                // pglab's own readiness poll does not wait for it; only the
                // status after a pglab restart and "unhealthy" use it.
                interval: Some(nanos(10_000)),
                timeout: Some(nanos(3_000)),
                retries: Some(3),
                start_period: Some(nanos(60_000)),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                memory: Some(self.memory_bytes),
                // No swap beyond the memory limit.
                memory_swap: Some(self.memory_bytes),
                nano_cpus: Some(self.nano_cpus),
                pids_limit: Some(self.pids),
                shm_size: Some(self.shm_bytes),
                // A tiny init (docker-init, tini) as PID 1 reaps orphans. With
                // postgres as PID 1, a process of a `docker exec` (the health
                // check, a web terminal) orphaned when its parent died was
                // re-parented to the postmaster; its death by SIGPIPE then
                // looked like a crashed backend and PostgreSQL restarted,
                // dropping every session (seen under the 200-learner load).
                init: Some(true),
                // No route out, not even to other sandboxes: pglab reaches
                // the server through the bind-mounted socket dir.
                network_mode: Some("none".into()),
                security_opt: Some(vec!["no-new-privileges".into()]),
                cap_drop: Some(vec!["ALL".into()]),
                // The entrypoint chowns PGDATA and the socket dir as root and
                // drops to the postgres user; nothing else is needed.
                cap_add: Some(
                    ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"]
                        .map(String::from)
                        .to_vec(),
                ),
                mounts: Some(vec![
                    Mount {
                        target: Some(PGDATA.into()),
                        source: Some(volume.into()),
                        typ: Some(MountType::VOLUME),
                        ..Default::default()
                    },
                    Mount {
                        target: Some(SOCKET_DIR.into()),
                        source: Some(socket_dir.display().to_string()),
                        typ: Some(MountType::BIND),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Applies a learner's compose settings to pglab's container body: their
/// image, health check (or none), limits (the caps where they wrote none),
/// restart policy and `-c` settings after pglab's (the later `-c` wins), and
/// the named volume `volume` at PGDATA or none (the image's `VOLUME` then
/// gives an anonymous one, removed with the container). Network, socket,
/// privileges and init stay pglab's.
pub fn apply_plan(body: &mut ContainerCreateBody, plan: &ComposePlan, volume: Option<&str>) {
    body.image = Some(plan.image.clone());
    if let Some(cmd) = body.cmd.as_mut() {
        for (name, value) in &plan.settings {
            cmd.push("-c".into());
            cmd.push(format!("{name}={value}"));
        }
    }
    body.healthcheck = Some(match &plan.healthcheck {
        None => HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        },
        Some(h) => HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            retries: h.retries,
            start_period: h.start_period_ns,
            ..Default::default()
        },
    });
    if let Some(labels) = body.labels.as_mut() {
        labels.insert("pglab.compose".into(), "learner".into());
        labels.insert("pglab.compose.limits".into(), plan.limits_set());
    }
    if let Some(host) = body.host_config.as_mut() {
        if let Some(memory) = plan.memory_bytes {
            host.memory = Some(memory);
            host.memory_swap = Some(memory);
        }
        if let Some(cpus) = plan.nano_cpus {
            host.nano_cpus = Some(cpus);
        }
        if let Some(pids) = plan.pids {
            host.pids_limit = Some(pids);
        }
        host.restart_policy = plan.restart.as_deref().map(|r| RestartPolicy {
            name: Some(match r {
                "always" => RestartPolicyNameEnum::ALWAYS,
                "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                _ => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: plan.restart_retries,
        });
        if let Some(mounts) = host.mounts.as_mut() {
            mounts.retain(|m| m.target.as_deref() != Some(PGDATA));
            if let Some(volume) = volume {
                mounts.push(Mount {
                    target: Some(PGDATA.into()),
                    source: Some(volume.into()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                });
            }
        }
    }
}
