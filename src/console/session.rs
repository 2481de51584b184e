//! Learners' named sessions (T1, T2...) and the runs they execute.
//!
//! Each session owns one dedicated connection to the learner's sandbox (from
//! `Provisioner::start`), kept between requests so that a `BEGIN` in T1 stays
//! open while T2 runs, exactly as in two psql terminals. A script runs in a
//! background task that holds the session's connection: the HTTP request only
//! waits a short time for it, so a statement waiting for a lock never blocks
//! the request, the page or the other session. While it waits, [`Consoles::progress`]
//! asks a per-learner side connection what blocks it (`pg_blocking_pids`)
//! and names the learner's own session holding the lock; cancel goes through
//! the same side connection (`pg_cancel_backend`).
//!
//! Everything is keyed by learner id: a learner reaches only their own
//! sessions, and run ids are 128-bit random strings checked against the owner.
//! Sessions idle longer than the configured time are closed (the server rolls
//! back what they left open).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard, watch};

use super::ConsoleConfig;
use super::kept::{Kept, Page};
use super::meta::{self, Settings};
use super::plan_hook;
use super::result::{RunResult, StatementResult, TxState};
use super::run::{Conn, Limits};
use super::split::{Item, ItemKind, Lexer, split_with};
use super::tag::{self, TxEffect};
use crate::sandbox::line::{self, Begun};
use crate::sandbox::{LearnerId, Provisioner, SandboxError};

mod monitor;

pub use monitor::{Blocker, Progress, Waiting, WatchProgress};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    NotFound(String),
}

/// Bytes of values one run keeps for the browser, over all its statements.
const RUN_BYTE_BUDGET: usize = 16 << 20;
/// How long a finished run's result stays available to polls.
const RUN_RETENTION: Duration = Duration::from_secs(120);

/// One named session of a learner.
pub struct Session {
    name: String,
    conn: Arc<AsyncMutex<Option<Conn>>>,
    /// Backend pid of the live connection, 0 when none (read without the lock).
    pid: AtomicI32,
    /// `standard_conforming_strings` after the last run, for a first count.
    std_strings: AtomicBool,
    /// Whether the session has run a LISTEN (its pane then polls for
    /// notifications while idle).
    listening: AtomicBool,
    /// Idle polls holding (or about to take) the connection, waiting for
    /// notifications.
    polling: AtomicUsize,
    /// Tells that idle poll to answer now: a run wants the connection.
    stop_poll: tokio::sync::Notify,
    /// The database of the live connection (`\c` changes it), empty before
    /// the first connection.
    database: Mutex<String>,
    /// The database to connect to next, when `\c` asked for another one.
    target_db: Mutex<Option<String>>,
    state: Mutex<TxState>,
    settings: Mutex<Settings>,
    last_used: Mutex<Instant>,
    /// The run in progress, if any.
    running: Mutex<Option<Arc<Run>>>,
}

impl Session {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            conn: Arc::new(AsyncMutex::new(None)),
            pid: AtomicI32::new(0),
            std_strings: AtomicBool::new(true),
            listening: AtomicBool::new(false),
            polling: AtomicUsize::new(0),
            stop_poll: tokio::sync::Notify::new(),
            database: Mutex::new(String::new()),
            target_db: Mutex::new(None),
            state: Mutex::new(TxState::Idle),
            settings: Mutex::new(Settings::default()),
            last_used: Mutex::new(Instant::now()),
            running: Mutex::new(None),
        }
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }
}

/// What a learner has open.
struct LearnerConsole {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// For `pg_blocking_pids` and `pg_cancel_backend`, never for learners' SQL.
    side: AsyncMutex<Option<PgConnection>>,
}

/// A script submitted to a session.
pub struct Run {
    pub id: String,
    pub learner: LearnerId,
    pub session: String,
    started: Instant,
    /// Index of the statement being run.
    current: AtomicUsize,
    total: usize,
    cancel_requested: AtomicBool,
    done: watch::Sender<Option<Arc<RunResult>>>,
    finished_at: Mutex<Option<Instant>>,
    /// While a `\watch` runs: its latest result and how many runs so far,
    /// shown live by the pane's polls.
    watching: Mutex<Option<(usize, StatementResult)>>,
}

impl Run {
    /// The result, once finished.
    pub fn result(&self) -> Option<Arc<RunResult>> {
        self.done.borrow().clone()
    }

    /// Waits up to `wait` for the result.
    pub async fn wait(&self, wait: Duration) -> Option<Arc<RunResult>> {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        self.result()
    }
}

/// One session as listed for the page.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    pub name: String,
    pub transaction: TxState,
    pub pid: Option<i32>,
    pub running: Option<String>,
    pub expanded: bool,
    /// The database the session is connected to (`\c` changes it).
    pub database: String,
    pub listening: bool,
}

/// All learners' sessions and runs.
pub struct Consoles {
    sandbox: Arc<dyn Provisioner>,
    config: ConsoleConfig,
    learners: Mutex<HashMap<LearnerId, Arc<LearnerConsole>>>,
    runs: Mutex<HashMap<String, Arc<Run>>>,
    /// The course's lab files (path relative to the content dir → text),
    /// the only files `\i` reads.
    lab_files: Mutex<Arc<BTreeMap<String, String>>>,
    /// Cut results kept whole for "show all".
    kept: Kept,
}

/// Most nested `\i`, as a guard against a file that includes itself.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Most statements one `\gexec` runs.
pub const MAX_GEXEC: usize = 10_000;

/// An item still to run that did not come from the script's lexer: a lab
/// file's (`\i`) or a `\gexec` value (`raw`: sent as is, no interpolation).
struct Queued {
    item: Item,
    depth: usize,
    /// The lab file it comes from, for `\ir`.
    file: Option<String>,
    raw: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning means a panic elsewhere; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Session names: a letter then letters, digits or `_`, at most 16.
pub fn valid_session_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 16
}

impl Consoles {
    /// A manager using `sandbox` to reach learners' servers. Call
    /// [`Consoles::spawn_sweeper`] once inside a runtime to expire sessions.
    pub fn new(sandbox: Arc<dyn Provisioner>, config: ConsoleConfig) -> Arc<Self> {
        Arc::new(Self {
            sandbox,
            learners: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            lab_files: Mutex::new(Arc::new(BTreeMap::new())),
            kept: Kept::new(config.keep_bytes, config.keep_total_bytes),
            config,
        })
    }

    /// The lab files `\i FILE` and `\ir FILE` can read (path relative to
    /// the content dir → text); nothing else of the server's is reachable.
    pub fn set_lab_files(&self, files: impl IntoIterator<Item = (String, String)>) {
        *lock(&self.lab_files) = Arc::new(files.into_iter().collect());
    }

    /// The settings in force.
    pub fn config(&self) -> &ConsoleConfig {
        &self.config
    }

