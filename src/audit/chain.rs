//! The tamper-evident audit trail: each worker's hash chain and its keyed checkpoints.
//!
//! Workers are separate processes writing to the same destinations, so each keeps a chain of
//! its own, named by `chain` (`w<worker>-<start unix time>-<pid>`: unique per worker process
//! start). Every line of the chain carries `seq` (0, 1, 2, ... per chain) and `prev`: the
//! lower-case hex SHA-256 of the previous line of the chain exactly as written (the JSON,
//! without the newline); the first line's `prev` is [`GENESIS`]. Each line costs one SHA-256
//! of itself, nothing that grows with history.
//!
//! Anyone can recompute a hash chain; what makes it tamper-evident is the periodic
//! `audit_checkpoint` line, itself a link of the chain, whose `mac` is HMAC-SHA256, keyed by
//! the policy's `audit.integrity.key_file`, over [`checkpoint_message`] (chain, seq, prev): it
//! authenticates every line of the chain before it. A checkpoint is written at most every
//! `checkpoint_interval` seconds and only after new lines (an idle worker writes none).
//!
//! SHA-256 is the crypto provider's (ring, through rustls: see [`crate::tls::sha256`]); rustls
//! does not expose its HMAC, so [`hmac_sha256`] builds RFC 2104 over that hash (tested with
//! the RFC 4231 vectors).

use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::limits::{MAX_AUDIT_KEY_BYTES, MIN_AUDIT_KEY_BYTES};
use crate::policy::{AuditKey, IntegrityPolicy};
use crate::tls::hex;

/// The `prev` of the first line of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The `event` of a checkpoint line.
pub const CHECKPOINT_EVENT: &str = "audit_checkpoint";
/// SHA-256's block size, for HMAC.
const BLOCK: usize = 64;

/// SHA-256 of the concatenation of `parts`, from the crypto provider.
pub fn sha256(parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut ctx = crate::tls::sha256()?;
    for part in parts {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().ok()
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&sha256(&[key])?);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = crate::tls::sha256()?;
    inner.update(&ipad);
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finish();
    sha256(&[&opad, inner.as_ref()])
}

/// What a checkpoint's `mac` authenticates: its own chain, seq and prev (which covers, hash by
/// hash, every earlier line of the chain).
pub fn checkpoint_message(chain: &str, seq: u64, prev: &str) -> String {
    format!("ftpgate-audit-checkpoint-v1\n{chain}\n{seq}\n{prev}")
}

/// The hex `mac` of a checkpoint.
pub fn checkpoint_mac(key: &[u8], chain: &str, seq: u64, prev: &str) -> Option<String> {
    let message = checkpoint_message(chain, seq, prev);
    hmac_sha256(key, &[message.as_bytes()]).map(|mac| hex(&mac))
}

/// A short public name of a key (not a secret: a hash of it), so that `verify-audit` can
/// tell "another key" from "tampered".
pub fn key_id(key: &[u8]) -> Option<String> {
    sha256(&[b"ftpgate-audit-key-id\n", key]).map(|h| hex(&h[..8]))
}

/// Reads a key file: a regular file of [`MIN_AUDIT_KEY_BYTES`] to [`MAX_AUDIT_KEY_BYTES`]
/// bytes, used as they are. With `check_mode`, a file that others may read or that its group
/// may write is refused (`chmod 0640`, owned by root and the service's group, or `0600`).
pub fn read_key(path: &Path, check_mode: bool) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // O_NONBLOCK: a FIFO put at the path fails the regular-file check below instead of
    // blocking the policy load until a writer comes.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if check_mode && mode & 0o027 != 0 {
        return Err(format!(
            "{}: mode {mode:04o} lets others read the key or its group change it; use 0600 or \
             0640",
            path.display()
        ));
    }
    let mut key = Vec::new();
    let limit = u64::try_from(MAX_AUDIT_KEY_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut key)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if key.len() < MIN_AUDIT_KEY_BYTES || key.len() > MAX_AUDIT_KEY_BYTES {
        return Err(format!(
            "{}: a key has {MIN_AUDIT_KEY_BYTES} to {MAX_AUDIT_KEY_BYTES} bytes (e.g. head -c \
             32 /dev/urandom); this file has {}",
            path.display(),
            if key.len() > MAX_AUDIT_KEY_BYTES {
                format!("more than {MAX_AUDIT_KEY_BYTES}")
            } else {
                key.len().to_string()
            }
        ));
    }
    Ok(key)
}

