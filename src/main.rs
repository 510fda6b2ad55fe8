//! The `ftpgate` command: argument parsing, `--check`, and the choice between running one
//! worker in this process or supervising one worker process per core.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use ftpgate::counters::SharedCounters;
use ftpgate::logging::LogFormat;
use ftpgate::notify::Notifier;
use ftpgate::policy::{Policy, Workers, load_policy};
use ftpgate::reactor::{Worker, WorkerConfig};
use ftpgate::supervisor;

const DEFAULT_CONFIG: &str = "/etc/ftpgate/ftpgate.json";

const USAGE: &str = "\
Usage: ftpgate [--config FILE]          run the gateway in the foreground
       ftpgate --check [--strict] [--config FILE]
                                        validate the policy file and print a summary
       ftpgate sessions [--json] [--watch]  list live sessions (admin socket)
       ftpgate kill SESSION-ID | --user USER
       ftpgate drain | resume               refuse / take new sessions again
       ftpgate explain [--config FILE] --user NAME --from IP [--at TIME] [--cwd DIR] [--json] \"COMMAND\"
                                        what the policy decides for COMMAND, rule by rule
       ftpgate verify-audit [--key FILE]... FILE...
                                        check the audit files' hash chains (oldest first)
       ftpgate --help | --version

Options:
  -c, --config FILE   policy file (default: /etc/ftpgate/ftpgate.json); also --config=FILE
      --check         validate the policy: errors as LINE:COLUMN: message, exit 1;
                      warnings as LINE:COLUMN: warning: message, exit 3 if only those
      --strict        with --check: warnings are fatal too (exit 1)
      --admin DIR     the workers' admin sockets (default /run/ftpgate, used when the
                      directory exists); `ftpgate sessions` and `kill` take it too
      --log-format F  diagnostics on stderr: auto (the default: journal under systemd,
                      else text), journal (<PRIORITY>message) or text (timestamped)
  -h, --help          this text
  -V, --version       the version, the build's features and its TLS provider

Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads the policy and reopens the audit
file, SIGUSR2 only reopens the audit file (log rotation), SIGUSR1 logs resource counts.
Under systemd (Type=notify) readiness and reloads are reported to $NOTIFY_SOCKET.
Diagnostics go to stderr; RUST_LOG=debug shows every relayed command. See ftpgate(8).";

/// What this build can do, for `--version` (and bug reports). There are no cargo
/// features: every build has all of these.
const FEATURES: &[&str] = &[
    "ftps-client-side",
    "ftps-backend-side",
    "audit-file",
    "audit-syslog(rfc3164,rfc5424)",
    "filecopy",
    "prefix-table(tsv,mmdb)",
    "time-zones(system tzdata)",
    "sd-notify",
    "journald-priorities",
];

/// The `--version` text.
fn version_text() -> String {
    let provider = rustls::crypto::ring::default_provider();
    let versions: Vec<String> = rustls::DEFAULT_VERSIONS
        .iter()
        .map(|v| format!("{:?}", v.version).replace("TLSv1_", "TLS 1."))
        .collect();
    format!(
        "ftpgate {}\nfeatures: {}\ntls: rustls with the ring crypto provider ({}; {} cipher suites)\n",
        env!("CARGO_PKG_VERSION"),
        FEATURES.join(" "),
        versions.join(", "),
        provider.cipher_suites.len(),
    )
}

struct Args {
    config: PathBuf,
    check: bool,
    /// With `--check`: warnings are fatal (exit 1).
    strict: bool,
    /// Internal: run as worker `index` of `count` under the supervisor.
    worker: Option<(usize, usize)>,
    /// Internal: the supervisor's shared-counter memfd, inherited.
    shm_fd: Option<i32>,
    /// Internal: the worker's end of the supervisor's notification socket, inherited.
    notify_fd: Option<i32>,
    /// Internal: listeners the supervisor bound before giving up root, inherited.
    listen_fds: Vec<(std::net::SocketAddr, i32)>,
    log_format: LogFormat,
    /// `--log-format` was given: the workers get it too.
    log_format_given: bool,
    /// `--admin DIR`: where the admin sockets go (the workers get it too).
    admin: Option<PathBuf>,
}

enum Parsed {
    Run(Args),
    Exit(ExitCode),
}

