//! ftpgate: an FTP security proxy.
//!
//! The crate is split into a sans-IO core and an I/O shell:
//! - [`ftp`]: pure parsers and formatters for the FTP wire format (commands, replies,
//!   addresses, line framing, Telnet filtering). No I/O, no allocation without a bound.
//! - [`policy`]: the policy file model, its loader (with line:column errors) and the
//!   decisions taken from it. Pure.
//! - [`session`]: the control and data state machines (pure) and the session shell that
//!   owns the sockets of one FTP session and executes the machines' actions.
//! - [`reactor`]: the mio event loop, the timer heap and the buffer pool. Knows nothing of FTP.
//! - [`audit`]: the typed audit event stream and its sinks.
//! - [`features`]: what `FEAT` advertises before login, learned from the backends by a
//!   small probe state machine (pure; the reactor does the probe's I/O).
//! - [`filecopy`]: the `filecopy` audit mode's writer thread, copy names and retention.
//! - [`counters`]: the session and failed-login counts shared by the worker processes.
//! - [`siphash`]: the keyed hash of those counters' tables.
//! - [`proxy_protocol`]: the PROXY protocol v1/v2 header parser (pure), for listeners
//!   behind a load balancer.
//! - [`os`]: the few calls into the operating system the compiler cannot check, and the
//!   only module allowed to make them.
//! - [`metrics`]: counters for Prometheus, counted from the audit events.
//! - [`admin`]: the admin socket's protocol and `ftpgate sessions`/`kill`/`drain`.
//! - [`notify`]: readiness and reload notifications for systemd (`Type=notify`).
//! - [`logging`]: the diagnostics on stderr, with sd-daemon priorities under journald.

pub mod admin;
pub mod audit;
pub mod counters;
pub mod features;
pub mod filecopy;
pub mod ftp;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod os;
pub mod policy;
pub mod privileges;
pub mod proxy_protocol;
pub mod reactor;
pub mod services;
pub mod session;
pub mod siphash;
pub mod supervisor;
pub mod tls;
