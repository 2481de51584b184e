//! `pglab sandbox list [--orphans] | nodes | stop LEARNER | rm LEARNER`:
//! maintenance of learners' sandboxes from a shell, on the store of `--data-dir` and the
//! backend of `--sandbox` (as `serve` would pick it, without the pool or
//! reaper).

use clap::{Args, Subcommand};

use crate::config::ServeConfig;
use crate::sandbox::{self, LearnerId, records::Records};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Lists this server's sandboxes (learner, state, name, last use, and
    /// the node of each on the swarm backend).
    List {
        /// Only sandboxes whose learner no longer exists.
        #[arg(long)]
        orphans: bool,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Lists the swarm's nodes: state, capacity, this server's sandboxes on
    /// each, and whether pglab reaches the node's own engine (its
    /// `pglab.engine` label, over TLS with --engine-tls). Exits non-zero
    /// when some ready node's engine cannot be reached.
    Nodes {
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Stops a learner's sandbox, keeping its data.
    Stop {
        learner: LearnerId,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Removes a learner's sandbox and its data (container and volume, or
    /// cluster folder).
    Rm {
        learner: LearnerId,
        #[command(flatten)]
        config: ServeConfig,
    },
}

impl Action {
    fn config(&self) -> &ServeConfig {
        match self {
            Self::List { config, .. }
            | Self::Nodes { config }
            | Self::Stop { config, .. }
            | Self::Rm { config, .. } => config,
        }
    }
}

/// Runs the subcommand.
pub fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = args.action.config();
        let store = Store::open(&config.store_path()).await?;
        let provisioner = sandbox::open(&config.sandbox, &config.sandbox_dirs(), &store).await?;
        match args.action {
            Action::List { orphans, .. } => {
                let records = Records::new(&store);
                let mut rows = Vec::new();
                for s in provisioner.list().await? {
                    let exists = records.learner_exists(s.learner).await?;
                    if orphans && exists {
                        continue;
                    }
                    rows.push((s, exists));
                }
                // The node column only when some sandbox has one (swarm).
                let nodes = rows.iter().any(|(s, _)| s.node.is_some());
                if nodes {
                    println!("LEARNER  STATE     BACKEND  LAST USED            NODE                     NAME");
                } else {
                    println!("LEARNER  STATE     BACKEND  LAST USED            NAME");
                }
                for (s, exists) in rows {
                    let last = s
                        .last_used
                        .map(|t| format!("{}s ago", sandbox::unix_now() - t))
                        .unwrap_or_else(|| "-".into());
                    let node = if nodes {
                        format!("{:<24} ", s.node.as_deref().unwrap_or("-"))
                    } else {
                        String::new()
                    };
                    println!(
                        "{:<8} {:<9} {:<8} {:<20} {node}{}{}",
                        s.learner,
                        s.state.as_str(),
                        s.backend,
                        last,
                        s.name.unwrap_or_default(),
                        if exists {
                            ""
                        } else {
                            "  (orphan: no such learner)"
                        }
                    );
                }
            }
            Action::Nodes { .. } => {
                let nodes = provisioner.nodes().await?;
                println!("NODE                     STATE    PLACED  RUNNING  ENGINE");
                let mut unreachable = 0;
                for n in nodes {
                    let state = match (n.ready, n.active) {
                        (false, _) => "down",
                        (true, false) => "drained",
                        (true, true) => "ready",
                    };
                    let engine = match (&n.engine_check, n.engine.as_deref()) {
                        (Ok(version), Some(address)) => format!("{address}: {version}"),
                        (Ok(version), None) => version.clone(),
                        (Err(why), _) => {
                            if n.ready {
                                unreachable += 1;
                            }
                            format!("UNREACHABLE: {why}")
                        }
                    };
                    println!(
                        "{:<24} {:<8} {:>6}  {:>3}/{:<3}  {engine}",
                        n.node, state, n.placed, n.running, n.capacity
                    );
                }
                if unreachable > 0 {
                    anyhow::bail!(
                        "pglab cannot reach the engine of {unreachable} ready node(s): their \
                         learners' terminals, tool runs and dumps fail (docs/operations.md, \
                         \"Node engines\")"
                    );
                }
            }
            Action::Stop { learner, .. } => {
                provisioner.stop(learner).await?;
                println!("stopped the sandbox of learner {learner}");
            }
            Action::Rm { learner, .. } => {
                provisioner.destroy(learner).await?;
                println!("removed the sandbox of learner {learner} and its data");
            }
        }
        Ok(())
    })
}
