//! Every argon2id hash the server computes (file passwords, new and
//! checked; the passphrase's tag at start-up), a few at a time, the
//! password checks in memory that is reused.
//!
//! One hash takes 19 MiB and tens of milliseconds of a core, and a password
//! check can be asked for by anyone who holds a protected file's link. So:
//!
//! - at most [`PERMITS`] hashes run at once (as many as the machine has
//!   cores, from 1 to 4); the others wait for a permit, holding nothing but
//!   their request;
//! - each permit has its own memory, allocated at its first use and kept for
//!   the next hash: the hashes never allocate. (Written here rather than
//!   calling the argon2 crate's `hash_password`/`verify_password`, which
//!   allocate their 19 MiB on each call: glibc gave that memory back so
//!   seldom that the server's resident memory grew by 19 MiB per check,
//!   to about ten checks' worth, even one check at a time. The crate's
//!   `hash_password_into_with_memory` is used on a buffer of ours, and the
//!   PHC strings are written and read with the crate's types.)
//!
//! So the memory of hashing is at most [`PERMITS`] × 19 MiB, whatever comes.
//! Stored hashes use the crate's default cost; a hash that asks for more
//! than [`MAX_BLOCKS`] of memory is not computed (it checks as wrong).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

/// Hashes that run at once, at most.
pub(crate) static PERMITS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4)));

/// Most memory blocks (1 KiB each) a hash may use: 64 MiB.
const MAX_BLOCKS: usize = 64 * 1024;

static SEMAPHORE: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(*PERMITS));

/// The memory of the permits not in use.
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Passwords checked against a stored hash since the start (for `/metrics`).
pub(crate) static PASSWORD_CHECKS: AtomicU64 = AtomicU64::new(0);

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// The argon2 crate refused its input.
    #[error("argon2: {0}")]
    Argon2(String),
    /// The blocking task failed.
    #[error("the hashing task failed: {0}")]
    Task(String),
}

/// Runs `work` with a permit and its memory, on a blocking thread.
async fn with_memory<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, HashError> {
    // The semaphore is never closed.
    let _permit = SEMAPHORE.acquire().await.ok();
    let mut memory = MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default();
    let (result, memory) = tokio::task::spawn_blocking(move || {
        let result = work(&mut memory);
        (result, memory)
    })
    .await
    .map_err(|e| HashError::Task(e.to_string()))?;
    MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(memory);
    Ok(result)
}

/// `argon` of `password` and `salt` into `out`, in `memory` (grown to what
/// its parameters need, at most [`MAX_BLOCKS`]).
fn hash_into(
    memory: &mut Vec<Block>,
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let need = argon.params().block_count();
    if need > MAX_BLOCKS {
        return Err(HashError::Argon2(format!(
            "{need} KiB of memory asked for, more than {MAX_BLOCKS}"
        )));
    }
    if memory.len() < need {
        memory.resize(need, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..need])
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// [`hash_into`] with the salt of a PHC string (base64), as a new
/// password's hash is written and a stored one is checked.
fn hash_phc_salt(
    memory: &mut Vec<Block>,
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    out: &mut [u8],
) -> Result<(), HashError> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    hash_into(memory, argon, password, salt, out)
}

/// A new password's PHC string: argon2id at the crate's default cost, a
/// random salt.
///
/// # Errors
/// The hash could not be computed.
pub(crate) async fn hash_new(password: String) -> Result<String, HashError> {
    with_memory(move |memory| {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        hash_phc_salt(
            memory,
            &argon,
            password.as_bytes(),
            salt.as_salt(),
            &mut out,
        )?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon.params())
                .map_err(|e| HashError::Argon2(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| HashError::Argon2(e.to_string()))?),
        };
        Ok(phc.to_string())
    })
    .await?
}

/// Whether `password` matches the PHC string `stored` (false for a string
/// that is not an argon2 hash this server can check).
pub(crate) async fn verify(stored: String, password: String) -> bool {
    with_memory(move |memory| {
        PASSWORD_CHECKS.fetch_add(1, Ordering::Relaxed);
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
            parsed.hash,
            parsed.salt,
        ) else {
            return false;
        };
        let version = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from)
            .unwrap_or(Version::V0x13);
        let argon = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        hash_phc_salt(memory, &argon, password.as_bytes(), salt, &mut out).is_ok()
            && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    })
    .await
    .unwrap_or(false)
}

/// argon2id of `secret` under `salt` with `params`, raw (for the
/// passphrase's tag).
///
/// # Errors
/// The hash could not be computed.
pub(crate) async fn raw(
    secret: String,
    salt: Vec<u8>,
    params: Params,
) -> Result<Vec<u8>, HashError> {
    // A permit, but memory of its own, given back when the hash is done: this
    // hash runs once, at start-up, and keeping its memory for reuse would
    // hold it for the server's whole life.
    let _permit = SEMAPHORE.acquire().await.ok();
    tokio::task::spawn_blocking(move || {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        let mut memory = Vec::new();
        hash_into(&mut memory, &argon, secret.as_bytes(), &salt, &mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| HashError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hashes_are_the_crate_s_own_phc_strings() {
        let ours = hash_new("correct horse".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The crate reads ours, and we read the crate's.
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify(theirs.clone(), "battery staple".into()).await);
        assert!(!verify(theirs, "battery stapler".into()).await);
        assert!(verify(ours.clone(), "correct horse".into()).await);
        assert!(!verify(ours, "".into()).await);
        assert!(!verify("not a hash".into(), "x".into()).await);
        // Too costly a hash is not computed.
        let huge = "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(!verify(huge.into(), "x".into()).await);
    }

    #[tokio::test]
    async fn memory_is_kept_per_permit() {
        for _ in 0..3 {
            hash_new("a".into()).await.unwrap();
        }
        let held = MEMORY.lock().unwrap().len();
        assert!(held <= *PERMITS, "{held}");
    }
}
