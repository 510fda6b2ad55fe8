//! A user's path jail (`users.NAME.paths`): the path prefixes the user's commands may name,
//! checked against the tracked working directory before a command is forwarded.
//!
//! The check is lexical, on the path [`crate::ftp::path::resolve`] makes of the argument and
//! the working directory (`..` and absolute paths normalised first). What a lexical check
//! cannot vouch for is refused for a jailed user: a relative path while the working
//! directory is unknown, a backslash (a separator to Windows servers), a leading `~` (home
//! expansion), glob characters where a server's expansion could climb out (anywhere but the
//! last segment of a listing), and SITE subcommands that name paths ftpgate does not parse.
//! Symbolic links on the backend are the backend's to contain (chroot): ftpgate cannot see
//! them.
//!
//! The directories above an allowed prefix may be entered and listed (so a client can
//! reach `/in` from `/`), nothing else: no file in them can be read, written or renamed.

use crate::ftp::command::Verb;
use crate::ftp::path::{named_path, resolve};

/// Why a jailed user's command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JailRefusal {
    /// The path lies outside every allowed prefix (the resolved path).
    Outside(String),
    /// The working directory is unknown and the path is relative.
    UnknownDirectory,
    /// The argument holds something a lexical check cannot vouch for (what).
    Unverifiable(&'static str),
}

impl JailRefusal {
    /// The audit detail.
    pub fn detail(&self) -> String {
        match self {
            JailRefusal::Outside(path) => format!("{path} is outside the user's paths"),
            JailRefusal::UnknownDirectory => {
                "relative path while the working directory is unknown".to_owned()
            }
            JailRefusal::Unverifiable(what) => format!("the path holds {what}"),
        }
    }
}

/// The allowed prefixes of one user, normalised (absolute, no trailing slash, no `.`/`..`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jail {
    prefixes: Vec<String>,
}

/// Commands that only enter or look at a directory: allowed on the directories above an
/// allowed prefix too.
fn looks_only(verb: Verb) -> bool {
    matches!(
        verb,
        Verb::Cwd | Verb::Cdup | Verb::List | Verb::Nlst | Verb::Mlsd | Verb::Mlst | Verb::Stat
    )
}

fn is_listing(verb: Verb) -> bool {
    matches!(verb, Verb::List | Verb::Nlst | Verb::Mlsd | Verb::Stat)
}

fn glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

