//! Every hard limit and every default in one place (vsftpd's defs.h, sozu's DEFAULT_*).
//!
//! `MAX_*` are hard caps that protect the process; `DEFAULT_*` are policy defaults that the
//! policy file may override. Changing a value here changes the documented behaviour: keep
//! man/ftpgate.json.5 and man/ftpgate.8 in step.

/// Longest command line a client may send, without the CRLF. Longer lines get 500.
pub const MAX_COMMAND_LINE: usize = 4096;
/// Bytes of client input held while earlier commands wait for their replies (pipelining).
/// Beyond it ftpgate stops reading the client until the queue drains.
pub const MAX_CLIENT_INPUT: usize = 2 * MAX_COMMAND_LINE;
/// Longest single reply line a backend may send, without the CRLF.
pub const MAX_REPLY_LINE: usize = 4096;
/// Largest complete (multi-line) reply a backend may send; beyond it the client gets 421.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Most lines in one multi-line reply.
pub const MAX_REPLY_LINES: usize = 2048;
/// Longest verb accepted (RFC 959 verbs are 3 or 4 letters; some extensions are longer).
pub const MAX_VERB_LEN: usize = 8;
/// Largest policy file accepted by the loader.
pub const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

/// Size of one relay buffer borrowed from the pool while data moves.
pub const RELAY_BUFFER_SIZE: usize = 64 * 1024;
/// Relay buffers in the pool of one worker; a transfer that finds the pool empty gets 425.
pub const MAX_RELAY_BUFFERS: usize = 4096;
/// Bytes moved for one session in one turn of the event loop before other sessions get theirs.
pub const MAX_RELAY_BYTES_PER_TURN: usize = 1024 * 1024;
/// Readiness iterations for one session in one turn; hitting it means a bug, and the session
/// is closed rather than the loop spinning.
pub const MAX_DRIVE_ITERATIONS: usize = 10_000;

/// Seconds to wait for a TCP connect to a backend (control or data).
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
/// Seconds a data connection (passive accept or active connect) may take to come up.
pub const DEFAULT_DATA_CONNECT_TIMEOUT: u64 = 30;
/// Seconds from connect to a successful login.
pub const DEFAULT_LOGIN_TIMEOUT: u64 = 30;
/// Seconds without a command while no transfer moves.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 300;
/// Seconds a whole session may last.
pub const DEFAULT_SESSION_TIMEOUT: u64 = 900;
/// Milliseconds before a failed login is answered with 530 (known and unknown users alike).
pub const FAILED_LOGIN_DELAY_MS: u64 = 1000;
/// Seconds a backend server that refused a connection stays out of its pool.
pub const BACKEND_DOWN_SECONDS: u64 = 30;
/// Seconds a backend may take to answer a command before the session is closed with 421.
pub const DEFAULT_BACKEND_REPLY_TIMEOUT: u64 = 60;

/// Default passive port range when the policy names none.
pub const DEFAULT_PASSIVE_PORTS: (u16, u16) = (50000, 50999);
/// Default concurrent-session caps.
pub const DEFAULT_SESSIONS_TOTAL: u32 = 10_000;
pub const DEFAULT_SESSIONS_PER_IP: u32 = 20;
pub const DEFAULT_FAILED_LOGINS_PER_IP: u32 = 10;

/// Most worker processes the policy's `workers` may ask for.
pub const MAX_WORKERS: usize = 256;
/// Longest timeout the policy accepts, in seconds (30 days). Far beyond any sane session,
/// and far from the overflow of `Instant + Duration`.
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;
/// Syslog facility when the policy's `audit.syslog` names none.
pub const DEFAULT_SYSLOG_FACILITY: &str = "authpriv";
/// Syslog APP-NAME when the policy's `audit.syslog` names none.
pub const DEFAULT_SYSLOG_APP_NAME: &str = "ftpgate";
/// The syslog daemon's socket when the policy's `audit.syslog` names none.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
/// Longest path of a Unix socket, in bytes (`sun_path` holds 108 with the NUL).
pub const MAX_UNIX_SOCKET_PATH: usize = 107;
/// Milliseconds between two attempts to bring back an audit sink that failed (reopen the
/// file, reconnect to syslog), and between two comparisons of the audit file's path with the
/// open file (a rename by logrotate without a postrotate hook).
pub const AUDIT_RETRY_INTERVAL_MS: u64 = 1000;
/// Syslog messages held while the daemon's queue is full (the kernel queues only
/// `net.unix.max_dgram_qlen` unread datagrams, 10 unless systemd raised it to 512), sent in
/// order once it has room; beyond either bound events are lost (and counted).
pub const MAX_SYSLOG_BACKLOG: usize = 64;
pub const MAX_SYSLOG_BACKLOG_BYTES: usize = 256 * 1024;
/// Milliseconds between two attempts to send the held syslog messages.
pub const SYSLOG_BACKLOG_RETRY_MS: u64 = 20;
/// Days a file copy is kept when the policy's `audit.filecopy` says nothing.
pub const DEFAULT_FILECOPY_RETENTION_DAYS: u32 = 365;
/// Largest chunk a relay hands to the filecopy writer at once (a copy of the bytes it wrote).
pub const FILECOPY_CHUNK: usize = 64 * 1024;
/// Copy bytes queued for the filecopy writer of one worker; beyond it the relays that copy
/// stop reading their source until the writer catches up (backpressure, never a loss).
pub const FILECOPY_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Messages in the writer's channel (chunks are at most [`FILECOPY_CHUNK`] bytes).
pub const FILECOPY_QUEUE_MESSAGES: usize = 2 * FILECOPY_QUEUE_BYTES / FILECOPY_CHUNK;
/// Bytes of a copy written between two `fdatasync` calls of the writer, so that a long copy
/// reaches the disk while it is written rather than in one flush at the end.
pub const FILECOPY_SYNC_BYTES: usize = 16 * 1024 * 1024;
/// How soon a relay held back by a full copy queue tries again, in milliseconds.
pub const FILECOPY_RETRY_MS: u64 = 10;
/// Seconds a finished transfer waits for its copy to reach the disk before the copy counts
/// as failed.
pub const FILECOPY_RESULT_TIMEOUT: u64 = 300;
/// Seconds between two retention passes over the copy directory (the first runs at start).
pub const FILECOPY_RETENTION_INTERVAL: u64 = 60;
/// Directory entries one retention pass looks at, at most; the next pass goes on.
pub const FILECOPY_RETENTION_BATCH: usize = 5000;
/// Longest file name part taken from the client's argument for a copy.
pub const MAX_FILECOPY_NAME: usize = 100;

