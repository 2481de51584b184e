//! Passwords: rules, argon2id hashing off the async runtime, and generated
//! passwords for bulk-created learners.
//!
//! Hashing uses the `argon2` crate (RustCrypto, pure Rust, the PHC winner)
//! with its default Argon2id parameters (19 MiB, 2 passes); the PHC string it
//! returns carries salt and parameters, so they can be raised later without
//! breaking existing hashes. Hashing costs tens of milliseconds of CPU: it runs
//! on a few threads of its own so it never stalls other requests, each
//! hashing in one memory area it keeps (see [`with_kept_memory`]).

use std::cell::RefCell;

use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use super::AuthError;
use super::token;

/// Shortest password accepted.
pub const MIN_LEN: usize = 8;
/// Longest password accepted (bounds the work one request can cause).
pub const MAX_LEN: usize = 256;

/// Checks the password rules, with a message meant for the person choosing it.
pub fn validate(password: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(AuthError::Invalid(format!(
            "the password must have at least {MIN_LEN} characters"
        )));
    }
    if len > MAX_LEN {
        return Err(AuthError::Invalid(format!(
            "the password must have at most {MAX_LEN} characters"
        )));
    }
    Ok(())
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on one of pglab's own hashing threads (one per core, 2 to 8)
/// and waits for its result without blocking the runtime.
///
/// Why not `spawn_blocking`: each hash holds 19 MiB while it runs, and a
/// class signing in at once spread that over dozens of blocking threads
/// (40 logins at once: 778 MiB peak). A few long-lived threads bound the
/// hashes running at once; the CPU is the limit anyway, so queueing costs
/// no time overall.
async fn on_hash_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    hash_threads()
        .send(job)
        .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
    rx.await.context("password hashing thread")
}

fn hash_threads() -> &'static std::sync::mpsc::Sender<Job> {
    use std::sync::{Arc, LazyLock, Mutex, mpsc};
    static QUEUE: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..cores.clamp(2, 8) {
            let rx = rx.clone();
            let worker = move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    // A panicking hash must not take the worker with it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            };
            let spawned = std::thread::Builder::new()
                .name(format!("pglab-argon2-{i}"))
                .spawn(worker);
            if let Err(err) = spawned {
                tracing::error!(%err, "cannot start a password hashing thread");
            }
        }
        tx
    });
    &QUEUE
}

/// Hashes a password into an argon2id PHC string (on a hashing thread).
pub async fn hash(password: String) -> anyhow::Result<String> {
    on_hash_thread(move || hash_blocking(&password)).await?
}

/// Hashes on the current thread; for the CLI and for `hash`.
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&token::random_bytes::<16>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = with_kept_memory(
        Algorithm::default(),
        Version::default(),
        Params::default(),
        password.as_bytes(),
        salt.as_salt(),
    )
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(phc.to_string())
}

thread_local! {
    /// The argon2 memory of this thread, kept from one hash to the next.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// What argon2's `PasswordHasher::hash_password` does, but in this thread's
/// kept memory instead of a fresh 19 MiB allocation per hash: glibc kept
/// those freed allocations in per-thread arenas (60 sign-ins at once left
/// the server at 297 MiB for good, measured); now the hashing threads hold
/// 19 MiB each, and that is all.
fn with_kept_memory<'a>(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: Salt<'a>,
) -> Result<PasswordHash<'a>, argon2::password_hash::Error> {
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), Block::default());
        }
        let output = Output::init_with(output_len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, &mut blocks[..])?)
        });
        // A stored hash with far larger parameters than ours is hashed in
        // memory that is not kept.
        if blocks.len() > 2 * Params::DEFAULT_M_COST as usize {
            *blocks = Vec::new();
        }
        output
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// What argon2's `PasswordVerifier::verify_password` does (algorithm,
/// version and parameters from the stored hash; outputs compared in constant
/// time by `Output`), in this thread's kept memory.
fn verify_with_kept_memory(password: &[u8], stored: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (stored.salt, &stored.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(stored.algorithm);
    let version = stored
        .version
        .map(Version::try_from)
        .unwrap_or(Ok(Version::default()));
    let params = Params::try_from(stored);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
        return false;
    };
    match with_kept_memory(algorithm, version, params, password, salt) {
        Ok(computed) => computed.hash.as_ref() == Some(expected),
        Err(_) => false,
    }
}

/// Whether `password` matches the stored PHC string `phc` (on a blocking
/// thread). With no stored hash (unknown user, or an account without a
/// password) it still spends the same work on a dummy hash, so the answer's
/// timing does not tell which usernames exist.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    on_hash_thread(move || {
        let (phc, real) = match phc {
            Some(p) => (p, true),
            None => (dummy_hash().to_string(), false),
        };
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let ok = verify_with_kept_memory(password.as_bytes(), &parsed);
        Ok(ok && real)
    })
    .await?
}

/// A fixed hash of a random password, made once, for [`verify`] of unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        // Not user input: hashing a fresh token with a valid salt cannot fail.
        hash_blocking(&token::generate()).expect("hashing a random token")
    })
}

/// Letters and digits that cannot be mistaken for each other when read aloud
/// or copied from paper (no 0/O, 1/l/I).
const FRIENDLY: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A generated password to hand to a learner: 12 friendly characters (about
/// 70 bits).
pub fn generate() -> String {
    token::random_string(FRIENDLY, 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(
            verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse!".into(), Some(phc)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    /// Hashes from the kept-memory path are standard PHC strings that
    /// argon2's own verifier accepts, and the other way round.
    #[test]
    fn kept_memory_hashes_match_argon2s_own() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let ours = hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
        let salt = SaltString::encode_b64(b"sixteen bytes!!!").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        let theirs = PasswordHash::new(&theirs).unwrap();
        assert!(verify_with_kept_memory(b"battery staple", &theirs));
        assert!(!verify_with_kept_memory(b"battery stapler", &theirs));
        // Other parameters (a smaller, older hash) verify too, in the same
        // thread's memory, and a damaged hash does not.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        )
        .hash_password(b"old account", &salt)
        .unwrap()
        .to_string();
        assert!(verify_with_kept_memory(
            b"old account",
            &PasswordHash::new(&small).unwrap()
        ));
        let damaged = small.replace("m=4096", "m=8192");
        assert!(!verify_with_kept_memory(
            b"old account",
            &PasswordHash::new(&damaged).unwrap()
        ));
    }

    #[test]
    fn rules() {
        assert!(validate("1234567").is_err());
        assert!(validate("12345678").is_ok());
        assert!(validate(&"x".repeat(MAX_LEN + 1)).is_err());
        let g = generate();
        assert_eq!(g.len(), 12);
        assert!(validate(&g).is_ok());
    }
}
