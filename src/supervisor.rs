//! The supervisor: one worker process per core, restarted if it dies, told to reload or
//! stop when the supervisor is.
//!
//! Workers are this same binary re-executed with `--worker INDEX/COUNT`; each binds the
//! control listeners itself with SO_REUSEPORT and serves its own slice of the passive port
//! range. The supervisor holds no client socket and does no FTP.
//!
//! Under systemd (`Type=notify`) the supervisor is the main process and the only one that
//! notifies: each worker reports `READY=1` over a socket pair the supervisor passes down
//! (`--notify-fd`), and systemd hears `READY=1` once all of them have, at start and after
//! each reload (see `notify`).

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::limits::DRAIN_STOP_MARGIN_SECONDS;
use crate::notify::{self, Notifier, Readiness};
use crate::os;
use crate::policy::Policy;
use crate::privileges;
use crate::services::sockets::bind_control_listener;

/// A worker that dies sooner than this after its start is failing to start, not crashing.
const STARTUP_GRACE: Duration = Duration::from_secs(2);

struct WorkerProcess {
    index: usize,
    child: Child,
    started: Instant,
}

/// What each worker is started with.
struct Spawn<'a> {
    config: &'a Path,
    count: usize,
    shm_fd: i32,
    notify_fd: i32,
    /// Options the supervisor was given that the workers need too (`--log-format`).
    extra: &'a [OsString],
    /// Per worker: the `--listen-fd` arguments of the listeners bound for it as root.
    listen_args: &'a [Vec<String>],
}

const SIGNAL_TOKEN: mio::Token = mio::Token(0);
const NOTIFY_TOKEN: mio::Token = mio::Token(1);

