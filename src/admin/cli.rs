//! `ftpgate sessions`, `ftpgate kill`, `ftpgate drain` and `ftpgate resume`: the command
//! line's side of the admin socket. Asks every worker's socket in the admin directory (each
//! with [`ADMIN_TIMEOUT_MS`] to answer) and merges the replies.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::{DEFAULT_ADMIN_DIR, Reply, Request, SessionInfo, table};
use crate::limits::{ADMIN_TIMEOUT_MS, MAX_ADMIN_REPLY_BYTES};

const USAGE: &str = "\
Usage: ftpgate sessions [--admin DIR] [--json] [--watch [SECONDS]]
       ftpgate kill [--admin DIR] SESSION-ID | --user USER
       ftpgate drain [--admin DIR]      new connections get 421, sessions go on
       ftpgate resume [--admin DIR]     take new sessions again
       ftpgate metrics [--admin DIR]    every worker's metrics, added up, in the
                                        Prometheus text format

  --admin DIR   the directory of the workers' admin sockets (default /run/ftpgate)
  --json        one JSON object per session and line, for scripts
  --watch [S]   redraw the table every S seconds (default 2) until interrupted";

/// Most seconds between two `--watch` redraws.
const MAX_WATCH_SECONDS: u64 = 3600;

/// Runs the admin subcommand `args[0]` names, or returns None when it names none.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    let command = args.first()?.to_str()?;
    if !matches!(
        command,
        "sessions" | "kill" | "drain" | "resume" | "metrics"
    ) {
        return None;
    }
    let rest: Vec<String> = match args[1..]
        .iter()
        .map(|a| a.clone().into_string())
        .collect::<Result<_, _>>()
    {
        Ok(rest) => rest,
        Err(_) => return Some(usage("arguments must be UTF-8")),
    };
    Some(match parse(command, &rest) {
        Ok(job) => job.run(),
        Err(message) => usage(&message),
    })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("ftpgate: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

struct Job {
    dir: PathBuf,
    request: Request,
    json: bool,
    watch: Option<u64>,
}

fn parse(command: &str, args: &[String]) -> Result<Job, String> {
    let mut dir = PathBuf::from(DEFAULT_ADMIN_DIR);
    let mut json = false;
    let mut watch = None;
    let mut user = None;
    let mut id = None;
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--admin" => dir = PathBuf::from(it.next().ok_or("--admin needs a directory")?),
            a if a.starts_with("--admin=") => dir = PathBuf::from(&a["--admin=".len()..]),
            "--json" if command == "sessions" => json = true,
            "--watch" if command == "sessions" => {
                let seconds = match it.peek().and_then(|s| s.parse::<u64>().ok()) {
                    Some(s) => {
                        it.next();
                        s
                    }
                    None => 2,
                };
                if seconds == 0 || seconds > MAX_WATCH_SECONDS {
                    return Err(format!("--watch takes 1 to {MAX_WATCH_SECONDS} seconds"));
                }
                watch = Some(seconds);
            }
            "--user" if command == "kill" => {
                user = Some(it.next().ok_or("--user needs a user name")?.clone());
            }
            a if command == "kill" && !a.starts_with('-') && id.is_none() => {
                id = Some(a.to_owned());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let request = match command {
        "sessions" => Request::Sessions,
        "drain" => Request::Drain,
        "resume" => Request::Resume,
        "metrics" => Request::Metrics,
        _ => match (id, user) {
            (Some(id), None) => Request::Kill(id),
            (None, Some(user)) => Request::KillUser(user),
            _ => return Err("kill needs a session id or --user USER (one of them)".into()),
        },
    };
    Ok(Job {
        dir,
        request,
        json,
        watch,
    })
}

/// The admin sockets in `dir`, by worker index.
fn sockets(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<(usize, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix("worker-"))
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        found.push((index, entry.path()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Sends `request` to one worker and reads its reply.
pub fn ask(socket: &Path, request: &Request) -> Result<Reply, String> {
    let timeout = Some(Duration::from_millis(ADMIN_TIMEOUT_MS));
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let mut line = request.line().into_bytes();
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_ADMIN_REPLY_BYTES as u64 + 1)
        .read_to_end(&mut reply)
        .map_err(|e| e.to_string())?;
    let reply: Reply = serde_json::from_slice(&reply).map_err(|e| format!("bad reply: {e}"))?;
    match reply.error {
        Some(error) => Err(error),
        None => Ok(reply),
    }
}

/// Every worker's reply; the workers that did not answer are reported on stderr.
fn ask_all(dir: &Path, request: &Request) -> Result<Vec<Reply>, ExitCode> {
    let sockets = sockets(dir).map_err(|e| {
        eprintln!("ftpgate: cannot read {}: {e}", dir.display());
        ExitCode::from(1)
    })?;
    if sockets.is_empty() {
        eprintln!(
            "ftpgate: no admin socket in {} (is ftpgate running? see --admin)",
            dir.display()
        );
        return Err(ExitCode::from(1));
    }
    let mut replies = Vec::new();
    for socket in &sockets {
        match ask(socket, request) {
            Ok(reply) => replies.push(reply),
            Err(e) => eprintln!("ftpgate: {}: {e}", socket.display()),
        }
    }
    if replies.is_empty() {
        return Err(ExitCode::from(1));
    }
    Ok(replies)
}

impl Job {
    fn run(&self) -> ExitCode {
        match (&self.request, self.watch) {
            (Request::Sessions, Some(seconds)) => loop {
                match ask_all(&self.dir, &self.request) {
                    Ok(replies) => {
                        // Clear the screen and home the cursor, then the table.
                        print!("\x1b[2J\x1b[H{}", self.listing(&replies));
                        let _ = std::io::stdout().flush();
                    }
                    Err(code) => return code,
                }
                std::thread::sleep(Duration::from_secs(seconds));
            },
            (Request::Sessions, None) => match ask_all(&self.dir, &self.request) {
                Ok(replies) => {
                    print!("{}", self.listing(&replies));
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            },
            (Request::Kill(_) | Request::KillUser(_), _) => {
                match ask_all(&self.dir, &self.request) {
                    Ok(replies) => {
                        let killed: usize = replies.iter().filter_map(|r| r.killed).sum();
                        println!(
                            "killed {killed} session{}",
                            if killed == 1 { "" } else { "s" }
                        );
                        if killed == 0 {
                            ExitCode::from(1)
                        } else {
                            ExitCode::SUCCESS
                        }
                    }
                    Err(code) => code,
                }
            }
            (Request::Metrics, _) => match ask_all(&self.dir, &self.request) {
                Ok(replies) => {
                    let workers: Vec<Vec<crate::metrics::Sample>> =
                        replies.into_iter().filter_map(|r| r.metrics).collect();
                    print!(
                        "{}",
                        crate::metrics::render(&crate::metrics::merge(&workers))
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            },
            (Request::Drain | Request::Resume, _) => match ask_all(&self.dir, &self.request) {
                Ok(replies) => {
                    let state = if matches!(self.request, Request::Drain) {
                        "draining: new connections get 421"
                    } else {
                        "taking new sessions"
                    };
                    println!("{} worker(s) {state}", replies.len());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            },
        }
    }

    fn listing(&self, replies: &[Reply]) -> String {
        let sessions: Vec<SessionInfo> = replies
            .iter()
            .flat_map(|r| r.sessions.iter().flatten().cloned())
            .collect();
        if self.json {
            let mut out = String::new();
            for s in &sessions {
                out.push_str(&serde_json::to_string(s).unwrap_or_default());
                out.push('\n');
            }
            return out;
        }
        let mut out = table(&sessions);
        let draining = replies.iter().filter(|r| r.draining).count();
        if draining > 0 {
            out.push_str(&format!("({draining} worker(s) draining)\n"));
        }
        if replies.iter().any(|r| r.truncated) {
            out.push_str("(listing cut: too many sessions for one reply)\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_lines_parse() {
        let job = parse("sessions", &args(&["--admin", "/tmp/x", "--json"])).expect("ok");
        assert_eq!(job.dir, PathBuf::from("/tmp/x"));
        assert!(job.json);
        assert_eq!(job.request, Request::Sessions);
        let job = parse("sessions", &args(&["--watch", "5"])).expect("ok");
        assert_eq!(job.watch, Some(5));
        assert_eq!(job.dir, PathBuf::from(DEFAULT_ADMIN_DIR));
        let job = parse("sessions", &args(&["--watch"])).expect("ok");
        assert_eq!(job.watch, Some(2));
        let job = parse("kill", &args(&["--admin=/a", "abc-1"])).expect("ok");
        assert_eq!(job.request, Request::Kill("abc-1".into()));
        let job = parse("kill", &args(&["--user", "edi"])).expect("ok");
        assert_eq!(job.request, Request::KillUser("edi".into()));
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        assert!(parse("kill", &[]).is_err());
        assert!(parse("kill", &args(&["a", "--user", "b"])).is_err());
        assert!(parse("sessions", &args(&["--watch", "0"])).is_err());
        assert!(parse("drain", &args(&["--json"])).is_err());
        assert!(parse("sessions", &args(&["--admin"])).is_err());
    }
}
