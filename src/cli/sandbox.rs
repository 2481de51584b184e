//! `pglab sandbox list [--orphans] | stop LEARNER | rm LEARNER`: maintenance
//! of learners' sandboxes from a shell, on the store of `--data-dir` and the
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
            Self::List { config, .. } | Self::Stop { config, .. } | Self::Rm { config, .. } => {
                config
            }
        }
    }
}

/// Runs the subcommand.
pub fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = args.action.config();
        let store = Store::open(&config.store_path()).await?;
        let provisioner = sandbox::open(config, &store).await?;
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