/// Runs `count` workers until SIGTERM/SIGINT. Returns the process exit code. `extra` are
/// arguments passed on to every worker.
pub fn run(
    config: &Path,
    policy: &Policy,
    count: usize,
    extra: &[OsString],
    run_as: Option<(u32, u32)>,
) -> ExitCode {
    // Started as root: every worker's listeners are bound now, then root is given up; each
    // worker inherits its own (kept open here for the workers restarted later).
    let mut bound: Vec<Vec<(std::net::SocketAddr, std::net::TcpListener)>> = Vec::new();
    let mut listen_args: Vec<Vec<String>> = vec![Vec::new(); count];
    if let Some(ids) = run_as {
        for args in &mut listen_args {
            let listeners = match privileges::bind_listeners(policy) {
                Ok(listeners) => listeners,
                Err(e) => {
                    log::error!("{e}");
                    return ExitCode::from(1);
                }
            };
            match privileges::inheritable_args(&listeners) {
                Ok(a) => *args = a,
                Err(e) => {
                    log::error!("cannot pass the listeners on: {e}");
                    return ExitCode::from(1);
                }
            }
            bound.push(listeners);
        }
        if let Err(e) = privileges::drop_to(&policy.user, ids) {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    } else {
        // Fail early and clearly if a listener cannot be bound (the socket is closed at
        // once: a listening socket the supervisor never accepts on would steal connections).
        for listener in &policy.listeners {
            if let Err(e) = bind_control_listener(listener.address) {
                log::error!("cannot listen on {}: {e}", listener.address);
                return ExitCode::from(1);
            }
        }
    }
    let (sender, mut receiver) = match mio::unix::pipe::new() {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot create the signal pipe: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = os::install_signal_handlers(&sender) {
        log::error!("cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    let systemd = Notifier::from_env();
    // The workers' notifications: one socket pair, the workers share the far end.
    let (mut from_workers, to_supervisor) = match UnixDatagram::pair().and_then(|(a, b)| {
        os::set_inheritable(b.as_fd())?;
        a.set_nonblocking(true)?;
        Ok((mio::net::UnixDatagram::from_std(a), b))
    }) {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot create the workers' notification socket: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut poll, mut events) = match mio::Poll::new().and_then(|poll| {
        let registry = poll.registry();
        registry.register(&mut receiver, SIGNAL_TOKEN, mio::Interest::READABLE)?;
        registry.register(&mut from_workers, NOTIFY_TOKEN, mio::Interest::READABLE)?;
        Ok((poll, mio::Events::with_capacity(16)))
    }) {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot set up the supervisor's loop: {e}");
            return ExitCode::from(1);
        }
    };
    // The session counters all workers share (see `counters`): one memfd, inherited.
    // Its header holds the secret key of the tables' hash, drawn from the kernel now: every
    // worker of this start (restarted ones too) uses it, nobody outside knows it.
    let shm = match crate::counters::create_region_fd(count) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot create the shared session counters: {e}");
            return ExitCode::from(1);
        }
    };
    let shm_fd = std::os::fd::AsRawFd::as_raw_fd(&shm);
    // The supervisor's own view of the table: what a worker that dies carried.
    let table = os::SharedRegion::from_fd(shm_fd, crate::counters::region_words(count))
        .map_err(|e| log::warn!("cannot map the shared session counters: {e}"))
        .ok();
    let spawning = Spawn {
        config,
        count,
        shm_fd,
        notify_fd: std::os::fd::AsRawFd::as_raw_fd(&to_supervisor),
        extra,
        listen_args: &listen_args,
    };
    let mut readiness = Readiness::new(count);
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        match spawn(&spawning, index) {
            Ok(w) => workers.push(w),
            Err(e) => {
                log::error!("cannot start worker {index}: {e}");
                stop_all(&mut workers, Duration::from_secs(DRAIN_STOP_MARGIN_SECONDS));
                return ExitCode::from(1);
            }
        }
    }
    log::info!("supervising {count} workers");
    let mut buf = [0u8; 64];
    let mut datagram = [0u8; crate::limits::MAX_NOTIFY_DATAGRAM];
    let listening: Vec<String> = policy
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    let serving = format!("{count} workers serving on {}", listening.join(", "));
    // The policy in force and its drain (a reload may change them).
    let mut current = policy.clone();
    let mut drain = Duration::from_secs(policy.drain_timeout);
    loop {
        if os::STOP_REQUESTED.load(Ordering::SeqCst) {
            systemd.stopping();
            stop_all(
                &mut workers,
                drain + Duration::from_secs(DRAIN_STOP_MARGIN_SECONDS),
            );
            return ExitCode::SUCCESS;
        }
        // What the workers said: READY=1 after their start or their reload.
        while let Ok(n) = from_workers.recv(&mut datagram) {
            let Some(message) = datagram.get(..n).and_then(notify::parse_worker_message) else {
                continue;
            };
            if message.ready && readiness.done(message.index) {
                let detail = message.status.as_deref().and_then(|s| s.split_once("; "));
                match detail {
                    Some((_, after)) => systemd.ready(&format!("{serving}; {after}")),
                    None => systemd.ready(&serving),
                }
            }
        }
        if os::RELOAD_REQUESTED.swap(false, Ordering::SeqCst) {
            systemd.reloading();
            readiness.reloading();
            match crate::policy::load_policy(config) {
                Ok(new) => {
                    let restart = crate::policy::reload::restart_needed(&current, &new);
                    if restart.is_empty() {
                        log::info!("reloading workers");
                        drain = Duration::from_secs(new.drain_timeout);
                        current = new;
                    } else {
                        // The workers refuse it too (and say so); the old policy stays.
                        log::error!(
                            "policy reload refused: {} needs a restart (systemctl restart ftpgate)",
                            restart.join(", ")
                        );
                    }
                }
                Err(errors) => {
                    for e in errors {
                        log::error!("policy reload refused: {}:{e}", config.display());
                    }
                }
            }
            for w in &workers {
                let _ = os::send_signal(w.child.id(), os::SIGHUP);
            }
        }
        if os::REOPEN_REQUESTED.swap(false, Ordering::SeqCst) {
            for w in &workers {
                let _ = os::send_signal(w.child.id(), os::SIGUSR2);
            }
        }
        if os::STATS_REQUESTED.swap(false, Ordering::SeqCst) {
            for w in &workers {
                let _ = os::send_signal(w.child.id(), os::SIGUSR1);
            }
        }
        os::CHILD_EXITED.store(false, Ordering::SeqCst);
        for w in &mut workers {
            let Ok(Some(status)) = w.child.try_wait() else {
                continue;
            };
            // A worker that exits with an error code right after its start cannot start
            // (a listener it cannot bind, an audit file it cannot open): restarting it would
            // only loop. Death by a signal is a crash: restart.
            if w.started.elapsed() < STARTUP_GRACE && status.code().is_some_and(|c| c != 0) {
                log::error!("worker {} failed at start ({status}); stopping", w.index);
                stop_all(&mut workers, drain);
                return ExitCode::from(1);
            }
            log::error!("worker {} exited ({status}); restarting it", w.index);
            if let Some(table) = &table {
                audit_worker_lost(&current, table, w.index, &status);
            }
            // It cannot answer a reload in progress any more; its successor starts on the
            // current file anyway.
            if readiness.done(w.index) {
                systemd.ready(&serving);
            }
            match spawn(&spawning, w.index) {
                Ok(new) => *w = new,
                Err(e) => log::error!("cannot restart worker {}: {e}", w.index),
            }
        }
        // Blocks until a signal handler writes to the pipe (SIGCHLD, SIGTERM, SIGHUP) or a
        // worker notifies.
        if os::STOP_REQUESTED.load(Ordering::SeqCst)
            || os::RELOAD_REQUESTED.load(Ordering::SeqCst)
            || os::REOPEN_REQUESTED.load(Ordering::SeqCst)
            || os::CHILD_EXITED.load(Ordering::SeqCst)
        {
            continue;
        }
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("supervisor poll failed: {e}");
            }
        }
        while receiver.read(&mut buf).is_ok_and(|n| n > 0) {}
    }
}