fn parse_args() -> Parsed {
    let mut args = Args {
        config: PathBuf::from(DEFAULT_CONFIG),
        check: false,
        strict: false,
        worker: None,
        shm_fd: None,
        notify_fd: None,
        listen_fds: Vec::new(),
        log_format: LogFormat::Auto,
        log_format_given: false,
        admin: None,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        // `--option=VALUE` is `--option VALUE` (getopt_long's two spellings).
        if let Some((option, value)) = arg.to_str().and_then(|a| a.split_once('=')) {
            if option.starts_with("--") {
                match option {
                    "--config" if !value.is_empty() => args.config = PathBuf::from(value),
                    "--config" => return usage_error("--config needs a file name"),
                    "--admin" if !value.is_empty() => args.admin = Some(PathBuf::from(value)),
                    "--admin" => return usage_error("--admin needs a directory"),
                    "--log-format" => match LogFormat::parse(value) {
                        Some(format) => {
                            args.log_format = format;
                            args.log_format_given = true;
                        }
                        None => return usage_error("--log-format is auto, journal or text"),
                    },
                    _ => return usage_error(&format!("unknown argument {option}")),
                }
                continue;
            }
        }
        match arg.to_str() {
            Some("-h" | "--help") => {
                say(format_args!("{USAGE}\n"));
                return Parsed::Exit(ExitCode::SUCCESS);
            }
            Some("-V" | "--version") => {
                say(format_args!("{}", version_text()));
                return Parsed::Exit(ExitCode::SUCCESS);
            }
            Some("--check") => args.check = true,
            Some("--strict") => args.strict = true,
            Some("--admin") => match it.next() {
                Some(dir) => args.admin = Some(PathBuf::from(dir)),
                None => return usage_error("--admin needs a directory"),
            },
            Some("-c" | "--config") => match it.next() {
                Some(path) => args.config = PathBuf::from(path),
                None => return usage_error("--config needs a file name"),
            },
            Some("--log-format") => match it.next().and_then(|v| v.into_string().ok()).as_deref() {
                Some(value) => match LogFormat::parse(value) {
                    Some(format) => {
                        args.log_format = format;
                        args.log_format_given = true;
                    }
                    None => return usage_error("--log-format is auto, journal or text"),
                },
                None => return usage_error("--log-format needs auto, journal or text"),
            },
            Some("--notify-fd") => match it.next().and_then(|v| v.into_string().ok()) {
                Some(fd) => match fd.parse() {
                    Ok(fd) => args.notify_fd = Some(fd),
                    Err(_) => return usage_error("--notify-fd needs a descriptor number"),
                },
                None => return usage_error("--notify-fd needs a descriptor number"),
            },
            Some("--listen-fd") => match it
                .next()
                .and_then(|v| v.into_string().ok())
                .as_deref()
                .and_then(ftpgate::privileges::parse_listen_fd)
            {
                Some(pair) => args.listen_fds.push(pair),
                None => return usage_error("--listen-fd needs ADDRESS=DESCRIPTOR"),
            },
            Some("--shm-fd") => match it.next().and_then(|v| v.into_string().ok()) {
                Some(fd) => match fd.parse() {
                    Ok(fd) => args.shm_fd = Some(fd),
                    Err(_) => return usage_error("--shm-fd needs a descriptor number"),
                },
                None => return usage_error("--shm-fd needs a descriptor number"),
            },
            Some("--worker") => {
                let parsed = it.next().and_then(|v| v.into_string().ok()).and_then(|v| {
                    let (i, n) = v.split_once('/')?;
                    Some((i.parse().ok()?, n.parse().ok()?))
                });
                match parsed {
                    Some((i, n)) if i < n => args.worker = Some((i, n)),
                    _ => return usage_error("--worker needs INDEX/COUNT"),
                }
            }
            _ => {
                return usage_error(&format!("unknown argument {}", arg.to_string_lossy()));
            }
        }
    }
    Parsed::Run(args)
}

/// Writes to stdout; a closed pipe (`ftpgate --check | head`) is not an error worth a panic.
fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(text);
}

fn usage_error(message: &str) -> Parsed {
    eprintln!("ftpgate: {message}\n\n{USAGE}");
    Parsed::Exit(ExitCode::from(2))
}