    /// Closes idle sessions and forgets old runs, every 15 seconds.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                this.sweep().await;
            }
        });
    }

    /// One sweep: idle sessions closed, finished runs older than
    /// [`RUN_RETENTION`] dropped.
    pub async fn sweep(&self) {
        let idle = Duration::from_secs(self.config.session_idle_s);
        let learners: Vec<(LearnerId, Arc<LearnerConsole>)> = lock(&self.learners)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (learner, lc) in learners {
            let expired: Vec<String> = lock(&lc.sessions)
                .values()
                .filter(|s| lock(&s.running).is_none() && lock(&s.last_used).elapsed() > idle)
                .map(|s| s.name.clone())
                .collect();
            for name in expired {
                tracing::info!(learner, session = %name, "closing idle console session");
                let _ = self.close(learner, &name).await;
            }
        }
        lock(&self.runs)
            .retain(|_, run| lock(&run.finished_at).is_none_or(|t| t.elapsed() < RUN_RETENTION));
        self.kept.sweep();
    }

    /// Moves the whole of each cut result of a finished run into the kept
    /// results, marking those the learner can page through.
    fn keep_whole(&self, run: &Run, result: &mut RunResult) {
        for (i, st) in result.statements.iter_mut().enumerate() {
            if let Some(full) = st.full.take() {
                st.full_kept = self.kept.keep(run.learner, &run.id, i, full);
            }
        }
    }

    /// Rows `offset..` (at most `limit`, about `max_bytes`) of statement
    /// `index` of the learner's run `run`, whole: `None` when that result
    /// was not cut, not kept, expired or is not the learner's.
    pub fn whole_rows(
        &self,
        learner: LearnerId,
        run: &str,
        index: usize,
        offset: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Option<Page> {
        self.kept
            .page(learner, run, index, offset, limit, max_bytes)
    }

    fn learner(&self, learner: LearnerId) -> Arc<LearnerConsole> {
        lock(&self.learners)
            .entry(learner)
            .or_insert_with(|| {
                Arc::new(LearnerConsole {
                    sessions: Mutex::new(HashMap::new()),
                    side: AsyncMutex::new(None),
                })
            })
            .clone()
    }

    fn session(&self, learner: LearnerId, name: &str) -> Result<Arc<Session>, ConsoleError> {
        if !valid_session_name(name) {
            return Err(ConsoleError::BadRequest(format!(
                "invalid session name {name:?}: use a letter then letters, digits or _ (at most 16), like T1"
            )));
        }
        let lc = self.learner(learner);
        let mut sessions = lock(&lc.sessions);
        if !sessions.contains_key(name) && sessions.len() >= self.config.max_sessions {
            return Err(ConsoleError::BadRequest(format!(
                "at most {} sessions at once: close one first",
                self.config.max_sessions
            )));
        }
        Ok(sessions
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Session::new(name)))
            .clone())
    }

    fn existing_session(&self, learner: LearnerId, name: &str) -> Option<Arc<Session>> {
        let lc = lock(&self.learners).get(&learner).cloned()?;
        lock(&lc.sessions).get(name).cloned()
    }

    /// Starts running `script` in session `name`; the run goes on in the
    /// background. `timeout_s` raises or lowers the statement timeout for
    /// this run, within the configured cap.
    pub fn submit(
        self: &Arc<Self>,
        learner: LearnerId,
        name: &str,
        script: &str,
        timeout_s: Option<u64>,
    ) -> Result<Arc<Run>, ConsoleError> {
        self.submit_with(learner, name, script, timeout_s, |_| {})
    }

    /// [`Consoles::submit`], calling `before_start` with the run before its
    /// task is spawned (the console's recorder starts there, so that the
    /// run's own task is the last one spawned: the worker that submitted it
    /// runs it next, rather than another worker woken to take it).
    pub fn submit_with(
        self: &Arc<Self>,
        learner: LearnerId,
        name: &str,
        script: &str,
        timeout_s: Option<u64>,
        before_start: impl FnOnce(&Arc<Run>),
    ) -> Result<Arc<Run>, ConsoleError> {
        if script.len() > self.config.max_script_bytes {
            return Err(ConsoleError::TooLarge(format!(
                "the script is too large ({} bytes): the console runs scripts up to {} bytes",
                script.len(),
                self.config.max_script_bytes
            )));
        }
        let timeout_s = timeout_s.unwrap_or(self.config.statement_timeout_s);
        if timeout_s == 0 || timeout_s > self.config.max_timeout_s {
            return Err(ConsoleError::BadRequest(format!(
                "timeout_s must be between 1 and {} seconds",
                self.config.max_timeout_s
            )));
        }
        let session = self.session(learner, name)?;
        let busy = || {
            ConsoleError::Busy(format!(
                "{name} is still running a statement: wait for it or cancel it"
            ))
        };
        // The `running` slot is taken under its lock, so that of two runs
        // submitted while an idle poll holds the connection only one waits
        // for it.
        let mut running = lock(&session.running);
        if running.is_some() {
            return Err(busy());
        }
        let guard = match session.conn.clone().try_lock_owned() {
            Ok(guard) => Some(guard),
            // An idle poll for notifications: it answers at once with what
            // it has and the run takes the connection right after.
            Err(_) if session.polling.load(Ordering::SeqCst) > 0 => {
                session.stop_poll.notify_one();
                None
            }
            Err(_) => return Err(busy()),
        };
        // A first count with the setting the session had after its last
        // run; the run itself lexes statement by statement (see `execute`).
        let std_strings = session.std_strings.load(Ordering::Relaxed);
        let items = split_with(script, std_strings);
        let script = script.to_string();
        let (done, _) = watch::channel(None);
        let run = Arc::new(Run {
            id: format!("{:032x}", rand::random::<u128>()),
            learner,
            session: name.to_string(),
            started: Instant::now(),
            current: AtomicUsize::new(0),
            total: items.len(),
            cancel_requested: AtomicBool::new(false),
            done,
            finished_at: Mutex::new(None),
            watching: Mutex::new(None),
        });
        lock(&self.runs).insert(run.id.clone(), run.clone());
        *running = Some(run.clone());
        drop(running);
        session.touch();
        before_start(&run);
        let this = self.clone();
        let task_run = run.clone();
        tokio::spawn(async move {
            let guard = match guard {
                Some(guard) => guard,
                None => session.conn.clone().lock_owned().await,
            };
            let mut result = this
                .execute(&session, guard, &task_run, &script, items, timeout_s)
                .await;
            this.keep_whole(&task_run, &mut result);
            *lock(&session.running) = None;
            *lock(&task_run.finished_at) = Some(Instant::now());
            session.touch();
            task_run.done.send_replace(Some(Arc::new(result)));
        });
        Ok(run)
    }

    /// Forgets a finished run once its result has been delivered, so that
    /// results do not pile up in memory under load.
    pub fn forget(&self, id: &str) {
        lock(&self.runs).remove(id);
    }

    /// The run `id` if it belongs to `learner`.
    pub fn run(&self, learner: LearnerId, id: &str) -> Option<Arc<Run>> {
        lock(&self.runs)
            .get(id)
            .filter(|r| r.learner == learner)
            .cloned()
    }

    async fn execute(
        &self,
        session: &Session,
        mut guard: OwnedMutexGuard<Option<Conn>>,
        run: &Run,
        script: &str,
        items: Vec<super::split::Item>,
        timeout_s: u64,
    ) -> RunResult {
        let mut limits = Limits {
            row_cap: self.config.row_cap,
            value_cap: self.config.value_cap,
            byte_budget: RUN_BYTE_BUDGET,
            keep_bytes: self.kept.run_budget(),
        };
        let mut out = RunResult::default();
        let mut settings = lock(&session.settings).clone();
        if items.is_empty() {
            out.database = lock(&session.database).clone();
            out.listening = session.listening.load(Ordering::Relaxed);
            out.transaction = *lock(&session.state);
            out.expanded = settings.expanded;
            out.timing = settings.timing;
            return out;
        }
        if guard.is_none() {
            let target = lock(&session.target_db).clone();
            match self.connect(run.learner, target.as_deref()).await {
                Ok(conn) => {
                    session.pid.store(conn.pid, Ordering::Relaxed);
                    *lock(&session.state) = TxState::Idle;
                    *guard = Some(conn);
                }
                Err((mut message, unavailable)) => {
                    if lock(&session.target_db).take().is_some() {
                        message.push_str(
                            " (the next run connects to your sandbox's default database again)",
                        );
                    }
                    if unavailable {
                        out.sandbox_unavailable = Some(message.clone());
                    }
                    let mut r = StatementResult::client_error(&items[0].text, message);
                    r.offset = items[0].char_offset;
                    r.line = items[0].line;
                    out.statements.push(r);
                    out.failed_statement = Some(0);
                    out.skipped = items.len() - 1;
                    out.connection_lost = true;
                    return out;
                }
            }
        }
        let Some(conn) = guard.as_mut() else {
            return out;
        };
        let mut lost = false;
        let state_before = *lock(&session.state);
        if let Err(err) = apply_timeout(conn, timeout_s * 1000, state_before).await {
            let (error, is_lost) = super::run::map_error(err);
            lost = is_lost;
            let mut r = StatementResult {
                sql: items[0].text.clone(),
                kind: "statement",
                offset: items[0].char_offset,
                line: items[0].line,
                error: Some(error),
                ..StatementResult::default()
            };
            if let Some(e) = r.error.as_mut() {
                e.message = format!(
                    "{} (the session's connection was lost; it reconnects on the next run)",
                    e.message
                );
            }
            out.statements.push(r);
            out.failed_statement = Some(0);
            out.skipped = items.len() - 1;
        } else {
            // psql lexes each statement with standard_conforming_strings as
            // the statements before it left it.
            let mut lexer = Lexer::new(script);
            let mut i = 0usize;
            let mut queue: VecDeque<Queued> = VecDeque::new();
            // psql's previous query buffer, which a lone `\gset` re-sends.
            let mut last_sql: Option<String> = None;
            let lab_files = lock(&self.lab_files).clone();
            // psql's `\if` blocks; whether the script ran to its end.
            let mut branches = super::branch::Branches::default();
            let mut at_end = false;
            loop {
                if *lock(&session.state) != TxState::Failed {
                    conn.refresh_std_strings().await;
                }
                let (item, depth, file, raw) = match queue.pop_front() {
                    Some(q) => (q.item, q.depth, q.file, q.raw),
                    None => match lexer.next_item(conn.std_strings) {
                        Some(item) => (item, 0, None, false),
                        None => {
                            at_end = true;
                            break;
                        }
                    },
                };
                run.current.store(i, Ordering::Relaxed);
                if run.cancel_requested.load(Ordering::Relaxed) {
                    out.skipped = 1 + queue.len() + lexer.count_rest(conn.std_strings);
                    break;
                }
                let state = *lock(&session.state);
                // Inside a branch of `\if` that does not run, only the
                // conditional commands are read.
                let conditional = item.kind == ItemKind::Meta
                    && super::branch::is_conditional(&meta::parse(item.text.trim()).name);
                if !conditional && !branches.active() {
                    continue;
                }
                // `\q`: the script ends here.
                if item.kind == ItemKind::Meta
                    && matches!(meta::parse(item.text.trim()).name.as_str(), "q" | "quit")
                {
                    out.skipped = queue.len() + lexer.count_rest(conn.std_strings);
                    out.quit = true;
                    break;
                }
                // A query ended by `\gset` or `\gexec` runs with it.
                if item.kind == ItemKind::Statement && !raw && !item.text.ends_with(';') {
                    let next = match queue.front() {
                        Some(q) => Some(q.item.clone()),
                        None => lexer.clone().next_item(conn.std_strings),
                    };
                    if next.is_some_and(|n| n.kind == ItemKind::Meta && meta::ends_query(&n.text)) {
                        last_sql = Some(super::vars::interpolate(
                            &item.text,
                            &settings.vars,
                            conn.std_strings,
                        ));
                        continue;
                    }
                }
                // `\gx`: this result expanded whatever `\x` says.
                let mut expanded_once = false;
                let mut result = match item.kind {
                    ItemKind::Meta if conditional => {
                        let cmd = meta::parse_with(item.text.trim(), &settings.vars);
                        match branches.apply(&cmd.name, cmd.arg_text(0)) {
                            super::branch::Outcome::Quiet => continue,
                            super::branch::Outcome::Note(note) => {
                                let mut r = meta_result(&item.text, None);
                                r.stderr = Some(note);
                                r
                            }
                            super::branch::Outcome::Error(message) => {
                                meta_result(&item.text, Some(message))
                            }
                        }
                    }
                    ItemKind::Meta if meta::is_include(&item.text) => {
                        match include(
                            &lab_files,
                            &item.text,
                            &settings.vars,
                            depth,
                            file.as_deref(),
                        ) {
                            Ok((path, text)) => {
                                let items = split_with(&text, conn.std_strings);
                                for (n, mut inc) in items.into_iter().enumerate() {
                                    inc.offset = item.offset;
                                    inc.char_offset = item.char_offset;
                                    inc.line = item.line;
                                    queue.insert(
                                        n,
                                        Queued {
                                            item: inc,
                                            depth: depth + 1,
                                            file: Some(path.clone()),
                                            raw: false,
                                        },
                                    );
                                }
                                meta_result(&item.text, None)
                            }
                            Err(message) => meta_result(&item.text, Some(message)),
                        }
                    }
                    ItemKind::Meta if meta::is_gset_or_gexec(&item.text) => {
                        let cmd = meta::parse_with(item.text.trim(), &settings.vars);
                        match last_sql.clone() {
                            None => meta_result(
                                &item.text,
                                Some(format!("\\{}: there is no query to run", cmd.name)),
                            ),
                            Some(sql) => {
                                conn.notices.clear();
                                let fetched = meta::fetch_named(conn, &sql).await;
                                let notices = conn.notices.take();
                                let failed = fetched.is_err();
                                *lock(&session.state) = next_state(state, &sql, failed);
                                let mut r = match fetched {
                                    Err((mut r, is_lost)) => {
                                        lost = is_lost;
                                        r.sql.clone_from(&sql);
                                        r
                                    }
                                    Ok((names, rows)) if cmd.name == "gset" => meta_result(
                                        &item.text,
                                        gset(&mut settings.vars, cmd.arg_text(0), &names, rows)
                                            .err(),
                                    ),
                                    Ok((_, rows)) => {
                                        let values: Vec<String> =
                                            rows.into_iter().flatten().flatten().collect();
                                        if values.len() > MAX_GEXEC {
                                            meta_result(
                                                &item.text,
                                                Some(format!(
                                                    "\\gexec: the query returned {} statements to run; the console runs at most {MAX_GEXEC} per \\gexec (none was run)",
                                                    values.len()
                                                )),
                                            )
                                        } else {
                                            for (n, v) in values.into_iter().enumerate() {
                                                queue.insert(
                                                    n,
                                                    Queued {
                                                        item: Item {
                                                            kind: ItemKind::Statement,
                                                            text: v,
                                                            empty: false,
                                                            ..item.clone()
                                                        },
                                                        depth,
                                                        file: file.clone(),
                                                        raw: true,
                                                    },
                                                );
                                            }
                                            meta_result(&item.text, None)
                                        }
                                    }
                                };
                                // psql prints the query's notices before
                                // what `\gset`/`\gexec` make of its rows;
                                // the item stands for the query it sent.
                                r.notices = notices;
                                if r.kind == "meta" {
                                    r.sql.clone_from(&sql);
                                }
                                r
                            }
                        }
                    }
                    ItemKind::Meta if meta::parse(item.text.trim()).name == "gdesc" => {
                        // With no query, psql describes an empty one.
                        let sql = last_sql.clone().unwrap_or_default();
                        meta::gdesc(conn, &sql).await
                    }
                    ItemKind::Meta if meta::is_g(&item.text) => {
                        // `\g` / `\gx`: the query before it, or psql's
                        // previous query (an empty query when there is none).
                        let cmd = meta::parse_with(item.text.trim(), &settings.vars);
                        match cmd.args.first() {
                            Some(arg) => meta_result(
                                &item.text,
                                Some(format!(
                                    "\\{}: the console shows results on the page only: \\{} {arg} (a file, a pipe or print options) is not supported; use \\{} alone",
                                    cmd.name, cmd.name, cmd.name
                                )),
                            ),
                            None => {
                                let sql = last_sql.clone().unwrap_or_default();
                                let (r, is_lost) =
                                    run_sql(session, conn, &sql, &settings, &limits, state).await;
                                lost = is_lost;
                                expanded_once = cmd.name == "gx";
                                r
                            }
                        }
                    }
                    ItemKind::Meta if meta::is_watch(&item.text) => {
                        let cmd = meta::parse_with(item.text.trim(), &settings.vars);
                        match last_sql.clone() {
                            None => meta_result(
                                &item.text,
                                Some("\\watch cannot be used with an empty query".into()),
                            ),
                            Some(sql) => {
                                let secs = super::watch::interval(cmd.arg_text(0));
                                let mut kept: VecDeque<StatementResult> = VecDeque::new();
                                let mut runs = 0usize;
                                loop {
                                    let stamp =
                                        meta::fetch_named(conn, super::watch::TIMESTAMP_SQL)
                                            .await
                                            .ok()
                                            .and_then(|(_, rows)| rows.into_iter().next())
                                            .and_then(|r| r.into_iter().next().flatten())
                                            .unwrap_or_default();
                                    let st = *lock(&session.state);
                                    let ran = super::run::run_statement(
                                        conn,
                                        &sql,
                                        &limits,
                                        st == TxState::Failed,
                                    )
                                    .await;
                                    lost = ran.lost;
                                    let mut r = ran.result;
                                    *lock(&session.state) = next_state(st, &sql, r.error.is_some());
                                    r.offset = item.char_offset;
                                    r.line = item.line;
                                    if r.error.is_none() {
                                        r.title = Some(super::watch::title(&stamp, secs));
                                    }
                                    settings.note(&mut r);
                                    // A watch's results are not kept whole:
                                    // each run would hold its own keep
                                    // budget (KEEP of them at once).
                                    r.full = None;
                                    *lock(&run.watching) = Some((runs + 1, r.clone()));
                                    let failed = r.error.is_some();
                                    if kept.len() == super::watch::KEEP {
                                        kept.pop_front();
                                    }
                                    kept.push_back(r);
                                    runs += 1;
                                    if failed || lost || runs >= super::watch::MAX_RUNS {
                                        break;
                                    }
                                    // The pause, cut short by a cancel.
                                    let until =
                                        tokio::time::Instant::now() + super::watch::pause(secs);
                                    while tokio::time::Instant::now() < until
                                        && !run.cancel_requested.load(Ordering::Relaxed)
                                    {
                                        let left = until - tokio::time::Instant::now();
                                        tokio::time::sleep(left.min(Duration::from_millis(50)))
                                            .await;
                                    }
                                    if run.cancel_requested.load(Ordering::Relaxed) {
                                        break;
                                    }
                                }
                                *lock(&run.watching) = None;
                                let mut last = kept.pop_back().unwrap_or_default();
                                if runs >= super::watch::MAX_RUNS {
                                    last.notices.push(super::notices::Notice::note(
                                        "NOTICE",
                                        format!(
                                            "pglab: \\watch stopped after {runs} runs (the console's limit); the last {} are shown",
                                            kept.len() + 1
                                        ),
                                    ));
                                }
                                out.statements.extend(kept);
                                last
                            }
                        }
                    }
                    ItemKind::Meta if meta::is_copy(&item.text) => {
                        let (result, failed, is_lost) =
                            slash_copy(conn, &lab_files, &item.text, &limits, state).await;
                        lost = is_lost;
                        if let Some(sql) = failed {
                            *lock(&session.state) = next_state(state, &sql, true);
                        } else if let Ok(c) = super::copy::parse_slash_copy(&item.text) {
                            *lock(&session.state) = next_state(state, &c.query, false);
                        }
                        result
                    }
                    ItemKind::Meta if meta::is_connect(&item.text) => {
                        match self.reconnect(run.learner, session, conn, &item.text).await {
                            Ok((result, Some(new_conn))) => {
                                let old = std::mem::replace(conn, new_conn);
                                tokio::spawn(old.close());
                                result
                            }
                            Ok((result, None)) => result,
                            Err(result) => result,
                        }
                    }
                    ItemKind::Meta => {
                        meta::run_meta(conn, &item.text, &mut settings, &limits).await
                    }
                    ItemKind::Statement => {
                        let sql = if raw {
                            item.text.clone()
                        } else {
                            super::vars::interpolate(&item.text, &settings.vars, conn.std_strings)
                        };
                        if !raw && !item.empty {
                            last_sql = Some(sql.clone());
                        }
                        let (result, is_lost) =
                            run_sql(session, conn, &sql, &settings, &limits, state).await;
                        lost = is_lost;
                        result
                    }
                };
                result.offset = item.char_offset;
                result.line = item.line;
                // One budget for the whole run, so that a script of many big
                // SELECTs cannot hold more than RUN_BYTE_BUDGET in memory.
                let kept: usize = result
                    .rows
                    .iter()
                    .flatten()
                    .flatten()
                    .map(String::len)
                    .sum();
                limits.byte_budget = limits.byte_budget.saturating_sub(kept);
                // And one for what the run keeps whole.
                let whole = result.full.as_ref().map_or(0, |f| f.bytes());
                limits.keep_bytes = limits.keep_bytes.saturating_sub(whole);
                settings.note(&mut result);
                if expanded_once {
                    result.expanded = Some(true);
                }
                let how = meta::text::Messages::from_vars(&settings.vars);
                if !how.is_default() && (result.error.is_some() || !result.notices.is_empty()) {
                    let mut text: String = result
                        .notices
                        .iter()
                        .map(|n| meta::text::psql_notice_text_with(n, &result.sql, how))
                        .collect();
                    text.push_str(&meta::text::psql_error_text_with(&result, how));
                    result.messages = Some(text);
                }
                if result.print.is_some() {
                    // psql's text under the session's print options, which
                    // the pane shows as it is.
                    result.printed = Some(meta::text::psql_text(&result, false));
                }
                let failed = result.error.is_some();
                if let Some(e) = result.error.as_mut() {
                    e.script_position = e.position.map(|p| p + item.char_offset);
                    if lost {
                        e.message.push_str(
                            " (the session's connection was lost; it reconnects on the next run)",
                        );
                    }
                }
                out.statements.push(result);
                // psql goes on after an error unless ON_ERROR_STOP is on (it
                // is, unless the script unset it); a lost connection stops.
                if failed && (lost || super::vars::flag(&settings.vars, "ON_ERROR_STOP", true)) {
                    out.failed_statement = Some(i);
                    out.skipped = queue.len() + lexer.count_rest(conn.std_strings);
                    break;
                }
                i += 1;
            }
            if at_end && branches.open() {
                let mut r = meta_result(
                    "\\endif",
                    Some("reached EOF without finding closing \\endif(s)".into()),
                );
                r.line = script.lines().count().max(1);
                out.statements.push(r);
                out.failed_statement = Some(out.statements.len() - 1);
            }
            if *lock(&session.state) != TxState::Failed {
                conn.refresh_std_strings().await;
            }
            session
                .std_strings
                .store(conn.std_strings, Ordering::Relaxed);
        }
        if state_before != TxState::Idle || *lock(&session.state) != TxState::Idle {
            // A SET inside a transaction is undone by its rollback: set it again next time.
            conn.applied_timeout_ms = None;
        }
        if lost {
            session.listening.store(false, Ordering::Relaxed);
            *guard = None;
            session.pid.store(0, Ordering::Relaxed);
            *lock(&session.state) = TxState::Idle;
            out.connection_lost = true;
        }
        if let Some(c) = guard.as_ref() {
            lock(&session.database).clone_from(&c.database);
        }
        out.database = lock(&session.database).clone();
        out.listening = session.listening.load(Ordering::Relaxed);
        out.transaction = *lock(&session.state);
        out.expanded = settings.expanded;
        out.timing = settings.timing;
        *lock(&session.settings) = settings;
        out
    }

    /// Starts the learner's sandbox and connects; the error says whether
    /// the backend itself is unavailable (true) or only this sandbox failed.
    ///
    /// Nothing of the learner's has run yet, so a connection that fails
    /// right after the start (the sandbox was stopped in between, e.g. by
    /// the running cap or a fault) is tried once more: start again, connect
    /// again.
    async fn connect(
        &self,
        learner: LearnerId,
        database: Option<&str>,
    ) -> Result<Conn, (String, bool)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.connect_once(learner, database).await {
                // A timeout already took 20 s: no second one.
                Err((message, false))
                    if attempt < 2
                        && !message.contains("timed out")
                        && !message.starts_with(IN_LINE) =>
                {
                    tracing::debug!(learner, %message, "console connect failed; starting again");
                }
                other => return other,
            }
        }
    }

    async fn connect_once(
        &self,
        learner: LearnerId,
        database: Option<&str>,
    ) -> Result<Conn, (String, bool)> {
        let begun = line::start(&self.sandbox, learner).await.map_err(|e| {
            let unavailable = matches!(e, SandboxError::Unavailable(_));
            (format!("your sandbox is not available: {e}"), unavailable)
        })?;
        let options = match begun {
            Begun::Ready(options) => *options,
            // A full classroom: the run answers at once, the start goes on.
            Begun::InLine(position) => return Err((in_line_message(position), false)),
        };
        // Learners' slow statements are their lesson, not our log's business.
        let mut options = options
            .application_name("pglab console")
            .disable_statement_logging();
        if let Some(db) = database {
            // `\c DBNAME`: the same server and credentials, another database.
            options = options.database(db);
        }
        tokio::time::timeout(Duration::from_secs(20), Conn::connect(&options))
            .await
            .map_err(|_| ("connecting to your sandbox timed out".to_string(), false))?
            .map_err(|e| (format!("cannot connect to your sandbox: {e}"), false))
    }

    /// `\c [DBNAME]`: a new connection to another database of the same
    /// sandbox, as the same user. On success the caller swaps it in (the old
    /// one is closed, as psql closes it); on failure the old one is kept and
    /// the script stops.
    async fn reconnect(
        &self,
        learner: LearnerId,
        session: &Session,
        conn: &Conn,
        line: &str,
    ) -> Result<(StatementResult, Option<Conn>), StatementResult> {
        let meta_error = |message: String| {
            let mut r = StatementResult::client_error(line, message);
            r.kind = "meta";
            r
        };
        let target = meta::connect_target(line, &conn.user).map_err(meta_error)?;
        let db = target.unwrap_or_else(|| conn.database.clone());
        let new_conn = self
            .connect_once(learner, Some(&db))
            .await
            .map_err(|(message, _)| {
                meta_error(format!("\\connect: {message}\nPrevious connection kept"))
            })?;
        let text = format!(
            "You are now connected to database \"{}\" as user \"{}\".",
            new_conn.database, new_conn.user
        );
        session.pid.store(new_conn.pid, Ordering::Relaxed);
        session.listening.store(false, Ordering::Relaxed);
        *lock(&session.state) = TxState::Idle;
        *lock(&session.target_db) = Some(new_conn.database.clone());
        lock(&session.database).clone_from(&new_conn.database);
        let result = StatementResult {
            sql: line.to_string(),
            kind: "meta",
            text: Some(text),
            ..StatementResult::default()
        };
        Ok((result, Some(new_conn)))
    }

    /// Notifications that reached an idle session (`LISTEN` in it, `NOTIFY`
    /// from elsewhere), waiting up to `wait` for the first. Empty while the
    /// session runs something (they come with that run's statements then).
    pub async fn notifications(
        &self,
        learner: LearnerId,
        name: &str,
        wait: Duration,
    ) -> Result<IdleNotifications, ConsoleError> {
        let Some(session) = self.existing_session(learner, name) else {
            return Err(ConsoleError::NotFound(format!("no session {name}")));
        };
        let listening = session.listening.load(Ordering::Relaxed);
        let mut answer = IdleNotifications {
            session: name.to_string(),
            listening,
            running: false,
            notifications: Vec::new(),
            dropped: 0,
        };
        if lock(&session.running).is_some() {
            answer.running = true;
            return Ok(answer);
        }
        // Counted before taking the connection, so that a run submitted
        // from now on stops this poll rather than being refused as busy.
        let _polling = PollCount::new(&session.polling);
        let Ok(mut guard) = session.conn.clone().try_lock_owned() else {
            // A run or another poll has it.
            answer.running = lock(&session.running).is_some();
            return Ok(answer);
        };
        let Some(conn) = guard.as_mut() else {
            return Ok(answer);
        };
        let wait = if listening { wait } else { Duration::ZERO };
        match conn.poll_notifications(wait, &session.stop_poll).await {
            Ok((kept, dropped)) => {
                answer.notifications = kept;
                answer.dropped = dropped;
            }
            Err(()) => {
                // The socket died while idle: reconnect on the next run,
                // never silently (a transaction would be lost unseen).
                *guard = None;
                session.pid.store(0, Ordering::Relaxed);
                session.listening.store(false, Ordering::Relaxed);
                *lock(&session.state) = TxState::Idle;
                answer.listening = false;
            }
        }
        session.touch();
        Ok(answer)
    }

    /// Runs pglab's own read-only `sql` (the simple query protocol: nothing
    /// prepared, nothing left behind on the connection) on session `name`'s
    /// connection while the session is idle: connected, no run, no open
    /// transaction, no idle poll holding it. `None` when it cannot lend it:
    /// the caller opens a connection of its own then. The editor's completion
    /// reads the schema this way, so it follows `\c` and costs no new
    /// connection (none that `pg_stat_activity` would count against the
    /// learner). A run submitted meanwhile waits for the read, as it does for
    /// an idle poll; a read over `deadline` is cancelled on the server.
    pub async fn read_on_idle(
        &self,
        learner: LearnerId,
        name: &str,
        sql: &'static str,
        deadline: Duration,
    ) -> Option<Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>> {
        let session = self.existing_session(learner, name)?;
        fn idle(s: &Session) -> bool {
            lock(&s.running).is_none() && *lock(&s.state) == TxState::Idle
        }
        if !idle(&session) {
            return None;
        }
        // Counted before taking the connection, so that a run submitted from
        // now on waits for this read rather than being refused as busy.
        let _polling = LentCount::new(session.clone());
        let mut guard = session.conn.clone().try_lock_owned().ok()?;
        if !idle(&session) {
            return None;
        }
        let conn = guard.as_mut()?;
        let pid = conn.pid;
        let read = tokio::time::timeout(deadline, async {
            use futures::TryStreamExt;
            let mut rows = Vec::new();
            let mut stream = sqlx::raw_sql(sql).fetch(&mut conn.conn);
            while let Some(row) = stream.try_next().await? {
                rows.push(row);
            }
            Ok::<_, sqlx::Error>(rows)
        })
        .await;
        Some(match read {
            Ok(rows) => rows,
            Err(_) => {
                // Blocked (a catalog lock another session holds): end the
                // read so the session's next run does not wait behind it.
                let _ = self
                    .side(
                        learner,
                        "select pg_catalog.pg_cancel_backend($1)",
                        pid,
                        |_| (),
                    )
                    .await;
                Err(sqlx::Error::PoolTimedOut)
            }
        })
    }

    /// The database session `name` is connected to, or connects to next
    /// after a `\c`; `None` for a session not opened yet.
    pub fn session_database(&self, learner: LearnerId, name: &str) -> Option<String> {
        let session = self.existing_session(learner, name)?;
        let target = lock(&session.target_db).clone();
        target
            .or_else(|| Some(lock(&session.database).clone()))
            .filter(|db| !db.is_empty())
    }

    /// Closes session `name`: cancels what runs, closes the connection (the
    /// server rolls back an open transaction) and forgets the session.
    pub async fn close(&self, learner: LearnerId, name: &str) -> Result<(), ConsoleError> {
        let Some(session) = self.existing_session(learner, name) else {
            return Err(ConsoleError::NotFound(format!("no session {name}")));
        };
        if let Some(lc) = lock(&self.learners).get(&learner).cloned() {
            lock(&lc.sessions).remove(name);
        }
        let _ = self.cancel_pid(learner, &session).await;
        let conn = session.conn.clone();
        tokio::spawn(async move {
            if let Ok(mut guard) =
                tokio::time::timeout(Duration::from_secs(60), conn.lock_owned()).await
                && let Some(c) = guard.take()
            {
                c.close().await;
            }
        });
        Ok(())
    }

    /// Closes every session of the learner (sign-out, page closed).
    pub async fn close_all(&self, learner: LearnerId) {
        let names: Vec<String> = match lock(&self.learners).get(&learner) {
            Some(lc) => lock(&lc.sessions).keys().cloned().collect(),
            None => return,
        };
        for name in names {
            let _ = self.close(learner, &name).await;
        }
        if let Some(lc) = lock(&self.learners).remove(&learner) {
            tokio::spawn(async move {
                if let Some(c) = lc.side.lock().await.take() {
                    let _ = c.close().await;
                }
            });
        }
    }

    /// The learner's sessions; listing them also keeps them alive (the
    /// page calls it periodically while open).
    pub fn sessions(&self, learner: LearnerId) -> Vec<SessionInfo> {
        let Some(lc) = lock(&self.learners).get(&learner).cloned() else {
            return Vec::new();
        };
        let mut list: Vec<SessionInfo> = lock(&lc.sessions)
            .values()
            .map(|s| {
                s.touch();
                let pid = s.pid.load(Ordering::Relaxed);
                SessionInfo {
                    name: s.name.clone(),
                    transaction: *lock(&s.state),
                    pid: (pid != 0).then_some(pid),
                    running: lock(&s.running).as_ref().map(|r| r.id.clone()),
                    expanded: lock(&s.settings).expanded,
                    database: lock(&s.database).clone(),
                    listening: s.listening.load(Ordering::Relaxed),
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

/// A lent connection counted in `Session::polling` while it lives (owns its
/// session, so the future holding it stays `Send` for any lifetime).
struct LentCount(Arc<Session>);

impl LentCount {
    fn new(session: Arc<Session>) -> Self {
        session.polling.fetch_add(1, Ordering::SeqCst);
        Self(session)
    }
}

impl Drop for LentCount {
    fn drop(&mut self) {
        self.0.polling.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One idle poll counted in `Session::polling` while it lives.
struct PollCount<'a>(&'a AtomicUsize);

impl<'a> PollCount<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for PollCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Notifications of an idle session, for `GET /api/sessions/{name}/notifications`.
#[derive(Clone, Debug, Serialize)]
pub struct IdleNotifications {
    pub session: String,
    /// Whether the session has LISTENed (the pane keeps polling then).
    pub listening: bool,
    /// The session is running a statement: nothing is polled then (its
    /// notifications come with the run's statements); poll again after it.
    pub running: bool,
    /// psql's wording, oldest first.
    pub notifications: Vec<String>,
    /// Received but not kept (past the cap).
    pub dropped: u64,
}

/// Tracks whether a session listens: `LISTEN` starts, `UNLISTEN *` and
/// `DISCARD ALL` end it.
/// Runs one SQL statement as psql sends it: psql's unseen `BEGIN` first
/// when AUTOCOMMIT is off (unless the statement cannot run in a
/// transaction), EXPLAIN through the plan hook; the session's transaction
/// state and LISTEN flag follow. The result, and whether the connection
/// was lost.
async fn run_sql(
    session: &Session,
    conn: &mut Conn,
    sql: &str,
    settings: &Settings,
    limits: &Limits,
    mut state: TxState,
) -> (StatementResult, bool) {
    let begun = if state == TxState::Idle
        && !super::vars::flag(&settings.vars, "AUTOCOMMIT", true)
        && !command_no_begin(sql)
    {
        super::run::implicit_begin(conn).await
    } else {
        Ok(false)
    };
    let ran = match begun {
        Ok(begun) => {
            if begun {
                state = TxState::InTransaction;
                *lock(&session.state) = state;
            }
            plan_hook::run_with_plan(conn, sql, limits, state == TxState::Failed).await
        }
        Err(err) => {
            let (error, lost) = super::run::map_error(err);
            super::run::Ran {
                result: StatementResult {
                    sql: sql.to_string(),
                    kind: "statement",
                    error: Some(error),
                    ..StatementResult::default()
                },
                lost,
            }
        }
    };
    let result = ran.result;
    if !result.empty_query {
        *lock(&session.state) = next_state(state, sql, result.error.is_some());
    }
    if result.error.is_none() {
        note_listening(session, sql);
    }
    (result, ran.lost)
}

fn note_listening(session: &Session, sql: &str) {
    let w = tag::words(sql);
    match w.first().map(String::as_str) {
        Some("LISTEN") => session.listening.store(true, Ordering::Relaxed),
        Some("UNLISTEN") if sql.contains('*') => session.listening.store(false, Ordering::Relaxed),
        Some("DISCARD") if w.get(1).is_some_and(|x| x == "ALL") => {
            session.listening.store(false, Ordering::Relaxed)
        }
        _ => {}
    }
}

/// Sets `statement_timeout` when the session does not have it already. Not
/// in a failed transaction: it would fail, and statements fail anyway.
fn apply_timeout(
    conn: &mut Conn,
    ms: u64,
    state: TxState,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(apply_timeout_inner(conn, ms, state))
}

async fn apply_timeout_inner(conn: &mut Conn, ms: u64, state: TxState) -> Result<(), sqlx::Error> {
    if state == TxState::Failed || conn.applied_timeout_ms == Some(ms) {
        return Ok(());
    }
    let sql = format!("set statement_timeout = {ms}");
    let c: &mut sqlx::postgres::PgListener = &mut conn.conn;
    // `Executor::execute` returns a boxed (Send) future, unlike `RawSql::execute`.
    sqlx::Executor::execute(c, sqlx::raw_sql(&sql)).await?;
    conn.applied_timeout_ms = Some(ms);
    Ok(())
}

/// A meta-command's answer: nothing, or its complaint (printed bare).
fn meta_result(line: &str, error: Option<String>) -> StatementResult {
    let mut r = match error {
        Some(message) => StatementResult::client_error(line, message),
        None => StatementResult {
            sql: line.to_string(),
            ..StatementResult::default()
        },
    };
    r.kind = "meta";
    r
}

/// The lab file `\i FILE` (or `\ir FILE`) names, as (path, text). A path
/// is relative to the course's content dir (`\ir` first to the including
/// file's folder), or the end of exactly one lab file's path
/// (`scripts/schema.sql`); `..`, absolute paths and anything that is not a
/// lab file are refused.
fn include(
    files: &BTreeMap<String, String>,
    line: &str,
    vars: &super::vars::Vars,
    depth: usize,
    from: Option<&str>,
) -> Result<(String, String), String> {
    let cmd = meta::parse_with(line.trim(), vars);
    let Some(arg) = cmd.arg_text(0) else {
        return Err(format!("\\{}: missing required argument", cmd.name));
    };
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(format!(
            "{arg}: \\i is nested more than {MAX_INCLUDE_DEPTH} files deep (does a file include itself?)"
        ));
    }
    let relative = from.filter(|_| cmd.name == "ir" || cmd.name == "include_relative");
    lab_file(files, "\\i", arg, relative)
}

/// A lab file by its path in the lesson (`scripts/schema.sql`, relative to
/// the content dir, or the end of exactly one lab file's path), first
/// relative to the folder of `relative_to` if given: its path and text.
/// `what` names the meta-command in the refusal of absolute paths and `..`;
/// anything else missing is psql's `FILE: No such file or directory`.
fn lab_file(
    files: &BTreeMap<String, String>,
    what: &str,
    arg: &str,
    relative_to: Option<&str>,
) -> Result<(String, String), String> {
    let rel = arg.trim_start_matches("./");
    if arg.starts_with('/') || arg.starts_with('~') || rel.split('/').any(|p| p == "..") {
        return Err(format!(
            "{arg}: the console's {what} reads only the course's lab files, by their path in the lesson (no absolute paths, no \"..\")"
        ));
    }
    let mut candidates: Vec<String> = Vec::new();
    if let Some(dir) = relative_to
        && let Some((dir, _)) = dir.rsplit_once('/')
    {
        candidates.push(format!("{dir}/{rel}"));
    }
    candidates.push(rel.to_string());
    for c in &candidates {
        if let Some(text) = files.get(c) {
            return Ok((c.clone(), text.clone()));
        }
    }
    let suffix = format!("/{rel}");
    let mut found = files.iter().filter(|(p, _)| p.ends_with(&suffix));
    match (found.next(), found.next()) {
        (Some((p, t)), None) => Ok((p.clone(), t.clone())),
        _ => Err(format!("{arg}: No such file or directory")),
    }
}

/// `\copy`: the statement psql builds, run as psql runs it (see
/// `console::copy`): its result (a statement's, as psql prints it), the
/// statement if it failed on the server (for the transaction state), and
/// whether the connection was lost.
async fn slash_copy(
    conn: &mut Conn,
    files: &BTreeMap<String, String>,
    line: &str,
    limits: &Limits,
    state: TxState,
) -> (StatementResult, Option<String>, bool) {
    use super::copy::{Target, parse_slash_copy};
    let c = match parse_slash_copy(line) {
        Ok(c) => c,
        Err(message) => return (meta_result(line, Some(message)), None, false),
    };
    let refuse = |m: &str| (meta_result(line, Some(m.to_string())), None, false);
    // psql sends the statement it built as any other (`-e` echoes it) and
    // prints its answer: the data of a COPY TO STDOUT, the `COPY n` of a
    // COPY FROM STDIN, or the server's error with a caret into it.
    let server_result = |mut r: StatementResult, lost: bool| {
        r.sql.clone_from(&c.query);
        r.kind = "statement";
        let failed = r.error.is_some().then(|| c.query.clone());
        (r, failed, lost)
    };
    match (&c.target, c.from) {
        (Target::Program, _) => refuse(
            "\\copy ... program: the console runs no programs on the server; copy from a lab file or to stdout",
        ),
        (Target::Std, true) => refuse(
            "\\copy ... from stdin: the browser console has no input to read; copy from a lab file of the lesson (\\copy TABLE from 'FILE' csv)",
        ),
        (Target::File(_), false) => refuse(
            "\\copy ... to a file: the console writes no files; use \\copy ... to stdout (or pstdout) to see the data",
        ),
        (Target::Std, false) => {
            let ran =
                super::run::run_statement(conn, &c.query, limits, state == TxState::Failed).await;
            server_result(ran.result, ran.lost)
        }
        (Target::File(name), true) => {
            let data = match lab_file(files, "\\copy", name, None) {
                Ok((_, text)) => text,
                Err(message) => return refuse(&message),
            };
            conn.notices.clear();
            let copied = super::copy::copy_in(conn, &c.query, &data).await;
            let mut r = StatementResult {
                sql: c.query.clone(),
                kind: "statement",
                notices: conn.notices.take(),
                ..StatementResult::default()
            };
            let mut lost = false;
            match copied {
                Ok(n) => r.command_tag = Some(format!("COPY {n}")),
                Err(err) => {
                    let (error, is_lost) = super::run::map_error(err);
                    r.error = Some(error);
                    lost = is_lost;
                }
            }
            server_result(r, lost)
        }
    }
}

/// `\gset [PREFIX]`: the one row's columns become variables (NULL unsets).
fn gset(
    vars: &mut super::vars::Vars,
    prefix: Option<&str>,
    names: &[String],
    rows: meta::Rows,
) -> Result<(), String> {
    let mut rows = rows.into_iter();
    let row = match (rows.next(), rows.next()) {
        (None, _) => return Err("no rows returned for \\gset".into()),
        (Some(_), Some(_)) => return Err("more than one row returned for \\gset".into()),
        (Some(row), None) => row,
    };
    for (name, value) in names.iter().zip(row) {
        let name = format!("{}{name}", prefix.unwrap_or(""));
        if !super::vars::valid_name(&name) {
            return Err(format!("invalid variable name: \"{name}\""));
        }
        match value {
            Some(v) => vars.insert(name, v),
            None => vars.remove(&name),
        };
    }
    Ok(())
}

/// The transaction state after `sql` ran from `state`, succeeding or not.
pub fn next_state(state: TxState, sql: &str, failed: bool) -> TxState {
    let effect = tag::tx_effect(sql);
    if failed {
        return match (state, effect) {
            // Autocommit: the failed statement's own transaction is gone.
            (TxState::Idle, _) => TxState::Idle,
            // COMMIT failing (deferred constraint) still ends the transaction.
            (_, TxEffect::End) if !sql_is_prepare(sql) => TxState::Idle,
            _ => TxState::Failed,
        };
    }
    match effect {
        TxEffect::Begin | TxEffect::Chain | TxEffect::RollbackToSavepoint => TxState::InTransaction,
        TxEffect::End => TxState::Idle,
        TxEffect::None => state,
    }
}

/// psql's `command_no_begin`: the statements before which psql with
/// AUTOCOMMIT off sends no `BEGIN`: transaction control, and those that
/// cannot run in a transaction block. Words are psql's: letters only, after
/// white space and comments.
fn command_no_begin(sql: &str) -> bool {
    let mut rest = sql;
    let mut next = || {
        rest = skip_white_space(rest);
        let n = rest
            .char_indices()
            .find(|(_, c)| !c.is_alphabetic())
            .map_or(rest.len(), |(i, _)| i);
        let (w, r) = rest.split_at(n);
        rest = r;
        w.to_ascii_lowercase()
    };
    match next().as_str() {
        "abort" | "begin" | "start" | "commit" | "end" | "rollback" | "vacuum" => true,
        "prepare" => next() == "transaction",
        // CLUSTER with any argument may run in a transaction.
        "cluster" => next().is_empty(),
        "create" => match next().as_str() {
            "database" | "tablespace" => true,
            "unique" => next() == "index" && next() == "concurrently",
            "index" => next() == "concurrently",
            _ => false,
        },
        "alter" => next() == "system",
        "drop" | "reindex" => match next().as_str() {
            "database" | "system" | "tablespace" => true,
            "index" | "table" => next() == "concurrently",
            _ => false,
        },
        "discard" => next() == "all",
        _ => false,
    }
}

/// psql's `skip_white_space`: white space, `--` comments and (nested)
/// `/* */` comments.
fn skip_white_space(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(r) = t.strip_prefix("--") {
            s = r.find('\n').map_or("", |i| &r[i..]);
        } else if t.starts_with("/*") {
            let (mut depth, mut i, b) = (0usize, 0usize, t.as_bytes());
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            s = &t[i.min(t.len())..];
        } else {
            return t;
        }
    }
}

fn sql_is_prepare(sql: &str) -> bool {
    tag::words(sql).first().map(String::as_str) == Some("PREPARE")
}

/// How an answer to a run whose sandbox waits in line begins.
const IN_LINE: &str = "the classroom is full";

/// What a run answers while the learner's sandbox waits for a place.
fn in_line_message(position: usize) -> String {
    format!(
        "{IN_LINE}: you are number {position} in line. Your sandbox starts by itself \
         when a place frees (the sandbox panel shows your place); run again then"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begins_like_psql_with_autocommit_off() {
        for sql in [
            "commit;",
            "  /* c /* n */ */ -- x\n VACUUM t;",
            "cluster;",
            "create unique index concurrently i on t (x);",
            "drop index concurrently i;",
            "reindex table concurrently t;",
            "discard all;",
            "prepare transaction 'x';",
            "alter system set work_mem = '1MB';",
        ] {
            assert!(command_no_begin(sql), "{sql}");
        }
        for sql in [
            "select 1;",
            "cluster t;",
            "create index i on t (x);",
            "prepare p as select 1;",
            "discard plans;",
            "beginx;",
            ";",
            "savepoint a;",
        ] {
            assert!(!command_no_begin(sql), "{sql}");
        }
    }

    #[test]
    fn session_names_are_validated() {
        for ok in ["T1", "T2", "t", "main_2", "ABCDEFGHIJKLMNOP"] {
            assert!(valid_session_name(ok), "{ok}");
        }
        for bad in ["", "1T", "T-1", "T 1", "../x", "ABCDEFGHIJKLMNOPQ", "é"] {
            assert!(!valid_session_name(bad), "{bad}");
        }
    }

    #[test]
    fn transaction_state_machine() {
        use TxState::*;
        assert_eq!(next_state(Idle, "begin", false), InTransaction);
        assert_eq!(next_state(Idle, "select 1/0", true), Idle);
        assert_eq!(next_state(InTransaction, "select 1/0", true), Failed);
        assert_eq!(next_state(Failed, "select 1", true), Failed);
        assert_eq!(next_state(Failed, "commit", false), Idle);
        assert_eq!(
            next_state(Failed, "rollback to savepoint a", false),
            InTransaction
        );
        assert_eq!(next_state(InTransaction, "commit", true), Idle);
        assert_eq!(
            next_state(InTransaction, "update t set a = 1", false),
            InTransaction
        );
        assert_eq!(
            next_state(InTransaction, "commit and chain", false),
            InTransaction
        );
        assert_eq!(
            next_state(InTransaction, "rollback to nosuch", true),
            Failed
        );
    }
}