fn spawn(how: &Spawn<'_>, index: usize) -> std::io::Result<WorkerProcess> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg("--config")
        .arg(how.config)
        .arg("--worker")
        .arg(format!("{index}/{}", how.count))
        .arg("--shm-fd")
        .arg(how.shm_fd.to_string())
        .arg("--notify-fd")
        .arg(how.notify_fd.to_string())
        .args(how.extra)
        .args(how.listen_args.get(index).map_or(&[][..], Vec::as_slice))
        // The supervisor is the one that notifies systemd (NotifyAccess=main).
        .env_remove("NOTIFY_SOCKET")
        // Its own process group: Ctrl-C in a terminal reaches the supervisor only, which
        // passes the stop on (a second signal there means "at once").
        .process_group(0)
        .spawn()?;
    Ok(WorkerProcess {
        index,
        child,
        started: Instant::now(),
    })
}

/// Tells every worker to stop (they drain) and waits for them up to `wait`, then kills
/// what is left. A second SIGTERM to the supervisor meanwhile is passed on: the workers
/// stop at once.
fn stop_all(workers: &mut [WorkerProcess], wait: Duration) {
    for w in workers.iter() {
        let _ = os::send_signal(w.child.id(), os::SIGTERM);
    }
    let deadline = Instant::now() + wait;
    let mut passed_on = os::STOP_SIGNALS.load(Ordering::SeqCst);
    let mut live = vec![true; workers.len()];
    loop {
        let signals = os::STOP_SIGNALS.load(Ordering::SeqCst);
        if signals > passed_on {
            passed_on = signals;
            for (w, _) in workers.iter().zip(&live).filter(|(_, l)| **l) {
                let _ = os::send_signal(w.child.id(), os::SIGTERM);
            }
        }
        for (w, l) in workers.iter_mut().zip(live.iter_mut()) {
            if *l && !matches!(w.child.try_wait(), Ok(None)) {
                *l = false;
            }
        }
        if !live.contains(&true) {
            return;
        }
        if Instant::now() >= deadline {
            for (w, _) in workers.iter_mut().zip(&live).filter(|(_, l)| **l) {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
            return;
        }
        // Bounded by `wait`; the supervisor has nothing else to do while its workers drain.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A worker died: the `worker_lost` audit event with what it carried (from the shared table,
/// before its successor clears its block), so that no session or transfer disappears
/// without a trace. Written by the supervisor through a sink of its own (with
/// `audit.integrity`, a chain of its own, checkpointed when the sink closes).
fn audit_worker_lost(
    policy: &Policy,
    table: &os::SharedRegion,
    index: usize,
    status: &std::process::ExitStatus,
) {
    #[derive(serde::Serialize)]
    struct WorkerLost {
        ts: String,
        worker: u32,
        event: &'static str,
        status: String,
        sessions: u64,
        transfers: u64,
    }
    let (sessions, transfers) = crate::counters::worker_load(table, index);
    let event = WorkerLost {
        ts: crate::audit::rfc3339_utc(std::time::SystemTime::now()),
        worker: index as u32,
        event: "worker_lost",
        status: status.to_string(),
        sessions,
        transfers,
    };
    match crate::audit::AuditSink::open(&policy.audit, index as u32) {
        Ok(mut sink) => sink.emit_worker_event(
            "worker_lost",
            crate::audit::syslog_severity::WARNING,
            &event,
        ),
        Err(e) => log::error!(
            "worker {index} lost with {sessions} sessions and {transfers} transfers; cannot \
             record it: {e}"
        ),
    }
}
