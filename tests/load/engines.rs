//! What the load run's sandboxes run on: one private Docker engine (the
//! Docker backend, the default), or with `PGLAB_LOAD_SWARM=N` a swarm of N
//! private engines in network namespaces (tests/common/swarm.rs, the swarm
//! backend, node 1 the manager). The faults act on it: `kill` kills a
//! learner's container wherever it runs; `engine` stops and starts the one
//! engine, or on a swarm the last node's engine (a worker: its learners are
//! told their node is down), and ends once every node is Ready again.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use crate::common::engine::PrivateEngine;
use crate::common::swarm::Swarm;

pub enum Engines {
    One(PrivateEngine),
    Swarm(Swarm),
}

impl Engines {
    /// The engine(s) of the run, with the sandbox image loaded.
    pub fn start(swarm_nodes: usize, image: &str) -> Self {
        if swarm_nodes > 0 {
            Self::Swarm(Swarm::start(swarm_nodes, image))
        } else {
            Self::One(PrivateEngine::start(image))
        }
    }

    /// Whether this machine can run them (root, Docker, the tools).
    pub fn available(swarm_nodes: usize) -> bool {
        if swarm_nodes > 0 {
            Swarm::available()
        } else {
            PrivateEngine::available()
        }
    }

    /// `--sandbox` and the arguments that point pglab at them, for a
    /// running cap of `cap` (on a swarm spread evenly over the nodes).
    pub fn server_args(&self, cap: usize) -> (String, Vec<String>) {
        match self {
            Self::One(engine) => (
                "docker".into(),
                vec!["--docker-host".into(), engine.host_address()],
            ),
            Self::Swarm(swarm) => (
                "swarm".into(),
                vec![
                    "--docker-host".into(),
                    swarm.manager_address(),
                    "--engine-tls".into(),
                    swarm.engine_tls().to_str().unwrap().into(),
                    "--swarm-node-capacity".into(),
                    cap.div_ceil(swarm.nodes.len()).to_string(),
                    // A full swarm makes a start wait in line instead of
                    // stopping the least recently used sandbox: learners
                    // away from their seat free their places once idle.
                    "--sandbox-idle-secs".into(),
                    "15".into(),
                ],
            ),
        }
    }

    /// "the Docker backend" / "a swarm of N nodes", for the report.
    pub fn describe(&self) -> String {
        match self {
            Self::One(_) => "Docker backend, one private engine".into(),
            Self::Swarm(swarm) => format!("swarm backend, {} nodes", swarm.nodes.len()),
        }
    }

    /// Kills one running learner's container, picked at random; says what.
    pub fn kill_one(&self) -> String {
        let engines: Vec<&PrivateEngine> = match self {
            Self::One(engine) => vec![engine],
            Self::Swarm(swarm) => swarm.nodes.iter().map(|n| n.engine()).collect(),
        };
        let mut running = Vec::new();
        for (i, engine) in engines.iter().enumerate() {
            for c in engine.running_containers("pglab.learner") {
                running.push((i, c));
            }
        }
        if running.is_empty() {
            return "no sandbox was running".to_string();
        }
        let (i, victim) = &running[rand::random_range(0..running.len())];
        let on = match self {
            Self::One(_) => String::new(),
            Self::Swarm(_) => format!(" on node {}", i + 1),
        };
        match engines[*i].docker(&["kill", victim], Duration::from_secs(30)) {
            Ok(_) => format!("killed {victim}{on} of {} running", running.len()),
            Err(e) => format!("could not kill {victim}{on}: {e}"),
        }
    }

    /// Stops the engine (on a swarm: the last node's); returns how long
    /// stopping took.
    pub fn stop(&mut self) -> Duration {
        match self {
            Self::One(engine) => engine.stop_daemon(),
            Self::Swarm(swarm) => {
                let last = swarm.nodes.len() - 1;
                swarm.stop_engine(last)
            }
        }
    }

    /// Starts it again; on a swarm, returns once every node is Ready.
    pub fn start_again(&mut self) {
        match self {
            Self::One(engine) => engine.start_daemon(),
            Self::Swarm(swarm) => {
                let last = swarm.nodes.len() - 1;
                swarm.start_engine(last);
                swarm.wait_ready(swarm.nodes.len(), Duration::from_secs(120));
            }
        }
    }
}