fn load(path: &std::path::Path) -> Result<Policy, ExitCode> {
    load_policy(path).map_err(|errors| {
        for error in errors {
            eprintln!("{}:{error}", path.display());
        }
        ExitCode::from(1)
    })
}

/// `--check` also loads the certificates and keys the policy names (toward clients and
/// toward TLS backends) and checks that they match; errors are reported at the position of
/// `tls.certificate` (`tls.certificates[N].certificate`) or of the backend's `tls`.
fn check_tls(path: &std::path::Path, policy: &Policy) -> Option<ExitCode> {
    use ftpgate::policy::locate::{JsonPath, Target, locate};
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut failed = false;
    if let Some(tls) = policy.tls.as_ref() {
        for (i, identity) in tls.identities.iter().enumerate() {
            let loaded = ftpgate::tls::load_identity(&identity.certificate, &identity.private_key);
            if let Err(error) = loaded {
                let at = tls.identity_path(i);
                let (line, column) = locate(&text, at.key("certificate").segments(), Target::Value);
                eprintln!("{}:{line}:{column}: {at}: {error}", path.display());
                failed = true;
            }
        }
    }
    for backend in policy.backends.values() {
        if backend.tls == ftpgate::policy::TlsMode::None {
            continue;
        }
        if let Err(error) = ftpgate::tls::TlsClient::load(&backend.tls_settings) {
            let at = JsonPath::root()
                .key("backends")
                .key(&backend.name)
                .key("tls");
            let (line, column) = locate(&text, at.segments(), Target::Value);
            eprintln!(
                "{}:{line}:{column}: backends.{}: tls: {error}",
                path.display(),
                backend.name
            );
            failed = true;
        }
    }
    failed.then(|| ExitCode::from(1))
}

/// Exit status of `--check` for a valid policy with warnings (and no `--strict`): apart
/// from 1 (errors) and 2 (usage), so that scripts can tell the three apart.
const EXIT_WARNINGS: u8 = 3;

