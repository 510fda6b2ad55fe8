//! What a command does, and so which permissions of a role it needs.
//!
//! A role is a list of verbs, but a verb alone does not say what a command does: `STAT` with
//! a path is a directory listing sent over the control connection, `SITE CPFR`/`SITE CPTO`
//! (ProFTPD's mod_copy) copy files on the server, `OPTS MLST` configures listings. Each
//! command is classified here by its verb *and* its argument, and the control machine checks
//! every permission the class needs, so a role without `LIST` gets no listing through `STAT`
//! and a role without `STOR` writes no file through `SITE CPTO`.
//!
//! Pure: no I/O. Plumbing verbs (USER, PASV, ...) never come here; the control machine
//! handles them itself.

use crate::ftp::command::Verb;

/// What a command needs from the user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Every one of these verbs must be in the role.
    All(&'static [Verb]),
    /// At least one of these verbs must be in the role.
    Any(&'static [Verb]),
    /// Never forwarded, whatever the role says (the text says why).
    Never(&'static str),
}

impl Needs {
    /// Whether the command acts on files or directories (a refusal is then 550, like any
    /// denied file action, rather than 502).
    pub fn touches_files(self) -> bool {
        match self {
            Needs::All(verbs) | Needs::Any(verbs) => verbs.iter().any(|v| v.is_file_action()),
            Needs::Never(_) => false,
        }
    }

    /// Whether a role that allows the verbs `allowed` may run the command.
    pub fn granted(self, allowed: impl Fn(Verb) -> bool) -> bool {
        match self {
            Needs::All(verbs) => verbs.iter().all(|&v| allowed(v)),
            Needs::Any(verbs) => verbs.iter().any(|&v| allowed(v)),
            Needs::Never(_) => false,
        }
    }
}

/// The first word of `arg`, upper-cased (ASCII), and the rest after one run of spaces.
pub fn first_word(arg: &[u8]) -> (String, &[u8]) {
    let end = arg.iter().position(|&b| b == b' ').unwrap_or(arg.len());
    let word = String::from_utf8_lossy(arg.get(..end).unwrap_or(&[])).to_ascii_uppercase();
    let mut rest = arg.get(end..).unwrap_or(&[]);
    while let Some((b' ', tail)) = rest.split_first() {
        rest = tail;
    }
    (word, rest)
}

/// SITE subcommands ftpgate knows, with what each needs. Anything else is refused: a SITE
/// command can do whatever the server's author wanted (`SITE EXEC` runs programs).
const SITE: &[(&str, Needs)] = &[
    ("CHMOD", Needs::All(&[Verb::Site])),
    ("CHGRP", Needs::All(&[Verb::Site])),
    ("UMASK", Needs::All(&[Verb::Site])),
    ("UTIME", Needs::All(&[Verb::Site])),
    ("IDLE", Needs::All(&[Verb::Site])),
    ("HELP", Needs::All(&[Verb::Site])),
    // ProFTPD mod_copy (CVE-2015-3306): a copy reads one file and writes another.
    ("CPFR", Needs::All(&[Verb::Site, Verb::Retr, Verb::Stor])),
    ("CPTO", Needs::All(&[Verb::Site, Verb::Retr, Verb::Stor])),
    // ProFTPD mod_site_misc.
    ("MKDIR", Needs::All(&[Verb::Site, Verb::Mkd])),
    ("RMDIR", Needs::All(&[Verb::Site, Verb::Rmd])),
    ("SYMLINK", Needs::Never("SITE SYMLINK is not permitted.")),
    ("EXEC", Needs::Never("SITE EXEC is not permitted.")),
];

/// What `verb arg` needs from the role.
pub fn needs(verb: Verb, arg: &[u8]) -> Needs {
    match verb {
        // STAT without an argument is the session's status; with one it lists a directory
        // over the control connection (RFC 959 4.1.3), like LIST.
        Verb::Stat if arg.is_empty() => Needs::All(&[Verb::Stat]),
        Verb::Stat => Needs::All(&[Verb::Stat, Verb::List]),
        Verb::Site => {
            let (sub, _) = first_word(arg);
            SITE.iter()
                .find(|(name, _)| *name == sub)
                .map_or(Needs::Never("SITE command not permitted."), |(_, n)| *n)
        }
        // OPTS MLST chooses the facts of MLST/MLSD replies: only for a role that lists.
        Verb::Opts => match first_word(arg).0.as_str() {
            "MLST" => Needs::Any(&[Verb::Mlst, Verb::Mlsd]),
            _ => Needs::Never("Option not understood."),
        },
        Verb::Retr => Needs::All(&[Verb::Retr]),
        Verb::Stor => Needs::All(&[Verb::Stor]),
        Verb::Stou => Needs::All(&[Verb::Stou]),
        Verb::Appe => Needs::All(&[Verb::Appe]),
        Verb::Allo => Needs::All(&[Verb::Allo]),
        Verb::Rnfr => Needs::All(&[Verb::Rnfr]),
        Verb::Rnto => Needs::All(&[Verb::Rnto]),
        Verb::Dele => Needs::All(&[Verb::Dele]),
        Verb::Rmd => Needs::All(&[Verb::Rmd]),
        Verb::Mkd => Needs::All(&[Verb::Mkd]),
        Verb::Pwd => Needs::All(&[Verb::Pwd]),
        Verb::List => Needs::All(&[Verb::List]),
        Verb::Nlst => Needs::All(&[Verb::Nlst]),
        Verb::Cwd => Needs::All(&[Verb::Cwd]),
        Verb::Cdup => Needs::All(&[Verb::Cdup]),
        Verb::Smnt => Needs::All(&[Verb::Smnt]),
        Verb::Size => Needs::All(&[Verb::Size]),
        Verb::Mdtm => Needs::All(&[Verb::Mdtm]),
        Verb::Mlsd => Needs::All(&[Verb::Mlsd]),
        Verb::Mlst => Needs::All(&[Verb::Mlst]),
        Verb::Mfmt => Needs::All(&[Verb::Mfmt]),
        Verb::Lang => Needs::All(&[Verb::Lang]),
        // A file's digest tells what reading it would: a role that may RETR may ask it.
        Verb::Hash | Verb::Xsha256 => Needs::All(&[Verb::Retr]),
        // Identity and target changes, and the TLS and data-connection plumbing, are
        // ftpgate's own business: never forwarded as role commands.
        Verb::User
        | Verb::Pass
        | Verb::Acct
        | Verb::Rein
        | Verb::Host
        | Verb::Quit
        | Verb::Port
        | Verb::Pasv
        | Verb::Eprt
        | Verb::Epsv
        | Verb::Type
        | Verb::Stru
        | Verb::Mode
        | Verb::Rest
        | Verb::Abor
        | Verb::Auth
        | Verb::Pbsz
        | Verb::Prot
        | Verb::Ccc
        | Verb::Help
        | Verb::Syst
        | Verb::Noop
        | Verb::Feat => Needs::Never("Command not permitted."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(verbs: &'static [Verb]) -> impl Fn(Verb) -> bool {
        move |v| verbs.contains(&v)
    }

    #[test]
    fn stat_with_a_path_is_a_listing() {
        let read_status = role(&[Verb::Stat]);
        assert!(needs(Verb::Stat, b"").granted(&read_status));
        assert!(!needs(Verb::Stat, b"/etc").granted(&read_status));
        assert!(!needs(Verb::Stat, b"-la").granted(&read_status));
        assert!(needs(Verb::Stat, b"/etc").granted(role(&[Verb::Stat, Verb::List])));
        assert!(!needs(Verb::Stat, b"/etc").granted(role(&[Verb::List])));
    }

    #[test]
    fn site_subcommands_are_classified_by_what_they_do() {
        let site_only = role(&[Verb::Site]);
        assert!(needs(Verb::Site, b"CHMOD 644 a.txt").granted(&site_only));
        assert!(needs(Verb::Site, b"chmod 644 a.txt").granted(&site_only));
        assert!(needs(Verb::Site, b"UMASK 022").granted(&site_only));
        assert!(!needs(Verb::Site, b"CPFR /etc/passwd").granted(&site_only));
        assert!(!needs(Verb::Site, b"CPTO /pub/x").granted(role(&[Verb::Site, Verb::Retr])));
        assert!(needs(Verb::Site, b"CPTO /pub/x").granted(role(&[
            Verb::Site,
            Verb::Retr,
            Verb::Stor
        ])));
        assert!(!needs(Verb::Site, b"MKDIR d").granted(&site_only));
        assert!(needs(Verb::Site, b"MKDIR d").granted(role(&[Verb::Site, Verb::Mkd])));
        let everything = |_: Verb| true;
        assert!(!needs(Verb::Site, b"EXEC /bin/sh").granted(everything));
        assert!(!needs(Verb::Site, b"SYMLINK a b").granted(everything));
        assert!(!needs(Verb::Site, b"FROBNICATE").granted(everything));
        assert!(!needs(Verb::Site, b"").granted(everything));
        assert_eq!(
            needs(Verb::Site, b"EXEC x"),
            Needs::Never("SITE EXEC is not permitted.")
        );
    }

    #[test]
    fn opts_mlst_needs_a_listing_verb() {
        assert!(needs(Verb::Opts, b"MLST type;size;").granted(role(&[Verb::Mlsd])));
        assert!(needs(Verb::Opts, b"mlst type;").granted(role(&[Verb::Mlst])));
        assert!(!needs(Verb::Opts, b"MLST type;").granted(role(&[Verb::Retr])));
        assert!(!needs(Verb::Opts, b"MODE Z").granted(|_| true));
    }

    #[test]
    fn every_verb_has_a_class_and_plain_verbs_need_themselves() {
        for &verb in Verb::ALL {
            let class = needs(verb, b"x");
            if verb.is_plumbing() || matches!(verb, Verb::Acct | Verb::Rein | Verb::Host) {
                assert!(matches!(class, Needs::Never(_)), "{verb}");
            } else if matches!(verb, Verb::Hash | Verb::Xsha256) {
                // A file's digest tells what reading it would.
                assert!(
                    matches!(class, Needs::All(v) if v == [Verb::Retr]),
                    "{verb}"
                );
            } else if !matches!(verb, Verb::Stat | Verb::Site | Verb::Opts) {
                assert!(matches!(class, Needs::All(v) if v == [verb]), "{verb}");
                assert!(class.granted(|v| v == verb), "{verb}");
                assert!(!class.granted(|v| v != verb), "{verb}");
            }
        }
    }

    #[test]
    fn first_word_splits_on_spaces() {
        assert_eq!(
            first_word(b"chmod  644 a b"),
            ("CHMOD".to_string(), &b"644 a b"[..])
        );
        assert_eq!(first_word(b""), (String::new(), &b""[..]));
        assert_eq!(first_word(b"IDLE"), ("IDLE".to_string(), &b""[..]));
    }
}
