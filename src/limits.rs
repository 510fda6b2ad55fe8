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
/// Command lines a client may send before it is logged in; the next one gets 421 and the
/// session is closed (audited once). A real login takes about ten (FEAT, AUTH, PBSZ, PROT,
/// USER, PASS, and a few retries).
pub const MAX_COMMANDS_BEFORE_LOGIN: u32 = 50;
/// Command lines one session may have processed in one turn of the event loop before the
/// other sessions get theirs (fairness, like [`MAX_RELAY_BYTES_PER_TURN`] for bytes).
pub const MAX_COMMANDS_PER_TURN: usize = 16;
/// Commands per second one session may have processed, sustained; beyond it ftpgate reads
/// its commands more slowly (they wait in the socket). Bounds the loop time and the audit
/// trail one logged-in client can take, far above what a real client sends.
pub const MAX_COMMANDS_PER_SECOND: u64 = 1000;
/// Commands a session may send at once above that rate.
pub const COMMAND_BURST: u64 = 1000;
/// Preliminary (1xx) replies a backend may send for one command; one more is a protocol
/// violation (421, audited): a stream of them would only fill the client's output.
pub const MAX_PRELIMINARY_REPLIES: u32 = 16;
/// Bytes of replies queued toward the client beyond which ftpgate stops reading client
/// commands and backend replies until the client reads (backpressure).
pub const MAX_CLIENT_OUTPUT: usize = 64 * 1024;
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
/// Bytes of the kernel pipe a spliced relay moves its data through (plaintext relays that
/// need no look at the bytes: `audit.digest` "none", no filecopy, no rate limit, no TLS).
/// The kernel rounds it to pages; above /proc/sys/fs/pipe-max-size the pipe keeps its
/// default 64 KiB. A pipe holds only references to the sockets' pages, and only while data
/// is in flight: an idle pipe costs two descriptors.
pub const RELAY_PIPE_BYTES: usize = 1024 * 1024;
/// Spliced relays (each with its pipe: two descriptors) one worker runs at once; a transfer
/// that finds none free takes the read/write path through a pooled buffer instead.
pub const MAX_RELAY_PIPES: usize = 1024;
/// Bytes a relay that may be spliced moves through its pooled buffer first: a short transfer
/// (a listing, a small file) ends before this and never pays for the pipe (pipe2, fcntl,
/// close: more system calls than the read and write it replaces); a longer one switches to
/// splice(2) once its buffer has drained.
pub const SPLICE_AFTER_BYTES: u64 = 128 * 1024;
/// Bytes read at a time from the tee(2) copy of a spliced relay's pipe for the SHA-256
/// (`audit.digest` "sha256" on a plaintext relay), into one buffer per worker.
pub const DIGEST_READ_BYTES: usize = 64 * 1024;
/// Readiness iterations for one session in one turn; hitting it means a bug, and the session
/// is closed rather than the loop spinning.
pub const MAX_DRIVE_ITERATIONS: usize = 10_000;

/// Backend names (one per TLS server of a pool) whose TLS 1.3 tickets a worker keeps for
/// the next FTP session's control connection (src/tls/client_sessions.rs); rustls keeps at
/// most 8 tickets per name, a few hundred bytes each.
pub const SHARED_BACKEND_TLS_SERVERS: usize = 256;