/// Any event, with the chain fields after its own.
#[derive(Serialize)]
pub(super) struct Linked<'a, T: Serialize> {
    #[serde(flatten)]
    pub inner: &'a T,
    pub chain: &'a str,
    pub seq: u64,
    pub prev: &'a str,
}

/// The body of a checkpoint line.
#[derive(Serialize)]
struct Checkpoint<'a> {
    ts: &'a str,
    worker: u32,
    event: &'static str,
    key_id: &'a str,
    mac: &'a str,
}

/// One worker's chain.
pub(super) struct Chain {
    id: String,
    next_seq: u64,
    /// Hex SHA-256 of the last line written.
    prev: String,
    key: AuditKey,
    key_id: String,
    interval: Duration,
    /// Lines since the last checkpoint.
    pending: u64,
    /// When the next checkpoint is due (set by the first line after a checkpoint).
    due: Instant,
}

impl Chain {
    pub fn new(worker: u32, policy: &IntegrityPolicy, now: Instant) -> io::Result<Chain> {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let key_id = key_id(policy.key.bytes())
            .ok_or_else(|| io::Error::other("the crypto provider has no SHA-256"))?;
        Ok(Chain {
            id: format!("w{worker}-{started}-{}", std::process::id()),
            next_seq: 0,
            prev: GENESIS.to_owned(),
            key: policy.key.clone(),
            key_id,
            interval: Duration::from_secs(policy.checkpoint_interval_s),
            pending: 0,
            due: now,
        })
    }

    /// A reloaded policy: the chain goes on, with the new key and interval.
    pub fn apply(&mut self, policy: &IntegrityPolicy) {
        if let Some(id) = key_id(policy.key.bytes()) {
            self.key = policy.key.clone();
            self.key_id = id;
        }
        self.interval = Duration::from_secs(policy.checkpoint_interval_s);
    }

    /// Serialises `inner` as the chain's next line into `out` (cleared first).
    pub fn serialise<T: Serialize>(&self, inner: &T, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.clear();
        let linked = Linked {
            inner,
            chain: &self.id,
            seq: self.next_seq,
            prev: &self.prev,
        };
        serde_json::to_writer(out, &linked)
    }

    /// The line `serialise` produced was handed to the destinations: it is the new end of
    /// the chain. `checkpoint`: it was a checkpoint line (which resets the pending count).
    pub fn advance(&mut self, json: &[u8], checkpoint: bool, now: Instant) {
        match sha256(&[json]) {
            Some(hash) => self.prev = hex(&hash),
            None => log::error!("audit chain: the crypto provider has no SHA-256"),
        }
        self.next_seq += 1;
        if checkpoint {
            self.pending = 0;
        } else {
            if self.pending == 0 {
                self.due = now + self.interval;
            }
            self.pending += 1;
        }
    }

    /// Whether a checkpoint should be written now.
    pub fn due(&self, now: Instant) -> bool {
        self.pending > 0 && now >= self.due
    }

    /// How long until a checkpoint is due; `None` when none is pending.
    pub fn until_due(&self, now: Instant) -> Option<Duration> {
        (self.pending > 0).then(|| self.due.saturating_duration_since(now))
    }

    /// Serialises the checkpoint line into `out`.
    pub fn checkpoint(&self, worker: u32, ts: &str, out: &mut Vec<u8>) -> io::Result<()> {
        let mac = checkpoint_mac(self.key.bytes(), &self.id, self.next_seq, &self.prev)
            .ok_or_else(|| io::Error::other("the crypto provider has no SHA-256"))?;
        let body = Checkpoint {
            ts,
            worker,
            event: CHECKPOINT_EVENT,
            key_id: &self.key_id,
            mac: &mac,
        };
        self.serialise(&body, out).map_err(io::Error::other)
    }

