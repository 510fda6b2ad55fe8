//! The supervisor: one worker process per core, restarted if it dies, told to reload or
//! stop when the supervisor is.
//!
//! Workers are this same binary re-executed with `--worker INDEX/COUNT`; each binds the
//! control listeners itself with SO_REUSEPORT and serves its own slice of the passive port
//! range. The supervisor holds no client socket and does no FTP.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::os;
use crate::policy::Policy;
use crate::services::sockets::bind_control_listener;

/// A worker that dies sooner than this after its start is failing to start, not crashing.
const STARTUP_GRACE: Duration = Duration::from_secs(2);
/// How long stopping workers may take before they are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(40);

struct WorkerProcess {
    index: usize,
    child: Child,
    started: Instant,
}

/// Runs `count` workers until SIGTERM/SIGINT. Returns the process exit code.
pub fn run(config: &Path, policy: &Policy, count: usize) -> ExitCode {
    // Fail early and clearly if a listener cannot be bound (the socket is closed at once:
    // a listening socket the supervisor never accepts on would steal connections).
    for listener in &policy.listeners {
        if let Err(e) = bind_control_listener(listener.address) {
            log::error!("cannot listen on {}: {e}", listener.address);
            return ExitCode::from(1);
        }
    }
    let (sender, mut receiver) = match mio::unix::pipe::new() {
        Ok(pair) => pair,
        Err(e) => {
            log::error!("cannot create the signal pipe: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = receiver
        .set_nonblocking(false)
        .and_then(|()| os::install_signal_handlers(&sender))
    {
        log::error!("cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
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
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        match spawn(config, index, count, shm_fd) {
            Ok(w) => workers.push(w),
            Err(e) => {
                log::error!("cannot start worker {index}: {e}");
                stop_all(&mut workers);
                return ExitCode::from(1);
            }
        }
    }
    log::info!("supervising {count} workers");
    let mut buf = [0u8; 64];
    loop {
        if os::STOP_REQUESTED.load(Ordering::SeqCst) {
            stop_all(&mut workers);
            return ExitCode::SUCCESS;
        }
        if os::RELOAD_REQUESTED.swap(false, Ordering::SeqCst) {
            match crate::policy::load_policy(config) {
                Ok(_) => log::info!("reloading workers"),
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
                stop_all(&mut workers);
                return ExitCode::from(1);
            }
            log::error!("worker {} exited ({status}); restarting it", w.index);
            match spawn(config, w.index, count, shm_fd) {
                Ok(new) => *w = new,
                Err(e) => log::error!("cannot restart worker {}: {e}", w.index),
            }
        }
        // Blocks until a signal handler writes to the pipe (SIGCHLD, SIGTERM, SIGHUP).
        if os::STOP_REQUESTED.load(Ordering::SeqCst)
            || os::RELOAD_REQUESTED.load(Ordering::SeqCst)
            || os::CHILD_EXITED.load(Ordering::SeqCst)
        {
            continue;
        }
        let _ = receiver.read(&mut buf);
    }
}

fn spawn(config: &Path, index: usize, count: usize, shm_fd: i32) -> std::io::Result<WorkerProcess> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("--worker")
        .arg(format!("{index}/{count}"))
        .arg("--shm-fd")
        .arg(shm_fd.to_string())
        .spawn()?;
    Ok(WorkerProcess {
        index,
        child,
        started: Instant::now(),
    })
}

fn stop_all(workers: &mut [WorkerProcess]) {
    for w in workers.iter() {
        let _ = os::send_signal(w.child.id(), os::SIGTERM);
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    for w in workers.iter_mut() {
        loop {
            match w.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = w.child.kill();
                    let _ = w.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