/// Backlog of a control listener: connections the kernel completes for ftpgate before it
/// accepts them (beyond it the kernel drops SYNs, and clients retry).
pub const CONTROL_BACKLOG: i32 = 1024;
/// Backlog of a passive data listener: the legitimate client plus a few intruders, which are
/// refused as they are accepted.
pub const PASSIVE_BACKLOG: i32 = 8;
/// Connections one control listener accepts in one turn of the event loop (a connection
/// flood cannot starve the sessions; what is left is accepted next turn).
pub const MAX_ACCEPTS_PER_TURN: usize = 256;
/// Backlog of a shared passive listener (`passive.shared`): the data connections of every
/// session waiting on the port may arrive at once, and intruders' are refused as they are
/// accepted.
pub const SHARED_PASSIVE_BACKLOG: i32 = 128;
/// Shared passive listeners one worker may hold open (each a (local address, port) pair of
/// its slice); beyond it a PASV draws no new one (425), and the tokens the reactor sets aside
/// for them are this many.
pub const MAX_SHARED_PASSIVE_LISTENERS: usize = 65_536;
/// Connections to a shared passive port refused because no session waits for their source
/// address that are recorded per second (each as a `policy_violation`, `port_theft`), per
/// worker; beyond it they are refused all the same and counted, the count travelling in the
/// next record. A flood costs the audit trail this many lines, not one per connection.
pub const STRAY_DATA_REFUSALS_PER_SECOND: u64 = 5;
/// Such refusals recorded at once above that rate.
pub const STRAY_DATA_REFUSAL_BURST: u64 = 20;
/// Connections one passive listener takes in one turn (the client's own, or intruders that
/// are refused and audited).
pub const MAX_PASSIVE_ACCEPTS_PER_TURN: usize = 16;
/// How long accepting pauses after the process ran out of file descriptors (nginx's
/// back-off: an accept loop on EMFILE would spin).
pub const ACCEPT_BACKOFF_MS: u64 = 200;
/// How long a closing session may take to flush its last reply to a client that does not
/// read before it is dropped.
pub const CLOSE_LINGER_SECONDS: u64 = 5;
/// How long a stopping worker lets transfers in flight finish before closing what is left
/// (`drain_timeout` in the policy; idle sessions close at once).
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 30;
/// The longest `drain_timeout` the policy may set: a stop must end in bounded time (and
/// systemd's `TimeoutStopSec` must be raised with it).
pub const MAX_DRAIN_TIMEOUT_SECONDS: u64 = 3600;
/// The account ftpgate gives up root for when started as root (policy `user`): the one the
/// packages create.
pub const DEFAULT_RUN_AS: &str = "ftpgate";
/// How long the supervisor waits for its workers beyond `drain_timeout` before it kills
/// them (their last 421s and audit records need a moment after the deadline).
pub const DRAIN_STOP_MARGIN_SECONDS: u64 = 10;
/// Port-theft attempts (connections from another address to a passive port) recorded one
/// by one per session; beyond it they are refused all the same but only counted (in
/// `session_end`'s `port_theft_attempts`), so an intruder cannot fill the audit trail.
pub const MAX_THEFT_EVENTS_PER_SESSION: u32 = 8;

/// For a user with `tls_session_reuse: "bridge"`: how long after ftpgate started a transfer
/// toward the backend (the client's transfer command came and the backend answered its
/// PASV) a client data connection may finish a TLS handshake that did not resume the
/// control session. The clients that cannot resume (stock Python ftplib, Apache Commons Net)
/// start it as soon as they read the 150, which follows at once; a late or an early fresh
/// handshake is refused like any other.
pub const DATA_TLS_BRIDGE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

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
/// Milliseconds from PASS to the 530 of a failed login (`defaults.limits.failed_login_delay_ms`),
/// the same for known and unknown names and whatever the backend's own delay up to then, so
/// the timing of the answer does not tell which names exist.
pub const DEFAULT_FAILED_LOGIN_DELAY_MS: u32 = 3000;
/// Longest failed-login delay the policy accepts (a minute).
pub const MAX_FAILED_LOGIN_DELAY_MS: u32 = 60_000;
/// Seconds a backend server that failed (a session's connect, greeting or TLS toward it,
/// or a health check) stays out of its pool the first time; each further failure in a row
/// doubles it, up to [`BACKEND_BACKOFF_MAX_SECONDS`]. A successful health check or login
/// brings the server back at once.
pub const BACKEND_DOWN_SECONDS: u64 = 30;
/// The longest a failing backend server stays out of its pool before sessions try it again
/// (five minutes), however often it failed.
pub const BACKEND_BACKOFF_MAX_SECONDS: u64 = 300;
/// Seconds between two health checks of a pool's servers (`backends.NAME.health_check`).
pub const DEFAULT_HEALTH_CHECK_INTERVAL: u64 = 10;
/// Seconds each step of a health check (connect, greeting, `AUTH TLS`, TLS handshake) may
/// take before the server counts as failed.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: u64 = 3;
/// Seconds a backend may take to answer a command before the session is closed with 421.
pub const DEFAULT_BACKEND_REPLY_TIMEOUT: u64 = 60;

