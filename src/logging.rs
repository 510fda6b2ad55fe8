//! ftpgate's own diagnostics on stderr (not the audit trail), in one of two forms:
//!
//! ```text
//! <6>worker 0: policy reloaded from /etc/ftpgate/ftpgate.json      (journal)
//! [2026-11-21T13:52:12.170Z INFO  ftpgate::reactor] policy reloaded  (text)
//! ```
//!
//! Under systemd, stderr is a stream to journald, which reads the sd-daemon(3) prefix `<N>`
//! as the line's syslog priority (so `journalctl -p err` finds errors) and adds its own
//! timestamp. Anywhere else (a terminal, a file, a pipe) each line carries its time and
//! level. The journal form is chosen when `$JOURNAL_STREAM` names the device and inode of
//! stderr itself (what systemd.exec(5) says to check: a stderr redirected elsewhere by the
//! service keeps the variable), or by `--log-format journal`.

use std::io::Write;

/// The form of the diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Chosen from `$JOURNAL_STREAM` and stderr.
    Auto,
    /// `<PRIORITY>message`, for journald.
    Journal,
    /// Timestamp, level, module, message.
    Text,
}

impl LogFormat {
    /// The command line's spelling (`--log-format auto|journal|text`).
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "auto" => Some(LogFormat::Auto),
            "journal" => Some(LogFormat::Journal),
            "text" => Some(LogFormat::Text),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Journal => "journal",
            LogFormat::Text => "text",
        }
    }

    /// `Auto` resolved against the environment.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto => {
                let stream = std::env::var("JOURNAL_STREAM").ok();
                if journal_stream_is(stream.as_deref(), stderr_identity()) {
                    LogFormat::Journal
                } else {
                    LogFormat::Text
                }
            }
            other => other,
        }
    }
}

/// Device and inode of stderr, as `$JOURNAL_STREAM` writes them.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// True when `$JOURNAL_STREAM` (`DEVICE:INODE`, both decimal) names `stderr`.
pub fn journal_stream_is(value: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some(stderr)) = (value, stderr) else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    matches!((dev.parse(), ino.parse()), (Ok(dev), Ok(ino)) if (dev, ino) == stderr)
}

/// The sd-daemon(3) priority of a log level: err, warning, info, debug.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Starts the logger (`RUST_LOG` filters, `info` by default) in `format`, resolved.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format.resolve() {
        LogFormat::Journal => {
            builder.format(|out, record| {
                // One line per record: journald would read a continuation line as a new
                // record at the default priority.
                let message = record.args().to_string().replace('\n', " ");
                writeln!(out, "<{}>{message}", priority(record.level()))
            });
        }
        _ => {
            // Written here: env_logger's own timestamps need its humantime feature, which
            // this build leaves out (one dependency fewer).
            builder.format(|out, record| {
                writeln!(
                    out,
                    "[{} {:<5} {}] {}",
                    crate::audit::rfc3339_utc(std::time::SystemTime::now()),
                    record.level(),
                    record.target(),
                    record.args()
                )
            });
        }
    }
    builder.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(journal_stream_is(Some("8:1234"), Some((8, 1234))));
        assert!(!journal_stream_is(Some("8:1235"), Some((8, 1234))));
        assert!(!journal_stream_is(Some("8"), Some((8, 1234))));
        assert!(!journal_stream_is(Some("x:y"), Some((8, 1234))));
        assert!(!journal_stream_is(None, Some((8, 1234))));
        assert!(!journal_stream_is(Some("8:1234"), None));
    }

    #[test]
    fn priorities_are_syslog_severities() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
    }

    #[test]
    fn spellings() {
        for f in [LogFormat::Auto, LogFormat::Journal, LogFormat::Text] {
            assert_eq!(LogFormat::parse(f.name()), Some(f));
        }
        assert_eq!(LogFormat::parse("json"), None);
    }
}
