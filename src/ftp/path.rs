//! Paths for the audit trail: which part of a command's argument names a file or folder,
//! resolving it against the tracked working directory, and the path in a 257 (PWD) reply.
//!
//! Paths here are `String`s made from the wire bytes with `String::from_utf8_lossy`, exactly
//! like the `arg` of an audit event: a byte that is not UTF-8 becomes U+FFFD. The
//! normalisation only looks at `/`, `.` and `..`, which are ASCII and never part of a
//! multi-byte sequence, so working on the lossy string gives the same segments as working
//! on the bytes.
//!
//! The resolution is lexical, like a shell's `cd -L`: `a/../b` is `b` even if `a` is a
//! symbolic link on the server. Nothing here performs I/O, and every function is linear in
//! its input (the output is never longer than the two inputs together plus one byte).

use crate::ftp::command::Verb;

/// Longest working directory ftpgate tracks. A directory beyond it (only a backend that
/// accepts any CWD can get there) makes the working directory unknown.
pub const MAX_TRACKED_PATH: usize = 4096;

/// `arg` resolved against the working directory `cwd` (an absolute path): an absolute `arg`
/// replaces `cwd`, a relative one is joined to it; empty and `.` segments are dropped and
/// `..` removes the segment before it (never going above `/`). The result starts with `/`
/// and has no trailing slash unless it is `/` itself. A `cwd` that does not start with `/`
/// is taken as if it did.
pub fn resolve(cwd: &str, arg: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let base = if arg.starts_with('/') { "" } else { cwd };
    for segment in base.split('/').chain(arg.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => segments.push(name),
        }
    }
    let mut path = String::with_capacity(cwd.len() + arg.len() + 1);
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// The path in a 257 reply to PWD, given the reply text after the code (RFC 959: the path in
/// double quotes, a quote inside it doubled). Without quotes, a first word that starts with
/// `/` is taken (some old servers). `None` when there is no path. Bytes that are not UTF-8
/// become U+FFFD.
pub fn parse_pwd_reply(text: &[u8]) -> Option<String> {
    let Some(open) = text.iter().position(|&b| b == b'"') else {
        let word = text
            .split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty())?;
        return word
            .starts_with(b"/")
            .then(|| String::from_utf8_lossy(word).into_owned());
    };
    let mut path = Vec::with_capacity(text.len());
    let mut rest = text.get(open + 1..)?.iter();
    loop {
        match rest.next()? {
            b'"' => {
                if rest.as_slice().first() == Some(&b'"') {
                    rest.next();
                    path.push(b'"');
                } else {
                    break;
                }
            }
            &b => path.push(b),
        }
    }
    if path.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(&path).into_owned())
}

/// The part of `arg` that names a file or folder for `verb`, relative to the working
/// directory: `""` means the working directory itself (LIST, NLST, MLSD and MLST without
/// one; CDUP is `".."`). `None` for a verb that names no path (or a file verb without its
/// argument, such as STOU, whose file name the server chooses).
///
/// LIST and NLST lose leading option words (`-la`, `-R`); MFMT and MDTM lose their leading
/// time stamp (`MFMT 20260101120000 file`, vsftpd's `MDTM 20260101120000 file`).
pub fn named_path(verb: Verb, arg: &str) -> Option<&str> {
    match verb {
        Verb::Cdup => Some(".."),
        Verb::List | Verb::Nlst => Some(strip_list_options(arg)),
        Verb::Mlsd | Verb::Mlst => Some(arg),
        // STAT with a path lists it (without one it names nothing).
        Verb::Stat => non_empty(strip_list_options(arg)),
        Verb::Site => site_path(arg),
        Verb::Mfmt => non_empty(after_first_word(arg)),
        Verb::Mdtm => non_empty(strip_time_stamp(arg)),
        Verb::Retr
        | Verb::Stor
        | Verb::Stou
        | Verb::Appe
        | Verb::Dele
        | Verb::Rmd
        | Verb::Mkd
        | Verb::Rnfr
        | Verb::Rnto
        | Verb::Size
        | Verb::Cwd
        | Verb::Smnt
        | Verb::Hash
        | Verb::Xsha256 => non_empty(arg),
        _ => None,
    }
}

