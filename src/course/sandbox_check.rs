//! Checks of the learner's running sandbox itself (`kind = "sandbox"` in a
//! sidecar): what `docker inspect` says of their container, as
//! `Provisioner::inspect` answers it, judged against a list of requirements.
//! Part E step 1 asks for PostgreSQL "with a persistent volume, a proper
//! health check and resource limits", set by the learner in their own
//! compose file and brought up (`sandbox::compose`).
//!
//! A container counts only when it runs from the learner's compose file (the
//! label `pglab.compose=learner` that compose up sets): pglab's own settings
//! also have a named volume and limits, but the learner did not write them.
//! Limits count when the file set them (the label `pglab.compose.limits`, e.g.
//! `memory,cpus`, written from the plan as applied) and the engine enforces
//! them (`HostConfig`). The local backend runs clusters, not containers: its
//! sandboxes never pass.
//!
//! [`missing_in_plan`] judges a compose plan the same way, so that `pglab
//! content check` proves a reference compose file would pass.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sandbox::compose::{ComposePlan, PGDATA};

/// One thing a `sandbox` check requires of the running container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A named volume (not an anonymous one) at PostgreSQL's data directory.
    NamedVolume,
    /// A health check of the learner's (not `NONE`), not reporting unhealthy.
    Healthcheck,
    /// A memory limit the learner set.
    MemoryLimit,
    /// A CPU limit the learner set.
    CpuLimit,
    /// A process-count limit the learner set.
    PidsLimit,
}

/// What the sandbox check is given: the backend's name and its inspect
/// answer (or why there is none).
#[derive(Clone, Debug)]
pub struct SandboxFacts {
    pub backend: String,
    pub inspect: Result<Value, String>,
}

