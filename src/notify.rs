//! Readiness and reload notifications for systemd (`Type=notify`), without libsystemd.
//!
//! The protocol (sd_notify(3)) is one datagram of `KEY=VALUE` lines sent to the Unix socket
//! named by `$NOTIFY_SOCKET`: a path, or an abstract name written with a leading `@`.
//! ftpgate sends
//!
//! ```text
//! READY=1 + STATUS=...                  once the control listeners are bound
//! RELOADING=1 + MONOTONIC_USEC=...      when SIGHUP starts a reload
//! READY=1 + STATUS=...                  when the reload is done (taken or refused)
//! STOPPING=1                            when SIGTERM starts the drain
//! ```
//!
//! Only the main process may notify (`NotifyAccess=main` in the unit). With one worker that
//! is the worker itself. With several, the workers send the same messages, each with a
//! `FTPGATE_WORKER=INDEX` line, to the supervisor over a socket pair it passes down
//! (`--notify-fd`); the supervisor tells systemd `READY=1` when every worker is ready (see
//! [`Readiness`]). Notifications are best effort: a failed send is logged at debug level and
//! never stops the gateway (systemd itself times out a start that never gets `READY=1`).

use std::io;
use std::os::unix::net::UnixDatagram;

/// The key a worker adds to tell the supervisor which worker it is.
pub const WORKER_KEY: &str = "FTPGATE_WORKER";

/// Where notifications go.
pub struct Notifier {
    target: Target,
}

enum Target {
    /// Not run by systemd (no `$NOTIFY_SOCKET`) or a socket that cannot be used.
    None,
    /// `$NOTIFY_SOCKET`: an unbound socket and the address to send to.
    Systemd {
        socket: UnixDatagram,
        address: std::os::unix::net::SocketAddr,
    },
    /// A worker's end of the supervisor's socket pair.
    Supervisor { socket: UnixDatagram, index: usize },
}

/// Parses `$NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract socket.
pub fn parse_address(value: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    if let Some(name) = value.strip_prefix('@') {
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
    } else if value.starts_with('/') {
        std::os::unix::net::SocketAddr::from_pathname(value)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET {value:?} is neither an absolute path nor @name"),
        ))
    }
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn none() -> Notifier {
        Notifier {
            target: Target::None,
        }
    }

    /// From `$NOTIFY_SOCKET`, if systemd set it.
    pub fn from_env() -> Notifier {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::none();
        };
        let target = value
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not UTF-8"))
            .and_then(parse_address)
            .and_then(|address| {
                let socket = UnixDatagram::unbound()?;
                socket.set_nonblocking(true)?;
                Ok(Target::Systemd { socket, address })
            });
        match target {
            Ok(target) => Notifier { target },
            Err(e) => {
                log::warn!("ignoring NOTIFY_SOCKET: {e}");
                Notifier::none()
            }
        }
    }

    /// A worker's notifier toward its supervisor.
    pub fn to_supervisor(socket: UnixDatagram, index: usize) -> Notifier {
        // A full socket drops the message instead of stalling the event loop.
        if let Err(e) = socket.set_nonblocking(true) {
            log::debug!("notification socket: {e}");
        }
        Notifier {
            target: Target::Supervisor { socket, index },
        }
    }

    pub fn is_active(&self) -> bool {
        !matches!(self.target, Target::None)
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines).
    pub fn send(&self, state: &str) {
        let result = match &self.target {
            Target::None => return,
            Target::Systemd { socket, address } => {
                socket.send_to_addr(state.as_bytes(), address).map(drop)
            }
            Target::Supervisor { socket, index } => socket
                // The index first: a datagram cut at the limit keeps it.
                .send(format!("{WORKER_KEY}={index}\n{state}").as_bytes())
                .map(drop),
        };
        if let Err(e) = result {
            log::debug!("cannot send the notification {state:?}: {e}");
        }
    }

    /// The listeners are bound: the service has started, or a reload is done.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A reload starts; systemd waits for the next `READY=1`.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the policy",
            crate::os::monotonic_usec()
        ));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping, draining sessions");
    }
}