impl Jail {
    /// A jail of `prefixes` (each as written in the policy: absolute paths).
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a str>) -> Jail {
        let mut prefixes: Vec<String> = prefixes.into_iter().map(|p| resolve("/", p)).collect();
        prefixes.sort();
        prefixes.dedup();
        Jail { prefixes }
    }

    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// `path` is an allowed prefix or inside one.
    fn inside(&self, path: &str) -> bool {
        self.prefixes.iter().any(|p| {
            p == "/"
                || path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// `path` is a directory above an allowed prefix.
    fn above(&self, path: &str) -> bool {
        self.prefixes.iter().any(|p| {
            path == "/"
                || p.strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Whether `verb arg`, with the working directory `cwd` (None: unknown), stays in the
    /// jail. Commands that name no path, and listings of the working directory itself when
    /// it is known, are checked against the working directory.
    pub fn check(&self, verb: Verb, arg: &str, cwd: Option<&str>) -> Result<(), JailRefusal> {
        if verb == Verb::Site {
            // Only the SITE subcommands whose path ftpgate parses may pass.
            let sub = arg.split(' ').next().unwrap_or("");
            let parsed = ["CHMOD", "CHGRP", "MKDIR", "RMDIR", "CPFR", "CPTO"]
                .iter()
                .any(|s| sub.eq_ignore_ascii_case(s));
            let has_path = named_path(verb, arg).is_some();
            if !parsed || !has_path {
                let pathless = ["HELP", "IDLE", "UMASK", "WHO"]
                    .iter()
                    .any(|s| sub.eq_ignore_ascii_case(s));
                if pathless {
                    return Ok(());
                }
                return Err(JailRefusal::Unverifiable(
                    "a SITE command ftpgate does not check",
                ));
            }
        }
        let Some(named) = named_path(verb, arg) else {
            return Ok(());
        };
        let named = if named.is_empty() && is_listing(verb) {
            "."
        } else {
            named
        };
        if named.contains('\\') {
            return Err(JailRefusal::Unverifiable("a backslash"));
        }
        if named.starts_with('~') {
            return Err(JailRefusal::Unverifiable("a leading ~"));
        }
        let (dir_part, last) = match named.rsplit_once('/') {
            Some((dir, last)) => (dir, last),
            None => ("", named),
        };
        if glob(dir_part) || (glob(last) && !is_listing(verb)) {
            return Err(JailRefusal::Unverifiable("glob characters"));
        }
        let path = match cwd {
            _ if named.starts_with('/') => resolve("/", named),
            Some(cwd) => resolve(cwd, named),
            None => return Err(JailRefusal::UnknownDirectory),
        };
        // A glob in a listing's last segment lists (at most) the directory that holds it.
        let checked = if glob(last) && is_listing(verb) {
            resolve(&path, "..")
        } else {
            path.clone()
        };
        if self.inside(&checked) || (looks_only(verb) && self.above(&checked)) {
            Ok(())
        } else {
            Err(JailRefusal::Outside(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail() -> Jail {
        Jail::new(["/in", "/out/partner-a/"])
    }

    #[test]
    fn paths_inside_the_prefixes_pass() {
        let j = jail();
        assert_eq!(j.prefixes(), ["/in", "/out/partner-a"]);
        assert_eq!(j.check(Verb::Retr, "/in/a.edi", Some("/")), Ok(()));
        assert_eq!(j.check(Verb::Stor, "a.edi", Some("/in")), Ok(()));
        assert_eq!(j.check(Verb::Dele, "x/../b", Some("/in")), Ok(()));
        assert_eq!(
            j.check(Verb::Retr, "r.csv", Some("/out/partner-a/2026")),
            Ok(())
        );
        assert_eq!(j.check(Verb::Cwd, "/in", Some("/")), Ok(()));
        assert_eq!(j.check(Verb::Noop, "", None), Ok(()));
        assert_eq!(j.check(Verb::List, "-la", Some("/in")), Ok(()));
    }

    #[test]
    fn dot_dot_and_absolute_paths_are_normalised_before_the_check() {
        let j = jail();
        assert_eq!(
            j.check(Verb::Retr, "../etc/passwd", Some("/in")),
            Err(JailRefusal::Outside("/etc/passwd".into()))
        );
        assert_eq!(
            j.check(Verb::Retr, "/in/../../etc/passwd", Some("/in")),
            Err(JailRefusal::Outside("/etc/passwd".into()))
        );
        // A sibling whose name starts like a prefix is not inside it.
        assert_eq!(
            j.check(Verb::Stor, "/input/x", Some("/")),
            Err(JailRefusal::Outside("/input/x".into()))
        );
        assert_eq!(
            j.check(Verb::Retr, "/out/partner-b/r.csv", Some("/")),
            Err(JailRefusal::Outside("/out/partner-b/r.csv".into()))
        );
    }

    #[test]
    fn the_directories_above_a_prefix_may_be_entered_and_listed_only() {
        let j = jail();
        assert_eq!(j.check(Verb::Cwd, "/out", Some("/in")), Ok(()));
        assert_eq!(j.check(Verb::List, "", Some("/")), Ok(()));
        assert_eq!(j.check(Verb::Cdup, "", Some("/in")), Ok(()));
        assert_eq!(j.check(Verb::Nlst, "/out", Some("/")), Ok(()));
        assert_eq!(
            j.check(Verb::Retr, "/out/secret.txt", Some("/")),
            Err(JailRefusal::Outside("/out/secret.txt".into()))
        );
        assert_eq!(
            j.check(Verb::Mkd, "/out/new", Some("/")),
            Err(JailRefusal::Outside("/out/new".into()))
        );
        assert_eq!(
            j.check(Verb::Stor, "x", Some("/")),
            Err(JailRefusal::Outside("/x".into()))
        );
        // Entering another directory at the top is not entering an ancestor.
        assert_eq!(
            j.check(Verb::Cwd, "/etc", Some("/")),
            Err(JailRefusal::Outside("/etc".into()))
        );
    }

    #[test]
    fn what_a_lexical_check_cannot_vouch_for_is_refused() {
        let j = jail();
        assert_eq!(
            j.check(Verb::Retr, "a.edi", None),
            Err(JailRefusal::UnknownDirectory)
        );
        assert_eq!(j.check(Verb::Retr, "/in/a.edi", None), Ok(()));
        assert_eq!(
            j.check(Verb::Retr, "\\etc\\passwd", Some("/in")),
            Err(JailRefusal::Unverifiable("a backslash"))
        );
        assert_eq!(
            j.check(Verb::Cwd, "~root", Some("/in")),
            Err(JailRefusal::Unverifiable("a leading ~"))
        );
        assert_eq!(
            j.check(Verb::Retr, "/in/*", Some("/")),
            Err(JailRefusal::Unverifiable("glob characters"))
        );
        assert_eq!(
            j.check(Verb::List, "/in/.*/x", Some("/")),
            Err(JailRefusal::Unverifiable("glob characters"))
        );
        // A glob in a listing's last segment lists its directory, which is checked.
        assert_eq!(j.check(Verb::Nlst, "/in/*.edi", Some("/")), Ok(()));
        assert_eq!(j.check(Verb::List, "/in/.*", Some("/")), Ok(()));
        assert_eq!(
            j.check(Verb::Nlst, "/etc/*", Some("/")),
            Err(JailRefusal::Outside("/etc/*".into()))
        );
    }

    #[test]
    fn site_commands_pass_only_when_their_path_is_checked() {
        let j = jail();
        assert_eq!(j.check(Verb::Site, "CHMOD 644 /in/a", Some("/")), Ok(()));
        assert_eq!(
            j.check(Verb::Site, "CHMOD 644 /etc/a", Some("/")),
            Err(JailRefusal::Outside("/etc/a".into()))
        );
        assert_eq!(
            j.check(Verb::Site, "SYMLINK /etc/passwd /in/p", Some("/")),
            Err(JailRefusal::Unverifiable(
                "a SITE command ftpgate does not check"
            ))
        );
        assert_eq!(
            j.check(Verb::Site, "CPFR /etc/passwd", Some("/")),
            Err(JailRefusal::Outside("/etc/passwd".into()))
        );
        assert_eq!(j.check(Verb::Site, "CPTO /in/copy", Some("/")), Ok(()));
        assert_eq!(
            j.check(Verb::Site, "UTIME /etc/passwd 20260101000000", Some("/")),
            Err(JailRefusal::Unverifiable(
                "a SITE command ftpgate does not check"
            ))
        );
        assert_eq!(j.check(Verb::Site, "HELP", Some("/")), Ok(()));
    }

    #[test]
    fn a_jail_of_the_root_allows_everything_it_can_check() {
        let j = Jail::new(["/"]);
        assert_eq!(j.check(Verb::Retr, "/etc/passwd", Some("/")), Ok(()));
        assert_eq!(
            j.check(Verb::Retr, "x", None),
            Err(JailRefusal::UnknownDirectory)
        );
    }
}