/// What is missing, one phrase per requirement not met (empty: all met).
pub fn missing(facts: &SandboxFacts, requires: &[Requirement]) -> Vec<String> {
    if facts.backend == "local" {
        return vec![
            "the local backend runs PostgreSQL clusters, not containers: this step needs \
             pglab's Docker backend (ask your instructor)"
                .into(),
        ];
    }
    let inspect = match &facts.inspect {
        Ok(v) => v,
        Err(e) => return vec![format!("your sandbox cannot be inspected: {e}")],
    };
    // `docker inspect` answers an array of one object.
    let c = inspect.get(0).unwrap_or(inspect);
    if c["State"]["Running"] != Value::Bool(true) {
        return vec!["your sandbox is not running: bring it up from your compose file".into()];
    }
    let labels = &c["Config"]["Labels"];
    if labels["pglab.compose"] != "learner" {
        return vec![
            "your sandbox runs with pglab's own settings, not your compose file: write it \
             (sandbox panel, Compose file…) and press Up"
                .into(),
        ];
    }
    let limits: Vec<&str> = labels["pglab.compose.limits"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .collect();
    let positive = |v: &Value| v.as_i64().is_some_and(|n| n > 0);
    let mut out = Vec::new();
    for r in requires {
        match r {
            Requirement::NamedVolume => {
                let mounts = c["Mounts"].as_array().cloned().unwrap_or_default();
                let data = mounts.iter().find(|m| m["Destination"] == PGDATA);
                match data {
                    Some(m) if m["Type"] == "volume" && !is_anonymous(&m["Name"]) => {}
                    Some(m) if m["Type"] == "volume" => out.push(format!(
                        "only an anonymous volume is at {PGDATA}: it goes with the container; \
                         name one (volumes: - pgdata:{PGDATA}, and pgdata under the top-level volumes:)"
                    )),
                    _ => out.push(format!(
                        "no named volume at {PGDATA} (volumes: - pgdata:{PGDATA}, and pgdata under the top-level volumes:)"
                    )),
                }
            }
            Requirement::Healthcheck => {
                let test = c["Config"]["Healthcheck"]["Test"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let none = test.is_empty() || test[0] == "NONE";
                if none {
                    out.push(
                        "no health check (healthcheck: with test: [\"CMD-SHELL\", \"pg_isready -U labuser -d labdb\"])"
                            .into(),
                    );
                } else if c["State"]["Health"]["Status"] == "unhealthy" {
                    let last = c["State"]["Health"]["Log"]
                        .as_array()
                        .and_then(|l| l.last())
                        .and_then(|l| l["Output"].as_str())
                        .map(|o| o.trim().chars().take(200).collect::<String>())
                        .unwrap_or_default();
                    out.push(format!("your health check reports unhealthy: {last}"));
                }
            }
            Requirement::MemoryLimit => {
                if !(limits.contains(&"memory") && positive(&c["HostConfig"]["Memory"])) {
                    out.push(
                        "no memory limit of yours (mem_limit, or deploy.resources.limits.memory)"
                            .into(),
                    );
                }
            }
            Requirement::CpuLimit => {
                let cpus = positive(&c["HostConfig"]["NanoCpus"])
                    || positive(&c["HostConfig"]["CpuQuota"]);
                if !(limits.contains(&"cpus") && cpus) {
                    out.push(
                        "no CPU limit of yours (cpus, or deploy.resources.limits.cpus)".into(),
                    );
                }
            }
            Requirement::PidsLimit => {
                if !(limits.contains(&"pids") && positive(&c["HostConfig"]["PidsLimit"])) {
                    out.push(
                        "no process limit of yours (pids_limit, or deploy.resources.limits.pids)"
                            .into(),
                    );
                }
            }
        }
    }
    out
}

/// The same requirements judged on a compose plan (what the file asks for).
pub fn missing_in_plan(plan: &ComposePlan, requires: &[Requirement]) -> Vec<String> {
    requires
        .iter()
        .filter(|r| match r {
            Requirement::NamedVolume => plan.volume.is_none(),
            Requirement::Healthcheck => plan
                .healthcheck
                .as_ref()
                .is_none_or(|h| h.test.first().is_none_or(|t| t == "NONE")),
            Requirement::MemoryLimit => plan.memory_bytes.is_none(),
            Requirement::CpuLimit => plan.nano_cpus.is_none(),
            Requirement::PidsLimit => plan.pids.is_none(),
        })
        .map(|r| format!("the file sets no {}", name(*r)))
        .collect()
}

fn name(r: Requirement) -> &'static str {
    match r {
        Requirement::NamedVolume => "named volume at the data directory",
        Requirement::Healthcheck => "health check",
        Requirement::MemoryLimit => "memory limit",
        Requirement::CpuLimit => "CPU limit",
        Requirement::PidsLimit => "process limit",
    }
}

/// An anonymous volume's name is 64 hex digits (the engine makes it up).
fn is_anonymous(name: &Value) -> bool {
    let name = name.as_str().unwrap_or("");
    name.is_empty() || (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [Requirement; 4] = [
        Requirement::NamedVolume,
        Requirement::Healthcheck,
        Requirement::MemoryLimit,
        Requirement::CpuLimit,
    ];

    fn facts(v: Value) -> SandboxFacts {
        SandboxFacts {
            backend: "docker".into(),
            inspect: Ok(json!([v])),
        }
    }

    fn container(volume: &str, health: Value, limits: &str) -> Value {
        json!({
            "State": {"Running": true, "Health": {"Status": "healthy", "Log": []}},
            "Config": {"Labels": {"pglab.compose": "learner", "pglab.compose.limits": limits},
                       "Healthcheck": health},
            "Mounts": [{"Type": "volume", "Name": volume, "Destination": PGDATA},
                       {"Type": "bind", "Destination": "/var/run/postgresql"}],
            "HostConfig": {"Memory": 268435456, "NanoCpus": 500000000, "PidsLimit": 256},
        })
    }

    #[test]
    fn a_compose_container_with_everything_passes() {
        let c = container(
            "pglab-x-k-c-pgdata",
            json!({"Test": ["CMD-SHELL", "pg_isready"]}),
            "memory,cpus",
        );
        assert_eq!(missing(&facts(c), &ALL), Vec::<String>::new());
    }

    #[test]
    fn each_missing_piece_is_named() {
        let anon = "a".repeat(64);
        let c = container(&anon, json!({"Test": ["NONE"]}), "memory");
        let m = missing(&facts(c), &ALL);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].contains("anonymous"), "{m:?}");
        assert!(m[1].contains("no health check"), "{m:?}");
        assert!(m[2].contains("CPU"), "{m:?}");
    }

    #[test]
    fn pglab_settings_and_the_local_backend_do_not_count() {
        let mut c = container("pglab-x-k", json!({"Test": ["CMD-SHELL", "x"]}), "");
        c["Config"]["Labels"] = json!({"pglab.managed": "true"});
        let m = missing(&facts(c), &ALL);
        assert!(m[0].contains("pglab's own settings"), "{m:?}");
        let local = SandboxFacts {
            backend: "local".into(),
            inspect: Ok(json!([])),
        };
        assert!(missing(&local, &ALL)[0].contains("local backend"));
    }

    #[test]
    fn unhealthy_says_the_last_output() {
        let mut c = container("v", json!({"Test": ["CMD", "false"]}), "memory,cpus");
        c["State"]["Health"] = json!({"Status": "unhealthy", "Log": [{"Output": "no response\n"}]});
        let m = missing(&facts(c), &[Requirement::Healthcheck]);
        assert_eq!(m, ["your health check reports unhealthy: no response"]);
    }
}
