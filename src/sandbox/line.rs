//! Starts that answer at once when the classroom is full: a request that
//! starts a learner's sandbox (the panel's Start, the console's first run)
//! hands the start to a task of its own and answers "number N in line" as
//! soon as the backend puts the learner in the admission line, instead of
//! holding the request until a place frees (minutes, in a full class).
//!
//! The detached start goes on by itself: it takes the place when it is the
//! learner's turn, ends with the usual `ready` (or `failed`, or `left`)
//! progress event, and the learner's page hears it over the progress
//! stream. A request that comes while the learner already waits answers
//! their number at once (the waiting start holds the learner's lock in the
//! backend; a second start would only wait behind it).
//!
//! A start in line that nobody waits for any more is let go: when the
//! learner has had no page listening to their sandbox's progress and has
//! not asked for its state (nor started again) for [`ABANDONED`], the
//! detached start ends as a closed request's would (the line keeps their
//! place for its grace period, then forgets it), so a closed laptop does
//! not take a place in a full class.
//!
//! Backends that do not queue ([`Admission::enabled`] false) are simply
//! awaited: their starts never wait for a place.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::broadcast::error::RecvError;

use super::{LearnerId, Provisioner, SandboxError};

/// How long a start may wait in line with nobody there for it.
pub const ABANDONED: Duration = Duration::from_secs(45);

/// How often a detached start looks whether anyone still waits for it.
const LOOK: Duration = Duration::from_secs(5);

/// How a start request ended.
#[derive(Debug)]
pub enum Begun {
    /// The sandbox runs and accepts connections.
    Ready(Box<PgConnectOptions>),
    /// The learner waits at this place in line; their start goes on without
    /// the request.
    InLine(usize),
}

/// A start-like operation: each may need a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Start,
    Restart,
    Reset,
}

impl Op {
    async fn run(
        self,
        sandbox: &dyn Provisioner,
        learner: LearnerId,
    ) -> Result<PgConnectOptions, SandboxError> {
        match self {
            Op::Start => sandbox.start(learner).await,
            Op::Restart => sandbox.restart(learner).await,
            Op::Reset => sandbox.reset(learner).await,
        }
    }
}

/// Starts the learner's sandbox, or puts them in line and answers at once.
pub async fn start(
    sandbox: &Arc<dyn Provisioner>,
    learner: LearnerId,
) -> Result<Begun, SandboxError> {
    run(sandbox, learner, Op::Start).await
}

/// Runs `op` on the learner's sandbox; answers at once, with their place,
/// when it has to wait in line.
pub async fn run(
    sandbox: &Arc<dyn Provisioner>,
    learner: LearnerId,
    op: Op,
) -> Result<Begun, SandboxError> {
    let admission = sandbox.admission();
    if !admission.enabled() {
        return op
            .run(sandbox.as_ref(), learner)
            .await
            .map(|o| Begun::Ready(Box::new(o)));
    }
    if let Some(position) = admission.waiting_position(learner) {
        admission.seen(learner);
        return Ok(Begun::InLine(position));
    }
    // Subscribed before the start begins: its `in line` is not missed.
    let mut events = sandbox.progress().subscribe(learner);
    let mut task = detach(sandbox, learner, op);
    loop {
        tokio::select! {
            joined = &mut task => return finished(joined),
            event = events.recv() => match event {
                Ok(event) if event.step == "in line" => {
                    // The place comes from the line itself: the event may be
                    // a moment old.
                    let position = admission
                        .waiting_position(learner)
                        .or(event.queue_position);
                    if let Some(position) = position {
                        return Ok(Begun::InLine(position));
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                // The hub forgot the channel (nobody listened for a while):
                // the start's own answer is all there is to wait for.
                Err(RecvError::Closed) => return finished(task.await),
            },
        }
    }
}

/// Sends on the start of a learner put back in line after a restart
/// (`line_keep`): detached as [`run`]'s, taking the kept place when it
/// joins. Not through [`run`], which answers such a learner their place
/// without a start (the start is this one).
pub fn go_on(
    sandbox: &Arc<dyn Provisioner>,
    learner: LearnerId,
) -> tokio::task::JoinHandle<Result<PgConnectOptions, SandboxError>> {
    detach(sandbox, learner, Op::Start)
}

/// The operation as a task of its own, let go when nobody waits for it.
fn detach(
    sandbox: &Arc<dyn Provisioner>,
    learner: LearnerId,
    op: Op,
) -> tokio::task::JoinHandle<Result<PgConnectOptions, SandboxError>> {
    let sandbox = Arc::clone(sandbox);
    tokio::spawn(async move {
        tokio::select! {
            done = op.run(sandbox.as_ref(), learner) => done,
            () = abandoned(sandbox.as_ref(), learner) => Err(SandboxError::Failed(
                "nobody waited for this sandbox's start any more: it left the line".into(),
            )),
        }
    })
}

/// Resolves once the learner's start waits in line with nobody there for
/// it for [`ABANDONED`] (see the module's documentation).
async fn abandoned(sandbox: &dyn Provisioner, learner: LearnerId) {
    loop {
        tokio::time::sleep(LOOK).await;
        let unseen = sandbox.admission().unseen_for(learner);
        if let Some(unseen) = unseen
            && let_go(unseen, sandbox.progress().listeners(learner))
        {
            tracing::info!(learner, "a start in line nobody waits for is let go");
            return;
        }
    }
}

/// Whether a start in line, unseen for `unseen`, with `listeners` progress
/// listeners, is let go.
fn let_go(unseen: Duration, listeners: usize) -> bool {
    listeners == 0 && unseen >= ABANDONED
}

fn finished(
    joined: Result<Result<PgConnectOptions, SandboxError>, tokio::task::JoinError>,
) -> Result<Begun, SandboxError> {
    match joined {
        Ok(result) => result.map(|o| Begun::Ready(Box::new(o))),
        Err(e) => Err(SandboxError::Failed(format!(
            "the sandbox start stopped unexpectedly: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_start_nobody_listens_to_nor_asked_about_is_let_go() {
        assert!(let_go(ABANDONED, 0));
        assert!(!let_go(ABANDONED, 1), "an open page listens");
        assert!(!let_go(ABANDONED - Duration::from_secs(1), 0));
    }
}