/// Seconds within which failed logins from one IP address are counted against
/// `failed_logins_per_ip`.
pub const DEFAULT_FAILED_LOGIN_WINDOW: u64 = 300;
/// Seconds an IP address that reached `failed_logins_per_ip` is refused with 421.
pub const DEFAULT_BAN_SECONDS: u64 = 600;
/// Sessions per worker whose backend connection is being set up at once; beyond it new
/// logins get 421 rather than piling up connects.
pub const DEFAULT_SESSIONS_WAITING_FOR_BACKEND: u32 = 1000;
/// Largest prefix table (`access.prefix_table`) the loader reads.
pub const MAX_PREFIX_TABLE_BYTES: u64 = 256 * 1024 * 1024;
/// Problems of a prefix table listed one by one before the rest are only counted.
pub const MAX_PREFIX_TABLE_ERRORS: usize = 20;
/// Largest offset from UTC a time window may name, in minutes (UTC+14:00, Kiribati).
pub const MAX_UTC_OFFSET_MINUTES: i16 = 14 * 60;

/// Slots of the shared per-address session table of one worker: the addresses with open
/// sessions it can count one by one. A session whose address finds no slot (all taken, or
/// its probe window full) still counts toward `sessions_total` (the worker's overflow
/// count), but not toward `sessions_per_ip`; it is never refused for that.
pub const COUNTER_ADDRESS_SLOTS: usize = 1 << 14;
/// Slots of the shared per-user session table of one worker (as for addresses: a login
/// that finds no slot is not refused, it does not count toward the user's
/// `limits.sessions`).
pub const COUNTER_USER_SLOTS: usize = 1 << 12;
/// Slots of the shared failed-login table of one worker: the addresses whose recent failed
/// logins it can count. When an address finds no slot, the failed login takes the slot of
/// an address with a single failure and no ban (the oldest one in its probe window); when
/// there is none either, it is not counted and bans nobody.
pub const COUNTER_FAILED_LOGIN_SLOTS: usize = 1 << 14;
/// Longest probe sequence of a key in a shared counter table (linear probing from the slot
/// the keyed hash of the key names). Keys are SipHash-2-4 under a secret drawn from the
/// kernel at every start, so nobody can compute keys that land in the same window.
pub const COUNTER_MAX_PROBE: usize = 64;
/// Seconds between two log lines about counts the shared tables could not attribute (a
/// full table is reported once per interval with the number since the last line, not once
/// per connection). The audit trail records each one.
pub const COUNTER_OVERFLOW_LOG_SECONDS: u64 = 10;

/// Bytes read from the kernel's random source (getrandom(2)) at a time by a worker's buffered
/// random source (passive ports); the next read comes when they are used up.
pub const RANDOM_BUFFER_BYTES: usize = 256;
/// Random passive ports a worker tries before it walks its whole slice (from a random point)
/// for a free one.
pub const PASSIVE_RANDOM_TRIES: usize = 16;
/// Seconds a passive port released by a client's session is not handed to a session of the
/// same client address again (unless every other free port of the worker's slice was, too:
/// then the one released longest ago is used rather than refusing the transfer).
pub const PASSIVE_QUARANTINE_SECONDS: u64 = 30;
/// Most (port, client address) pairs one worker keeps in quarantine; beyond it the oldest
/// pair leaves the quarantine early.
pub const MAX_PASSIVE_QUARANTINE: usize = 1024;