/// Default passive port range when the policy names none.
pub const DEFAULT_PASSIVE_PORTS: (u16, u16) = (50000, 50999);
/// Default concurrent-session caps.
pub const DEFAULT_SESSIONS_TOTAL: u32 = 10_000;
pub const DEFAULT_SESSIONS_PER_IP: u32 = 20;
pub const DEFAULT_FAILED_LOGINS_PER_IP: u32 = 10;

/// Most listeners a policy may have (a worker's event loop has tokens for that many).
pub const MAX_LISTENERS: usize = 2048;
/// Most certificates `tls.certificates` may list. Every client handshake looks through
/// them in order for the first the client accepts; one per key type (ECDSA, RSA, Ed25519)
/// is all a listener ever needs, so a handful bounds that scan.
pub const MAX_TLS_CERTIFICATES: usize = 4;
/// Most worker processes the policy's `workers` may ask for.
pub const MAX_WORKERS: usize = 256;
/// Longest timeout the policy accepts, in seconds (30 days). Far beyond any sane session,
/// and far from the overflow of `Instant + Duration`.
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

// What `ftpgate --check` warns about (`policy/lint`): values that are valid but so large
// that they limit nothing, and networks so wide that an exception becomes the rule.
/// A session or login count from which a limit is "effectively unlimited": a hundred times
/// the default total of sessions, beyond the descriptors one host can give them.
pub const LINT_UNLIMITED_COUNT: u32 = 1_000_000;
/// A file size from which `max_file_size` is effectively unlimited (1 TiB).
pub const LINT_UNLIMITED_FILE_SIZE: u64 = 1 << 40;
/// A rate from which `rate` and `user_rate` are effectively unlimited: 1.25 GB/s, a full
/// 10 Gbit/s link.
pub const LINT_UNLIMITED_RATE: u64 = 1_250_000_000;
/// IPv4 networks of `allow_fxp_to` this wide or wider (a /8 is 16 million addresses) are
/// warned about: FXP toward them is bounce toward most of the Internet.
pub const LINT_WIDEST_FXP_PREFIX_V4: u8 = 8;
/// The same for IPv6: a /32 is a whole provider's allocation.
pub const LINT_WIDEST_FXP_PREFIX_V6: u8 = 32;
/// A certificate the policy names that expires within this many days (or has expired) is
/// warned about: time to renew it before clients or backends refuse it.
pub const LINT_CERTIFICATE_DAYS: i64 = 30;
/// Passive ports one session holds at most at a time: the listener of its last PASV or
/// EPSV, from the 227/229 until the data connection arrives (then the port is free again).
pub const PASSIVE_PORTS_PER_SESSION: u32 = 1;
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
/// Seconds between two `audit_checkpoint` events of a worker's hash chain when the policy's
/// `audit.integrity.checkpoint_interval` says nothing. A checkpoint is written only after
/// new lines, so an idle worker writes none.
pub const DEFAULT_AUDIT_CHECKPOINT_INTERVAL_S: u64 = 60;
/// Longest `audit.integrity.checkpoint_interval`, in seconds: the lines after a worker's last
/// checkpoint are only hash-chained, not keyed, so this bounds how long a tail an attacker
/// could rewrite without the key.
pub const MAX_AUDIT_CHECKPOINT_INTERVAL_S: u64 = 3600;
/// Shortest key `audit.integrity.key_file` may hold, in bytes (HMAC-SHA256's output size,
/// RFC 2104's recommended minimum).
pub const MIN_AUDIT_KEY_BYTES: usize = 32;
/// Longest key it may hold, in bytes (longer keys are hashed down by HMAC anyway).
pub const MAX_AUDIT_KEY_BYTES: usize = 1024;
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
/// Entries of the copy directory, of a year or of a month directory that a retention pass
/// reads to find the dated subdirectories (there are at most 10000, 12 and 31 of those); the
/// rest of a directory crowded with anything else waits for a later pass.
pub const FILECOPY_RETENTION_LISTING: usize = 20_000;

