//! `ftpgate explain --config FILE --user U --from IP [--at TIME] [--cwd DIR] [--json]
//! "COMMAND"`: the command line of [`super::explain`]. Exit 0 when the command would be
//! allowed, 4 when it would be denied (also under a dry run, `would_deny`), 1 for a policy
//! that does not load, 2 for a usage error (as for the main command; 3 is `--check`'s
//! "warnings only").

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Decision, Query, explain};

/// Exit status of an explanation whose decision is `deny`.
pub const EXIT_DENIED: u8 = 4;
/// Exit status of a usage error, as for the main command.
const EXIT_USAGE: u8 = 2;

const USAGE: &str = "\
Usage: ftpgate explain [--config FILE] --user NAME --from IP [--at TIME] [--cwd DIR] [--json] \"COMMAND\"

What the policy decides for COMMAND (e.g. \"RETR /a/b\") sent by user NAME from address IP
at TIME (RFC 3339, e.g. 2026-12-02T09:30:00+01:00; default: now) in the working directory
DIR (for the user's path jail; default: /): the decision, each rule considered with its
FILE:LINE:COLUMN, the backend pool chosen and the limits that apply.
Exit 0 allowed, 4 denied, 1 the policy does not load, 2 usage error.";

struct Args {
    config: PathBuf,
    user: Option<String>,
    from: Option<IpAddr>,
    at: Option<i64>,
    cwd: Option<String>,
    json: bool,
    command: Option<String>,
}

fn usage_error(message: &str) -> Result<Args, ExitCode> {
    eprintln!("ftpgate explain: {message}\n{USAGE}");
    Err(ExitCode::from(EXIT_USAGE))
}

/// RFC 3339 (`2026-12-02T09:30:00Z`, `...+01:00`) as Unix seconds.
pub fn parse_at(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| format!("--at {text:?} is not an RFC 3339 time: {e}"))
}

fn parse(args: Vec<OsString>, default_config: &str) -> Result<Args, ExitCode> {
    let mut parsed = Args {
        config: PathBuf::from(default_config),
        user: None,
        from: None,
        at: None,
        cwd: None,
        json: false,
        command: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(arg) = arg.to_str().map(str::to_owned) else {
            return usage_error("arguments must be UTF-8");
        };
        let (option, inline) = match arg.split_once('=') {
            Some((option, value)) if option.starts_with("--") => {
                (option.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, ExitCode> {
            match inline.clone().or_else(|| it.next()?.into_string().ok()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => {
                    eprintln!("ftpgate explain: {name} needs a value\n{USAGE}");
                    Err(ExitCode::from(EXIT_USAGE))
                }
            }
        };
        match option.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            "-c" | "--config" => parsed.config = PathBuf::from(value("--config")?),
            "--user" => parsed.user = Some(value("--user")?),
            "--from" => {
                let text = value("--from")?;
                match text.parse() {
                    Ok(ip) => parsed.from = Some(ip),
                    Err(_) => return usage_error(&format!("--from {text:?} is not an IP address")),
                }
            }
            "--at" => match parse_at(&value("--at")?) {
                Ok(at) => parsed.at = Some(at),
                Err(message) => return usage_error(&message),
            },
            "--cwd" => {
                let dir = value("--cwd")?;
                if !dir.starts_with('/') {
                    return usage_error(&format!("--cwd {dir:?} is not an absolute path"));
                }
                parsed.cwd = Some(dir);
            }
            "--json" => parsed.json = true,
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return usage_error(&format!("unknown argument {arg}"));
            }
            _ if parsed.command.is_some() => {
                return usage_error("one COMMAND only (quote it: \"RETR /a/b\")");
            }
            _ => parsed.command = Some(arg),
        }
    }
    Ok(parsed)
}

/// `ftpgate explain ARGS...` (the arguments after `explain`).
pub fn run(args: Vec<OsString>, default_config: &str) -> ExitCode {
    let args = match parse(args, default_config) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (Some(user), Some(from), Some(command)) = (&args.user, args.from, &args.command) else {
        return match usage_error("--user, --from and COMMAND are required") {
            Err(code) => code,
            Ok(_) => ExitCode::from(EXIT_USAGE),
        };
    };
    let policy = match crate::policy::load_policy(&args.config) {
        Ok(policy) => policy,
        Err(errors) => {
            for error in errors {
                eprintln!("{}:{error}", args.config.display());
            }
            return ExitCode::from(1);
        }
    };
    let text = std::fs::read_to_string(&args.config).unwrap_or_default();
    let at = args
        .at
        .unwrap_or_else(|| jiff::Timestamp::now().as_second());
    let query = Query {
        user,
        from,
        at,
        cwd: args.cwd.as_deref().unwrap_or("/"),
        command,
    };
    let trace = explain(&policy, &text, &query);
    let output = if args.json {
        match serde_json::to_string_pretty(&trace) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("ftpgate explain: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        trace.render(&args.config.display().to_string())
    };
    // A closed pipe (`ftpgate explain ... | head`) is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), output.as_bytes());
    match trace.decision {
        Decision::Allow => ExitCode::SUCCESS,
        // What the policy says, whether or not it is enforced.
        Decision::Deny | Decision::WouldDeny => ExitCode::from(EXIT_DENIED),
    }
}