/// The path a SITE subcommand names: `SITE CHMOD 644 path`, `SITE CPFR path`, ...
fn site_path(arg: &str) -> Option<&str> {
    let sub = arg.split(' ').next().unwrap_or("");
    if sub.eq_ignore_ascii_case("CHMOD") || sub.eq_ignore_ascii_case("CHGRP") {
        non_empty(after_first_word(after_first_word(arg)))
    } else if ["CPFR", "CPTO", "MKDIR", "RMDIR", "SYMLINK"]
        .iter()
        .any(|s| sub.eq_ignore_ascii_case(s))
    {
        non_empty(after_first_word(arg))
    } else {
        None
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// `arg` without leading words that start with `-` (ls options). A lone `-` is a name.
pub fn strip_list_options(arg: &str) -> &str {
    let mut rest = arg;
    let mut stripped = false;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        let word_end = trimmed.find(' ').unwrap_or(trimmed.len());
        let word = trimmed.get(..word_end).unwrap_or("");
        if word.len() < 2 || !word.starts_with('-') {
            // Only what followed an option word loses its leading spaces: a name may begin
            // with a space.
            return if stripped { trimmed } else { arg };
        }
        stripped = true;
        rest = trimmed.get(word_end..).unwrap_or("");
    }
}

fn after_first_word(arg: &str) -> &str {
    match arg.split_once(' ') {
        Some((_, rest)) => rest,
        None => "",
    }
}

/// MDTM with a leading `YYYYMMDDHHMMSS[.fff] ` sets the time (vsftpd, ProFTPD); the path is
/// what follows. Otherwise the whole argument is the path.
fn strip_time_stamp(arg: &str) -> &str {
    let Some((first, rest)) = arg.split_once(' ') else {
        return arg;
    };
    let (digits, fraction) = first.split_once('.').unwrap_or((first, ""));
    let stamp = digits.len() == 14
        && digits.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if stamp && !rest.is_empty() { rest } else { arg }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_arguments_are_joined() {
        assert_eq!(resolve("/", "file.csv"), "/file.csv");
        assert_eq!(resolve("/in/2026", "file.csv"), "/in/2026/file.csv");
        assert_eq!(resolve("/in", "2026/file.csv"), "/in/2026/file.csv");
    }

    #[test]
    fn absolute_arguments_replace_the_cwd() {
        assert_eq!(resolve("/in/2026", "/out/x"), "/out/x");
        assert_eq!(resolve("/in/2026", "/"), "/");
        assert_eq!(resolve("/in", "//etc///passwd"), "/etc/passwd");
    }

    #[test]
    fn dot_dot_pops_and_never_goes_above_the_root() {
        assert_eq!(resolve("/in/2026", ".."), "/in");
        assert_eq!(resolve("/in/2026", "../2025/./x"), "/in/2025/x");
        assert_eq!(resolve("/", ".."), "/");
        assert_eq!(resolve("/in", "../../../../etc"), "/etc");
        assert_eq!(resolve("/in", "/../../x"), "/x");
        assert_eq!(resolve("/a/b", "c/../../d"), "/a/d");
    }

    #[test]
    fn dots_repeated_and_trailing_slashes_are_dropped() {
        assert_eq!(resolve("/", "./a/./b/."), "/a/b");
        assert_eq!(resolve("/pub", "in//2026/"), "/pub/in/2026");
        assert_eq!(resolve("/pub/", "."), "/pub");
        assert_eq!(resolve("/pub", ""), "/pub");
        assert_eq!(resolve("", ""), "/");
        assert_eq!(resolve("//a//b//", ""), "/a/b");
    }

    #[test]
    fn cwd_without_a_leading_slash_is_rooted() {
        assert_eq!(resolve("in", "x"), "/in/x");
    }

    #[test]
    fn names_with_dots_and_spaces_are_names() {
        assert_eq!(resolve("/", "...").as_str(), "/...");
        assert_eq!(resolve("/", ".hidden").as_str(), "/.hidden");
        assert_eq!(resolve("/", "a..b").as_str(), "/a..b");
        assert_eq!(
            resolve("/d", " lead and trail ").as_str(),
            "/d/ lead and trail "
        );
        assert_eq!(resolve("/", "a\\..\\b").as_str(), "/a\\..\\b");
    }

    #[test]
    fn non_utf8_stays_replaced_and_does_not_shift_segments() {
        let arg = String::from_utf8_lossy(b"in/\xff\xfe/../f\xc3");
        assert_eq!(resolve("/", &arg), "/in/f\u{fffd}");
        assert_eq!(resolve("/\u{fffd}", "..").as_str(), "/");
    }

    #[test]
    fn result_is_bounded_by_its_inputs() {
        let cwd = "/a".repeat(1000);
        let arg = "b/".repeat(3000);
        let out = resolve(&cwd, &arg);
        assert!(out.len() <= cwd.len() + arg.len() + 1);
        let deep = "../".repeat(100_000);
        assert_eq!(resolve(&cwd, &deep), "/");
    }

    #[test]
    fn pwd_replies_are_parsed() {
        assert_eq!(
            parse_pwd_reply(b"\"/\" is the current directory").as_deref(),
            Some("/")
        );
        assert_eq!(
            parse_pwd_reply(b"\"/in/2026\"").as_deref(),
            Some("/in/2026")
        );
        assert_eq!(
            parse_pwd_reply(b"\"/say \"\"hi\"\"\" is current.").as_deref(),
            Some("/say \"hi\"")
        );
        assert_eq!(
            parse_pwd_reply(b"\"/a\"\"\"").as_deref(),
            Some("/a\""),
            "a doubled quote just before the closing one"
        );
        assert_eq!(
            parse_pwd_reply(b"\"/with space/x\" ok").as_deref(),
            Some("/with space/x")
        );
        assert_eq!(
            parse_pwd_reply(b"/home/edi is the current directory").as_deref(),
            Some("/home/edi"),
            "no quotes: an absolute first word"
        );
    }

    #[test]
    fn malformed_pwd_replies_are_none() {
        assert_eq!(parse_pwd_reply(b""), None);
        assert_eq!(parse_pwd_reply(b"\""), None);
        assert_eq!(parse_pwd_reply(b"\"\" empty"), None);
        assert_eq!(parse_pwd_reply(b"\"/unterminated"), None);
        assert_eq!(parse_pwd_reply(b"\"/x\"\"\"\""), None, "ends inside");
        assert_eq!(parse_pwd_reply(b"current directory unknown"), None);
        assert_eq!(parse_pwd_reply(b"   "), None);
    }

    #[test]
    fn pwd_reply_bytes_are_lossy_and_non_unix_paths_are_returned_as_given() {
        assert_eq!(
            parse_pwd_reply(b"\"/d\xff\"").as_deref(),
            Some("/d\u{fffd}")
        );
        // z/OS: a data set prefix. The caller decides what to do with a non-"/" path.
        assert_eq!(
            parse_pwd_reply(b"\"'USER1.'\" is working directory.").as_deref(),
            Some("'USER1.'")
        );
    }

    #[test]
    fn pwd_reply_parsing_is_total_on_arbitrary_bytes() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [b'"', b'/', b' ', b'a', 0xff, b'.'][(seed % 6) as usize]
                })
                .collect();
            let _ = parse_pwd_reply(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            let out = resolve(&text, &text);
            assert!(out.starts_with('/'));
            assert!(out == "/" || !out.ends_with('/'));
            assert!(!out.contains("//"));
        }
    }

    #[test]
    fn list_options_are_not_paths() {
        assert_eq!(named_path(Verb::List, ""), Some(""));
        assert_eq!(named_path(Verb::List, "-la"), Some(""));
        assert_eq!(named_path(Verb::List, "-l -a 2026"), Some("2026"));
        assert_eq!(named_path(Verb::List, "-la  my dir"), Some("my dir"));
        assert_eq!(named_path(Verb::Nlst, "-R /pub"), Some("/pub"));
        assert_eq!(named_path(Verb::List, "2026"), Some("2026"));
        assert_eq!(
            named_path(Verb::List, "-"),
            Some("-"),
            "a lone dash is a name"
        );
        assert_eq!(named_path(Verb::List, " x"), Some(" x"));
        assert_eq!(
            named_path(Verb::Mlsd, "-la"),
            Some("-la"),
            "MLSD has no options"
        );
    }

    #[test]
    fn verbs_that_name_paths() {
        for verb in [
            Verb::Retr,
            Verb::Stor,
            Verb::Stou,
            Verb::Appe,
            Verb::Dele,
            Verb::Rmd,
            Verb::Mkd,
            Verb::Rnfr,
            Verb::Rnto,
            Verb::Size,
            Verb::Mdtm,
            Verb::Cwd,
            Verb::Smnt,
        ] {
            assert_eq!(named_path(verb, "f"), Some("f"), "{verb:?}");
            assert_eq!(named_path(verb, ""), None, "{verb:?} without argument");
        }
        assert_eq!(named_path(Verb::Cdup, ""), Some(".."));
        assert_eq!(named_path(Verb::Mlst, ""), Some(""));
        assert_eq!(named_path(Verb::Mlsd, "d"), Some("d"));
        for verb in [
            Verb::Pwd,
            Verb::Noop,
            Verb::Type,
            Verb::Rest,
            Verb::User,
            Verb::Pass,
        ] {
            assert_eq!(named_path(verb, "x"), None, "{verb:?}");
        }
        // STAT with a path is a listing of it; without one it names nothing.
        assert_eq!(named_path(Verb::Stat, "-la /etc"), Some("/etc"));
        assert_eq!(named_path(Verb::Stat, ""), None);
        // SITE subcommands that name a file.
        assert_eq!(named_path(Verb::Site, "CHMOD 644 a b.txt"), Some("a b.txt"));
        assert_eq!(
            named_path(Verb::Site, "cpfr /etc/passwd"),
            Some("/etc/passwd")
        );
        assert_eq!(named_path(Verb::Site, "MKDIR new"), Some("new"));
        assert_eq!(named_path(Verb::Site, "UMASK 022"), None);
        assert_eq!(named_path(Verb::Site, "CHMOD 644"), None);
    }

    #[test]
    fn time_stamps_before_the_path_are_dropped() {
        assert_eq!(
            named_path(Verb::Mfmt, "20260101120000 a b.txt"),
            Some("a b.txt")
        );
        assert_eq!(named_path(Verb::Mfmt, "20260101120000"), None);
        assert_eq!(
            named_path(Verb::Mdtm, "20260101120000 f.txt"),
            Some("f.txt")
        );
        assert_eq!(
            named_path(Verb::Mdtm, "20260101120000.123 f.txt"),
            Some("f.txt")
        );
        assert_eq!(
            named_path(Verb::Mdtm, "report 2026.txt"),
            Some("report 2026.txt")
        );
        assert_eq!(named_path(Verb::Mdtm, "2026 f"), Some("2026 f"));
        assert_eq!(
            named_path(Verb::Mdtm, "20260101120000"),
            Some("20260101120000")
        );
    }
}