/// Seconds within which failed logins from one IP address are counted against
/// `failed_logins_per_ip`.
pub const DEFAULT_FAILED_LOGIN_WINDOW: u64 = 300;
/// Seconds an IP address that reached `failed_logins_per_ip` is refused with 421.
pub const DEFAULT_BAN_SECONDS: u64 = 600;
/// Sessions per worker whose backend connection is being set up at once; beyond it new
/// logins get 421 rather than piling up connects.
pub const DEFAULT_SESSIONS_WAITING_FOR_BACKEND: u32 = 1000;
/// Symbolic links the loader follows from a path the policy names (or the policy file's own
/// path) to the file, checking the directory of each one; more is refused (Linux itself stops
/// at 40).
pub const MAX_SYMLINK_HOPS: usize = 16;
/// Largest prefix table (`access.prefix_table`) the loader reads.
pub const MAX_PREFIX_TABLE_BYTES: u64 = 256 * 1024 * 1024;
/// Problems of a prefix table listed one by one before the rest are only counted.
pub const MAX_PREFIX_TABLE_ERRORS: usize = 20;
/// Largest offset from UTC a time window may name, in minutes (UTC+14:00, Kiribati).
pub const MAX_UTC_OFFSET_MINUTES: i16 = 14 * 60;

/// Seconds between two `FEAT` probe rounds of a backend pool whose servers all answered
/// (what ftpgate advertises before login follows a backend's upgrade within this time).
pub const FEATURE_PROBE_INTERVAL: u64 = 300;
/// Seconds before a pool is probed again after a round in which one of its servers did not
/// answer (down, refusing, too slow), so that a server that comes back is learned soon.
pub const FEATURE_PROBE_RETRY: u64 = 30;
/// Seconds each step of a `FEAT` probe may take: the connect, the greeting, the answer to
/// `FEAT`, the answer to `QUIT`.
pub const FEATURE_PROBE_STEP_TIMEOUT: u64 = 10;
/// Bytes one `FEAT` probe reads from a backend at most (greeting, `FEAT` and `QUIT`
/// answers); beyond it the probe fails and learns nothing.
pub const MAX_FEATURE_PROBE_BYTES: usize = 64 * 1024;
/// Bytes read from a probe's socket in one call.
pub const FEATURE_PROBE_READ_CHUNK: usize = 4096;
/// Reads and writes for one probe in one turn of the event loop; the rest waits for the
/// next turn.
pub const MAX_FEATURE_PROBE_ITERATIONS: usize = 64;
/// Feature lines kept from one backend's `FEAT` answer.
pub const MAX_FEATURES: usize = 64;
/// Longest feature line kept from a backend's `FEAT` answer; longer ones are dropped.
pub const MAX_FEATURE_LINE: usize = 512;
/// Whether a backend pool's `FEAT` is probed when its `feature_probe` says nothing.
pub const DEFAULT_FEATURE_PROBE: bool = true;
/// Backend pools whose `FEAT` a worker probes; pools beyond (in name order) always count
/// as the static feature list.
pub const MAX_PROBED_POOLS: usize = 1000;

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
/// then the one released longest ago is used rather than refusing the transfer). Each port
/// of the slice remembers its last release only: the memory is fixed by the slice's size
/// (24 bytes a port), whatever clients do.
pub const PASSIVE_QUARANTINE_SECONDS: u64 = 30;