    /// The chain's name and the seq its next line gets.
    pub fn position(&self) -> (&str, u64) {
        (&self.id, self.next_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (5 is truncated output).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let cases: &[(Vec<u8>, Vec<u8>, &str)] = &[
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the HMAC \
                  algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hex(&hmac_sha256(key, &[data]).unwrap()), *want);
            // Split input gives the same MAC.
            let (a, b) = data.split_at(data.len() / 2);
            assert_eq!(hex(&hmac_sha256(key, &[a, b]).unwrap()), *want);
        }
    }

    fn policy(key: &[u8], interval: u64) -> IntegrityPolicy {
        IntegrityPolicy {
            key_file: "/k".into(),
            key: AuditKey::new(key.to_vec()),
            checkpoint_interval_s: interval,
        }
    }

    #[test]
    fn each_line_links_to_the_hash_of_the_previous_one() {
        let now = Instant::now();
        let mut chain = Chain::new(3, &policy(&[7; 32], 60), now).unwrap();
        assert!(chain.position().0.starts_with("w3-"));
        let mut out = Vec::new();
        chain
            .serialise(&serde_json::json!({"event": "a"}), &mut out)
            .unwrap();
        let first: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(first["seq"], 0);
        assert_eq!(first["prev"], GENESIS);
        let first_hash = hex(&sha256(&[&out]).unwrap());
        chain.advance(&out.clone(), false, now);
        chain
            .serialise(&serde_json::json!({"event": "b"}), &mut out)
            .unwrap();
        let second: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(second["seq"], 1);
        assert_eq!(second["prev"], first_hash.as_str());
        assert!(
            out.starts_with(b"{\"event\":\"b\""),
            "chain fields come last"
        );
    }

    #[test]
    fn a_checkpoint_is_due_an_interval_after_the_first_unchecked_line() {
        let now = Instant::now();
        let mut chain = Chain::new(0, &policy(&[7; 32], 10), now).unwrap();
        assert!(
            !chain.due(now + Duration::from_secs(100)),
            "nothing to check"
        );
        assert_eq!(chain.until_due(now), None);
        chain.advance(b"{}", false, now);
        chain.advance(b"{}", false, now + Duration::from_secs(5));
        assert!(!chain.due(now + Duration::from_secs(9)));
        assert_eq!(
            chain.until_due(now + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert!(chain.due(now + Duration::from_secs(10)));
        let mut out = Vec::new();
        chain.checkpoint(0, "t", &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"], CHECKPOINT_EVENT);
        assert_eq!(v["seq"], 2);
        let prev = v["prev"].as_str().unwrap();
        let mac = checkpoint_mac(&[7; 32], chain.position().0, 2, prev).unwrap();
        assert_eq!(v["mac"], mac.as_str());
        chain.advance(&out, true, now + Duration::from_secs(10));
        assert!(!chain.due(now + Duration::from_secs(1000)));
    }

    #[test]
    fn key_files_are_checked_for_mode_and_size() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, [1u8; MIN_AUDIT_KEY_BYTES]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_key(&path, true).unwrap().len(), MIN_AUDIT_KEY_BYTES);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_key(&path, true).unwrap_err().contains("0644"));
        assert!(read_key(&path, false).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, [1u8; MIN_AUDIT_KEY_BYTES - 1]).unwrap();
        assert!(read_key(&path, true).is_err());
        std::fs::write(&path, vec![1u8; MAX_AUDIT_KEY_BYTES]).unwrap();
        assert!(read_key(&path, true).is_ok());
        std::fs::write(&path, vec![1u8; MAX_AUDIT_KEY_BYTES + 1]).unwrap();
        assert!(read_key(&path, true).unwrap_err().contains("more than"));
        assert!(read_key(dir.path(), true).is_err());
        // A FIFO at the path: in tests/audit_chain.rs (no fork in the unit tests: a child
        // holding copies of another test's sockets breaks the syslog restart test).
    }
}