/// A STATUS value is one line: anything after a newline would be read as another key.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// What a worker told the supervisor: its index and whether it said `READY=1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerMessage {
    pub index: usize,
    pub ready: bool,
    pub status: Option<String>,
}

/// Reads one worker datagram; `None` for one without a valid worker index.
pub fn parse_worker_message(datagram: &[u8]) -> Option<WorkerMessage> {
    let text = std::str::from_utf8(datagram).ok()?;
    let mut message = WorkerMessage {
        index: usize::MAX,
        ready: false,
        status: None,
    };
    for line in text.lines() {
        match line.split_once('=') {
            Some((WORKER_KEY, index)) => message.index = index.parse().ok()?,
            Some(("READY", "1")) => message.ready = true,
            Some(("STATUS", status)) => message.status = Some(status.to_string()),
            _ => {}
        }
    }
    (message.index != usize::MAX).then_some(message)
}

/// The supervisor's view of its workers' readiness: systemd hears `READY=1` once every
/// worker has said it since the last start or reload. A worker that is restarted counts as
/// not ready until it says so again, but a restart alone never withdraws readiness from
/// systemd (the others keep serving).
#[derive(Debug)]
pub struct Readiness {
    waiting: Vec<bool>,
    /// `READY=1` is owed to systemd: at start, and after each reload.
    owed: bool,
}

impl Readiness {
    pub fn new(count: usize) -> Readiness {
        Readiness {
            waiting: vec![true; count],
            owed: true,
        }
    }

    /// A reload was sent to every worker.
    pub fn reloading(&mut self) {
        self.waiting.iter_mut().for_each(|w| *w = true);
        self.owed = true;
    }

    /// Worker `index` said `READY=1`, or exited (it cannot answer any more). Returns true
    /// when `READY=1` should now go to systemd.
    pub fn done(&mut self, index: usize) -> bool {
        if let Some(w) = self.waiting.get_mut(index) {
            *w = false;
        }
        if self.owed && !self.waiting.iter().any(|w| *w) {
            self.owed = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        use std::os::linux::net::SocketAddrExt;
        let path = parse_address("/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abstract_name = parse_address("@ftpgate-test").unwrap();
        assert_eq!(abstract_name.as_abstract_name(), Some(&b"ftpgate-test"[..]));
        assert!(parse_address("relative/path").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn worker_messages_carry_the_index() {
        let m = parse_worker_message(b"READY=1\nSTATUS=up\nFTPGATE_WORKER=2").unwrap();
        assert_eq!(
            m,
            WorkerMessage {
                index: 2,
                ready: true,
                status: Some("up".into())
            }
        );
        let m = parse_worker_message(b"RELOADING=1\nFTPGATE_WORKER=0").unwrap();
        assert!(!m.ready);
        assert_eq!(parse_worker_message(b"READY=1"), None);
        assert_eq!(parse_worker_message(b"FTPGATE_WORKER=x"), None);
        assert_eq!(parse_worker_message(&[0xff, 0xfe]), None);
    }

    #[test]
    fn ready_once_every_worker_is() {
        let mut r = Readiness::new(2);
        assert!(!r.done(0));
        assert!(!r.done(0), "the same worker twice is not the other one");
        assert!(r.done(1));
        assert!(!r.done(1), "readiness is told once");
        // A restarted worker's READY alone says nothing new.
        assert!(!r.done(0));
        r.reloading();
        assert!(!r.done(1));
        assert!(r.done(0));
        assert!(!r.done(7), "an index out of range is ignored");
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(one_line("a\nb\r"), "a b ");
    }

    #[test]
    fn sends_to_a_bound_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Target::Systemd {
                socket: UnixDatagram::unbound().unwrap(),
                address: parse_address(path.to_str().unwrap()).unwrap(),
            },
        };
        notifier.ready("serving\nagain");
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving again");
        notifier.reloading();
        let n = receiver.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
    }
}