/// Bytes of one notification datagram a worker sends its supervisor (`READY=1`, `STATUS=`
/// with the listen addresses or the first reason a reload was refused). A longer one is cut
/// by the kernel, which costs only the end of its status text.
pub const MAX_NOTIFY_DATAGRAM: usize = 4096;
/// Bytes of a PROXY protocol header ftpgate reads at most (`proxy_protocol`): a version 1
/// line is at most 107 bytes; a version 2 header with IPv6 addresses is 52, and this leaves
/// room for the TLVs balancers add (HAProxy's `proxy-v2-options`, a cloud balancer's
/// connection id). A longer version 2 header is refused.
pub const MAX_PROXY_HEADER_BYTES: usize = 536;
/// Milliseconds a connection from a balancer may take to deliver its whole PROXY header
/// (balancers send it at once, with or right after the connect); then it is closed.
pub const PROXY_HEADER_TIMEOUT_MS: u64 = 5000;
/// Connections of one worker that wait for their PROXY header at once (each holds a file
/// descriptor and a small buffer, for at most [`PROXY_HEADER_TIMEOUT_MS`]); one more is
/// closed at once.
pub const MAX_PENDING_PROXY_HEADERS: usize = 1024;
/// Connections to one passive port that come from a balancer (`passive.proxy_protocol`) and
/// wait for their PROXY header at once; one more is refused.
pub const MAX_PENDING_DATA_PROXY_HEADERS: usize = 4;
/// PROXY protocol refusals (`policy_violation` of kind `proxy_protocol`: an address outside
/// `proxy_from`, a missing or malformed header, no client in it) one worker records per
/// second, sustained; beyond it they are refused all the same and only counted, and the
/// count travels in the next one recorded. A flood of such connections costs the audit trail
/// this many lines, not one per connection.
pub const PROXY_REFUSALS_PER_SECOND: u64 = 5;
/// Refusals recorded at once above that rate.
pub const PROXY_REFUSAL_BURST: u64 = 20;

/// Connections to one worker's admin socket served at once (`ftpgate sessions`, `kill`,
/// `drain`); one more is closed at once, so a local process that opens many and sends
/// nothing holds at most this many descriptors and buffers.
pub const MAX_ADMIN_CONNECTIONS: usize = 8;
/// Bytes of one admin request line (`kill-user NAME` with the longest user name fits); a
/// longer request gets an error reply and the connection closes.
pub const MAX_ADMIN_REQUEST_BYTES: usize = 512;
/// Milliseconds an admin connection may take to send its request and read the reply; then
/// it is closed, whatever it holds.
pub const ADMIN_TIMEOUT_MS: u64 = 5000;
/// Bytes of one admin reply at most: a session listing of a full worker is cut here (and
/// says so), so the reply buffer of a slow reader stays bounded.
pub const MAX_ADMIN_REPLY_BYTES: usize = 4 << 20;
/// Labelled series (counters and histograms) one worker keeps for `ftpgate metrics`. The
/// label values come from the policy and ftpgate's own words, so this is never reached in
/// practice; a series beyond it is counted under the label value `other`, so a policy
/// reloaded with ever new backend names cannot grow the table without end.
pub const MAX_METRIC_SERIES: usize = 1024;
/// Bytes of an HTTP request to the metrics port (`metrics.listen`) read at most; a longer
/// one gets 431.
pub const MAX_METRICS_REQUEST_BYTES: usize = 4096;
/// Milliseconds a scrape of the metrics port has to send its request, and worker 0 to
/// gather the other workers' samples (a worker that has not answered by then is left out
/// and counted in `ftpgate_metrics_workers_missing`); the answer then has as long again to
/// leave.
pub const METRICS_GATHER_TIMEOUT_MS: u64 = 1000;
/// Bytes of a command line ftpgate cannot parse (a control byte, a malformed verb) kept in
/// its audit record as `line_hex`; the record says how long the whole line was.
pub const MAX_AUDITED_LINE_BYTES: usize = 256;
/// Errors of a refused policy a `policy_reload` audit event carries (the first ones, each
/// cut to [`MAX_RELOAD_ERROR_BYTES`]); `errors_total` says how many there were.
pub const MAX_RELOAD_ERRORS: usize = 16;
/// Bytes of one error message in a `policy_reload` event.
pub const MAX_RELOAD_ERROR_BYTES: usize = 512;