/// `--check` of a valid policy: its warnings on stderr (`policy::lint`), then the summary.
/// Exit 0 without warnings, [`EXIT_WARNINGS`] with some, 1 with some under `--strict`.
fn check_warnings(path: &std::path::Path, policy: &Policy, strict: bool) -> ExitCode {
    use ftpgate::policy::lint::{SystemHost, lint};
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let warnings = lint(policy, &text, &SystemHost);
    for warning in &warnings {
        eprintln!("{}:{warning}", path.display());
    }
    let count = match warnings.len() {
        0 => String::new(),
        1 => " (1 warning)".to_owned(),
        n => format!(" ({n} warnings)"),
    };
    if strict && !warnings.is_empty() {
        eprintln!("{}: refused{count}: --strict", path.display());
        return ExitCode::from(1);
    }
    say(format_args!(
        "{}: OK{count}\n{}\n{}\n{}\n",
        path.display(),
        policy.unenforced_note(),
        policy.summary(),
        ftpgate::policy::reload::reload_note()
    ));
    if warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_WARNINGS)
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = ftpgate::admin::cli::dispatch(&argv) {
        return code;
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "explain") {
        return ftpgate::policy::explain::run(
            std::env::args_os().skip(2).collect(),
            DEFAULT_CONFIG,
        );
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "verify-audit")
    {
        return ftpgate::audit::verify::run(std::env::args_os().skip(2));
    }
    let args = match parse_args() {
        Parsed::Run(args) => args,
        Parsed::Exit(code) => return code,
    };
    if args.check {
        return match load(&args.config) {
            Ok(policy) => {
                if let Some(code) = check_tls(&args.config, &policy) {
                    return code;
                }
                check_warnings(&args.config, &policy, args.strict)
            }
            Err(code) => code,
        };
    }
    ftpgate::logging::init(args.log_format);
    let policy = match load(&args.config) {
        Ok(policy) => policy,
        Err(code) => return code,
    };
    match ftpgate::os::raise_nofile_limit() {
        Ok(limit) => log::debug!("open file limit {limit}"),
        Err(e) => log::warn!("cannot raise the open file limit: {e}"),
    }
    let count = match policy.workers {
        Workers::Auto => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (first, last) = policy.passive.ports;
            let ports = usize::from(last.saturating_sub(first)) + 1;
            if policy.passive.shared && cores > ports {
                // Each worker owns its shared ports (a listener cannot be split between
                // processes without handing the client's connection to the wrong one).
                log::info!("workers: auto: {ports} worker(s), one per shared passive port");
                ports
            } else {
                cores
            }
        }
        Workers::Count(n) => n.max(1),
    };
    // Started as root: the account to run_as once the listeners are bound.
    let run_as = match args.worker {
        Some(_) => None,
        None => match ftpgate::privileges::target(&policy) {
            Ok(target) => target,
            Err(e) => {
                log::error!("{e}");
                return ExitCode::from(1);
            }
        },
    };
    if let Some(ids) = run_as {
        // The workers bind their admin sockets after giving up root: the directory is
        // the service user's.
        let dir = args
            .admin
            .clone()
            .unwrap_or_else(|| PathBuf::from(ftpgate::admin::DEFAULT_ADMIN_DIR));
        if let Err(e) = ftpgate::admin::prepare_dir(&dir, args.admin.is_some(), ids) {
            log::warn!("admin socket directory {}: {e}", dir.display());
        }
    }
    let mut inherited = match ftpgate::privileges::adopt(&args.listen_fds) {
        Ok(listeners) => listeners,
        Err(e) => {
            log::error!("cannot use the supervisor's listeners: {e}");
            return ExitCode::from(1);
        }
    };
    let (index, count) = match args.worker {
        Some(worker) => {
            if let Err(e) = ftpgate::os::die_with_parent() {
                log::warn!("cannot tie the worker to its supervisor: {e}");
            }
            worker
        }
        None if count > 1 => {
            let mut extra = Vec::new();
            if let Some(dir) = &args.admin {
                extra.push(OsString::from("--admin"));
                extra.push(dir.clone().into_os_string());
            }
            if args.log_format_given {
                extra.push(OsString::from("--log-format"));
                extra.push(OsString::from(args.log_format.name()));
            }
            return supervisor::run(&args.config, &policy, count, &extra, run_as);
        }
        None => {
            if let Some(ids) = run_as {
                let bound = ftpgate::privileges::bind_listeners(&policy).and_then(|bound| {
                    ftpgate::privileges::drop_to(&policy.user, ids)?;
                    Ok(bound)
                });
                match bound {
                    Ok(bound) => {
                        inherited = bound
                            .into_iter()
                            .map(|(a, l)| (a, mio::net::TcpListener::from_std(l)))
                            .collect();
                    }
                    Err(e) => {
                        log::error!("{e}");
                        return ExitCode::from(1);
                    }
                }
            }
            (0, 1)
        }
    };
    let counters = match args.shm_fd {
        Some(fd) => {
            let words = ftpgate::counters::region_words(count);
            let region = ftpgate::os::SharedRegion::from_fd(fd, words);
            // The mapping stays valid after the descriptor is closed.
            ftpgate::os::close_fd(fd);
            match region
                .ok()
                .and_then(|r| SharedCounters::new(r, index, count))
            {
                Some(counters) => counters,
                None => {
                    log::error!("cannot map the shared session counters");
                    return ExitCode::from(1);
                }
            }
        }
        None => match SharedCounters::private() {
            Ok(counters) => counters,
            Err(e) => {
                log::error!("cannot set up the session counters: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let notify = match args.notify_fd {
        Some(fd) => match ftpgate::os::inherited_datagram(fd) {
            Ok(socket) => Notifier::to_supervisor(socket, index),
            Err(e) => {
                log::warn!("cannot use the supervisor's notification socket: {e}");
                Notifier::none()
            }
        },
        // A worker of its own: the main process, which tells systemd itself.
        None if args.worker.is_none() => Notifier::from_env(),
        None => Notifier::none(),
    };
    let metrics_listen = policy.metrics_listen;
    let config = WorkerConfig {
        index,
        count,
        policy: Rc::new(policy),
        policy_path: Some(args.config.clone()),
        counters,
        notify,
        inherited,
        metrics_listen,
        admin: Some(ftpgate::reactor::AdminConfig {
            explicit: args.admin.is_some(),
            dir: args
                .admin
                .clone()
                .unwrap_or_else(|| PathBuf::from(ftpgate::admin::DEFAULT_ADMIN_DIR)),
        }),
    };
    let mut worker = match Worker::new(config) {
        Ok(worker) => worker,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}
