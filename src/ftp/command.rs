//! FTP commands: the verb table, normalisation (case, X-aliases) and the command parser.
//!
//! This module owns the mapping between verb names on the wire and [`Verb`], the verb
//! classes the policy and the state machines rely on (plumbing, file action, transfer,
//! upload), the parsing of one client command line into a [`Command`], and the encoding of a
//! [`Command`] toward the backend. It does no I/O and never panics on input: every malformed
//! line is a [`CommandError`] value.
//!
//! The line handed to [`parse_command`] has already been framed (CRLF removed) and Telnet
//! filtered by [`crate::ftp::line`]. The parser follows vsftpd's line discipline: the verb is
//! everything up to the first space, it is matched case-insensitively, and the argument is
//! everything after that first space, byte for byte (file names may begin or end with
//! spaces).

use std::fmt;

use crate::limits::{MAX_COMMAND_LINE, MAX_VERB_LEN};

/// Every verb ftpgate knows. X-aliases (XCWD, XCUP, XPWD, XMKD, XRMD) map to their RFC 959
/// names when parsed; the alias is not kept, so policy sees one name per action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verb {
    User,
    Pass,
    Acct,
    Cwd,
    Cdup,
    Smnt,
    Quit,
    Rein,
    Port,
    Pasv,
    Type,
    Stru,
    Mode,
    Retr,
    Stor,
    Stou,
    Appe,
    Allo,
    Rest,
    Rnfr,
    Rnto,
    Abor,
    Dele,
    Rmd,
    Mkd,
    Pwd,
    List,
    Nlst,
    Site,
    Syst,
    Stat,
    Help,
    Noop,
    Feat,
    Opts,
    Auth,
    Pbsz,
    Prot,
    Ccc,
    Eprt,
    Epsv,
    Size,
    Mdtm,
    Mlsd,
    Mlst,
    Mfmt,
    Lang,
    Host,
    /// The digest of a file (draft-bryan-ftpext-hash; ProFTPD mod_digest, FileZilla).
    Hash,
    /// The SHA-256 of a file, the older way (ProFTPD mod_digest, Serv-U; WinSCP asks it).
    /// The only verb with a digit in its name.
    Xsha256,
}

/// The obsolete X-aliases of RFC 775, and the verb each one means.
const ALIASES: &[(&str, Verb)] = &[
    ("XCWD", Verb::Cwd),
    ("XCUP", Verb::Cdup),
    ("XPWD", Verb::Pwd),
    ("XMKD", Verb::Mkd),
    ("XRMD", Verb::Rmd),
];

impl Verb {
    /// Every variant, in declaration order (so `Verb::ALL[v as usize] == v`).
    pub const ALL: &'static [Verb] = &[
        Verb::User,
        Verb::Pass,
        Verb::Acct,
        Verb::Cwd,
        Verb::Cdup,
        Verb::Smnt,
        Verb::Quit,
        Verb::Rein,
        Verb::Port,
        Verb::Pasv,
        Verb::Type,
        Verb::Stru,
        Verb::Mode,
        Verb::Retr,
        Verb::Stor,
        Verb::Stou,
        Verb::Appe,
        Verb::Allo,
        Verb::Rest,
        Verb::Rnfr,
        Verb::Rnto,
        Verb::Abor,
        Verb::Dele,
        Verb::Rmd,
        Verb::Mkd,
        Verb::Pwd,
        Verb::List,
        Verb::Nlst,
        Verb::Site,
        Verb::Syst,
        Verb::Stat,
        Verb::Help,
        Verb::Noop,
        Verb::Feat,
        Verb::Opts,
        Verb::Auth,
        Verb::Pbsz,
        Verb::Prot,
        Verb::Ccc,
        Verb::Eprt,
        Verb::Epsv,
        Verb::Size,
        Verb::Mdtm,
        Verb::Mlsd,
        Verb::Mlst,
        Verb::Mfmt,
        Verb::Lang,
        Verb::Host,
        Verb::Hash,
        Verb::Xsha256,
    ];

    /// Looks a verb up by its wire name, ignoring ASCII case. The X-aliases map to their RFC
    /// 959 verbs (XCWD → [`Verb::Cwd`], ...). Anything else, including names longer than
    /// [`MAX_VERB_LEN`], is `None`.
    pub fn from_name(name: &[u8]) -> Option<Verb> {
        if name.is_empty() || name.len() > MAX_VERB_LEN {
            return None;
        }
        if let Some(verb) = Verb::ALL
            .iter()
            .copied()
            .find(|verb| verb.name().as_bytes().eq_ignore_ascii_case(name))
        {
            return Some(verb);
        }
        ALIASES
            .iter()
            .find(|(alias, _)| alias.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, verb)| verb)
    }

    /// The upper-case RFC name of the verb, as sent on the wire and written in policy files.
    pub fn name(self) -> &'static str {
        match self {
            Verb::User => "USER",
            Verb::Pass => "PASS",
            Verb::Acct => "ACCT",
            Verb::Cwd => "CWD",
            Verb::Cdup => "CDUP",
            Verb::Smnt => "SMNT",
            Verb::Quit => "QUIT",
            Verb::Rein => "REIN",
            Verb::Port => "PORT",
            Verb::Pasv => "PASV",
            Verb::Type => "TYPE",
            Verb::Stru => "STRU",
            Verb::Mode => "MODE",
            Verb::Retr => "RETR",
            Verb::Stor => "STOR",
            Verb::Stou => "STOU",
            Verb::Appe => "APPE",
            Verb::Allo => "ALLO",
            Verb::Rest => "REST",
            Verb::Rnfr => "RNFR",
            Verb::Rnto => "RNTO",
            Verb::Abor => "ABOR",
            Verb::Dele => "DELE",
            Verb::Rmd => "RMD",
            Verb::Mkd => "MKD",
            Verb::Pwd => "PWD",
            Verb::List => "LIST",
            Verb::Nlst => "NLST",
            Verb::Site => "SITE",
            Verb::Syst => "SYST",
            Verb::Stat => "STAT",
            Verb::Help => "HELP",
            Verb::Noop => "NOOP",
            Verb::Feat => "FEAT",
            Verb::Opts => "OPTS",
            Verb::Auth => "AUTH",
            Verb::Pbsz => "PBSZ",
            Verb::Prot => "PROT",
            Verb::Ccc => "CCC",
            Verb::Eprt => "EPRT",
            Verb::Epsv => "EPSV",
            Verb::Size => "SIZE",
            Verb::Mdtm => "MDTM",
            Verb::Mlsd => "MLSD",
            Verb::Mlst => "MLST",
            Verb::Mfmt => "MFMT",
            Verb::Lang => "LANG",
            Verb::Hash => "HASH",
            Verb::Xsha256 => "XSHA256",
            Verb::Host => "HOST",
        }
    }

    /// Protocol plumbing: handled by ftpgate's own rules, never listed in a role.
    pub fn is_plumbing(self) -> bool {
        matches!(
            self,
            Verb::User
                | Verb::Pass
                | Verb::Quit
                | Verb::Noop
                | Verb::Syst
                | Verb::Feat
                | Verb::Opts
                | Verb::Type
                | Verb::Mode
                | Verb::Stru
                | Verb::Pasv
                | Verb::Epsv
                | Verb::Port
                | Verb::Eprt
                | Verb::Rest
                | Verb::Abor
                | Verb::Auth
                | Verb::Pbsz
                | Verb::Prot
                | Verb::Help
                | Verb::Ccc
        )
    }

    /// A command that acts on a file or directory. When the role refuses it the client gets
    /// 550; a refused command that is not a file action gets 502.
    pub fn is_file_action(self) -> bool {
        matches!(
            self,
            Verb::Retr
                | Verb::Stor
                | Verb::Stou
                | Verb::Appe
                | Verb::Dele
                | Verb::Rmd
                | Verb::Mkd
                | Verb::Rnfr
                | Verb::Rnto
                | Verb::List
                | Verb::Nlst
                | Verb::Mlsd
                | Verb::Mlst
                | Verb::Size
                | Verb::Mdtm
                | Verb::Cwd
                | Verb::Cdup
                | Verb::Mfmt
                | Verb::Smnt
                | Verb::Hash
                | Verb::Xsha256
        )
    }

    /// A command that needs a data connection.
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            Verb::Retr
                | Verb::Stor
                | Verb::Stou
                | Verb::Appe
                | Verb::List
                | Verb::Nlst
                | Verb::Mlsd
        )
    }

    /// A transfer from the client to the backend.
    pub fn is_upload(self) -> bool {
        matches!(self, Verb::Stor | Verb::Stou | Verb::Appe)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed client command: a known verb and its raw argument bytes.
///
/// `Debug` redacts the argument of PASS, so a command can be logged with `{:?}` safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// The normalised verb (X-aliases already mapped).
    pub verb: Verb,
    /// Everything after the first space, byte for byte; empty when there is no argument.
    pub arg: Vec<u8>,
}

impl Command {
    /// Builds a command; `arg` is copied (pass `b""` for none).
    pub fn new(verb: Verb, arg: &[u8]) -> Command {
        Command {
            verb,
            arg: arg.to_vec(),
        }
    }

    /// Appends the wire form, `VERB` or `VERB arg`, followed by CRLF.
    ///
    /// Argument bytes are sent as they are (byte 0xFF is not Telnet-escaped: most servers,
    /// vsftpd among them, do no Telnet processing on input), except control bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.verb.name().as_bytes());
        if !self.arg.is_empty() {
            out.reserve(self.arg.len() + 3);
            out.push(b' ');
            // SECURITY: a CR or LF inside the argument would end the line early and smuggle a
            // second command to the backend, unchecked by policy. parse_command already
            // refuses such lines; this guards commands built elsewhere.
            out.extend(
                self.arg
                    .iter()
                    .map(|&b| if is_control(b) { b' ' } else { b }),
            );
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The argument as UTF-8, or `None` if it is not valid UTF-8.
    pub fn arg_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.arg).ok()
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Command");
        s.field("verb", &self.verb);
        // SECURITY: never let a password reach a log through Debug.
        if self.verb == Verb::Pass && !self.arg.is_empty() {
            s.field("arg", &"<redacted>");
        } else {
            s.field("arg", &String::from_utf8_lossy(&self.arg));
        }
        s.finish()
    }
}

/// Why a command line was refused. Every variant is answered with a 5xx reply; the text of
/// [`CommandError::Unknown`] is safe to echo to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The line is empty or only spaces.
    Empty,
    /// The line is longer than [`MAX_COMMAND_LINE`].
    TooLong,
    /// The verb is not 1 to [`MAX_VERB_LEN`] ASCII letters.
    BadVerb,
    /// A well-formed verb ftpgate does not know. Upper-cased, at most [`MAX_VERB_LEN`]
    /// characters, ASCII alphanumerics only.
    Unknown(String),
    /// The line holds a control byte (below 0x20, or 0x7F).
    ControlByte,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Empty => f.write_str("empty command line"),
            CommandError::TooLong => f.write_str("command line too long"),
            CommandError::BadVerb => f.write_str("malformed command verb"),
            CommandError::Unknown(name) => write!(f, "unknown command {name}"),
            CommandError::ControlByte => f.write_str("control character in command line"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Parses one command line (CRLF removed, Telnet sequences already filtered).
///
/// Checks, in order: length (`TooLong`), empty or all spaces (`Empty`), control bytes
/// anywhere (`ControlByte`), verb shape (`BadVerb`), verb known (`Unknown`). Bytes 0x80 and
/// above are allowed in the argument (UTF-8 path names, RFC 2640).
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    // SECURITY: hard cap before any other work; the framer already enforces it, this keeps
    // the parser safe on its own.
    if line.len() > MAX_COMMAND_LINE {
        return Err(CommandError::TooLong);
    }
    if line.iter().all(|&b| b == b' ') {
        return Err(CommandError::Empty);
    }
    // SECURITY: NUL, bare CR, LF and other control bytes are refused anywhere in the line.
    // They could truncate a path in the backend (NUL), split one line into two commands on
    // a server that frames differently (CR), or corrupt the audit trail.
    if line.iter().any(|&b| is_control(b)) {
        return Err(CommandError::ControlByte);
    }
    let (name, arg) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (
            line.get(..space).unwrap_or_default(),
            line.get(space + 1..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    // Letters only, except a known verb with a digit (XSHA256): "US3R" stays malformed.
    let letters = name.iter().all(u8::is_ascii_alphabetic);
    if name.is_empty() || name.len() > MAX_VERB_LEN || !(letters || Verb::from_name(name).is_some())
    {
        return Err(CommandError::BadVerb);
    }
    match Verb::from_name(name) {
        Some(verb) => Ok(Command::new(verb, arg)),
        None => Err(CommandError::Unknown(echo_safe_verb(name))),
    }
}

/// A control byte in the sense of the FTP line discipline: C0 controls and DEL.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Reduces a verb to something safe to echo in a reply or a log: ASCII alphanumerics only,
/// upper-cased, at most [`MAX_VERB_LEN`] characters.
fn echo_safe_verb(name: &[u8]) -> String {
    name.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .take(MAX_VERB_LEN)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(verb: Verb, arg: &[u8]) -> Result<Command, CommandError> {
        Ok(Command::new(verb, arg))
    }

    #[test]
    fn all_lists_every_variant_in_order() {
        // `Verb` is repr(u8) with implicit discriminants 0..n; a variant missing from ALL, a
        // duplicate or a wrong order shows up as a mismatch here.
        for (i, &verb) in Verb::ALL.iter().enumerate() {
            assert_eq!(verb as usize, i, "{verb:?} out of place in Verb::ALL");
        }
        assert_eq!(Verb::ALL.len(), Verb::Xsha256 as usize + 1);
    }

    #[test]
    fn names_round_trip() {
        for &verb in Verb::ALL {
            let name = verb.name();
            assert!(name.len() <= MAX_VERB_LEN);
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{name}"
            );
            assert_eq!(Verb::from_name(name.as_bytes()), Some(verb));
            assert_eq!(
                Verb::from_name(name.to_ascii_lowercase().as_bytes()),
                Some(verb)
            );
            assert_eq!(verb.to_string(), name);
        }
    }

    #[test]
    fn names_are_distinct_from_each_other_and_from_aliases() {
        for (i, a) in Verb::ALL.iter().enumerate() {
            for b in Verb::ALL.iter().skip(i + 1) {
                assert_ne!(a.name(), b.name());
            }
            for (alias, _) in ALIASES {
                assert_ne!(a.name(), *alias);
            }
        }
    }

    #[test]
    fn from_name_table() {
        let table: &[(&[u8], Option<Verb>)] = &[
            (b"USER", Some(Verb::User)),
            (b"user", Some(Verb::User)),
            (b"uSeR", Some(Verb::User)),
            (b"XCWD", Some(Verb::Cwd)),
            (b"xcwd", Some(Verb::Cwd)),
            (b"XCUP", Some(Verb::Cdup)),
            (b"XPWD", Some(Verb::Pwd)),
            (b"xMkD", Some(Verb::Mkd)),
            (b"XRMD", Some(Verb::Rmd)),
            (b"CCC", Some(Verb::Ccc)),
            (b"", None),
            (b"US", None),
            (b"USERS", None),
            (b"XDEL", None),
            (b"USER ", None),
            (b" USER", None),
            (b"U\0SER", None),
            (b"\xc3\x9cSER", None),
            (b"RETRRETRRETR", None),
        ];
        for &(name, expected) in table {
            assert_eq!(Verb::from_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn verb_classes() {
        use Verb::*;
        // (verb, plumbing, file action, transfer, upload)
        let table: &[(Verb, bool, bool, bool, bool)] = &[
            (User, true, false, false, false),
            (Pass, true, false, false, false),
            (Acct, false, false, false, false),
            (Cwd, false, true, false, false),
            (Cdup, false, true, false, false),
            (Smnt, false, true, false, false),
            (Quit, true, false, false, false),
            (Rein, false, false, false, false),
            (Port, true, false, false, false),
            (Pasv, true, false, false, false),
            (Type, true, false, false, false),
            (Stru, true, false, false, false),
            (Mode, true, false, false, false),
            (Retr, false, true, true, false),
            (Stor, false, true, true, true),
            (Stou, false, true, true, true),
            (Appe, false, true, true, true),
            (Allo, false, false, false, false),
            (Rest, true, false, false, false),
            (Rnfr, false, true, false, false),
            (Rnto, false, true, false, false),
            (Abor, true, false, false, false),
            (Dele, false, true, false, false),
            (Rmd, false, true, false, false),
            (Mkd, false, true, false, false),
            (Pwd, false, false, false, false),
            (List, false, true, true, false),
            (Nlst, false, true, true, false),
            (Site, false, false, false, false),
            (Syst, true, false, false, false),
            (Stat, false, false, false, false),
            (Help, true, false, false, false),
            (Noop, true, false, false, false),
            (Feat, true, false, false, false),
            (Opts, true, false, false, false),
            (Auth, true, false, false, false),
            (Pbsz, true, false, false, false),
            (Prot, true, false, false, false),
            (Ccc, true, false, false, false),
            (Eprt, true, false, false, false),
            (Epsv, true, false, false, false),
            (Size, false, true, false, false),
            (Mdtm, false, true, false, false),
            (Mlsd, false, true, true, false),
            (Mlst, false, true, false, false),
            (Mfmt, false, true, false, false),
            (Lang, false, false, false, false),
            (Host, false, false, false, false),
            (Hash, false, true, false, false),
            (Xsha256, false, true, false, false),
        ];
        assert_eq!(table.len(), Verb::ALL.len(), "table must cover every verb");
        for &(verb, plumbing, file, transfer, upload) in table {
            assert_eq!(verb.is_plumbing(), plumbing, "{verb} plumbing");
            assert_eq!(verb.is_file_action(), file, "{verb} file action");
            assert_eq!(verb.is_transfer(), transfer, "{verb} transfer");
            assert_eq!(verb.is_upload(), upload, "{verb} upload");
        }
        for &verb in Verb::ALL {
            // Invariants between the classes.
            assert!(!verb.is_upload() || verb.is_transfer(), "{verb}");
            assert!(!verb.is_transfer() || verb.is_file_action(), "{verb}");
            assert!(!(verb.is_plumbing() && verb.is_file_action()), "{verb}");
        }
    }

    #[test]
    fn parse_table() {
        let long_arg = vec![b'a'; MAX_COMMAND_LINE - 5];
        let mut max_line = b"RETR ".to_vec();
        max_line.extend_from_slice(&long_arg);
        assert_eq!(max_line.len(), MAX_COMMAND_LINE);
        let mut too_long = max_line.clone();
        too_long.push(b'a');
        let spaces_too_long = vec![b' '; MAX_COMMAND_LINE + 1];

        let table: &[(&[u8], Result<Command, CommandError>)] = &[
            // Ordinary commands.
            (b"USER alice", cmd(Verb::User, b"alice")),
            (b"user alice", cmd(Verb::User, b"alice")),
            (b"QUIT", cmd(Verb::Quit, b"")),
            (b"noop", cmd(Verb::Noop, b"")),
            (b"TYPE I", cmd(Verb::Type, b"I")),
            (b"PORT 10,0,0,1,4,1", cmd(Verb::Port, b"10,0,0,1,4,1")),
            (b"EPRT |2|::1|5282|", cmd(Verb::Eprt, b"|2|::1|5282|")),
            (b"XCWD /tmp", cmd(Verb::Cwd, b"/tmp")),
            (b"xpwd", cmd(Verb::Pwd, b"")),
            (b"XMKD new", cmd(Verb::Mkd, b"new")),
            (b"OPTS UTF8 ON", cmd(Verb::Opts, b"UTF8 ON")),
            // The argument is everything after the first space, spaces included.
            (b"RETR  leading", cmd(Verb::Retr, b" leading")),
            (b"RETR trailing ", cmd(Verb::Retr, b"trailing ")),
            (b"STOR a b  c", cmd(Verb::Stor, b"a b  c")),
            (b"NOOP ", cmd(Verb::Noop, b"")),
            (b"CWD   ", cmd(Verb::Cwd, b"  ")),
            // UTF-8 and other high bytes are allowed in the argument (RFC 2640).
            (
                "RETR r\u{e9}sum\u{e9}.pdf".as_bytes(),
                cmd(Verb::Retr, "r\u{e9}sum\u{e9}.pdf".as_bytes()),
            ),
            (b"RETR \xff\xfe", cmd(Verb::Retr, b"\xff\xfe")),
            // Length.
            (&max_line, cmd(Verb::Retr, &long_arg)),
            (&too_long, Err(CommandError::TooLong)),
            (&spaces_too_long, Err(CommandError::TooLong)),
            // Empty.
            (b"", Err(CommandError::Empty)),
            (b" ", Err(CommandError::Empty)),
            (b"    ", Err(CommandError::Empty)),
            // Control bytes anywhere.
            (b"RETR a\0b", Err(CommandError::ControlByte)),
            (b"RETR a\rDELE b", Err(CommandError::ControlByte)),
            (b"RETR a\nDELE b", Err(CommandError::ControlByte)),
            (b"RETR a\r", Err(CommandError::ControlByte)),
            (b"RETR a\x7f", Err(CommandError::ControlByte)),
            (b"RETR \x1b[31m", Err(CommandError::ControlByte)),
            (b"\tRETR a", Err(CommandError::ControlByte)),
            (b"RE\0TR a", Err(CommandError::ControlByte)),
            (b"\0", Err(CommandError::ControlByte)),
            (b"NOOP\r", Err(CommandError::ControlByte)),
            // Verb shape.
            (b" USER alice", Err(CommandError::BadVerb)),
            (b"US3R alice", Err(CommandError::BadVerb)),
            (b"xsha256 /a", Ok(Command::new(Verb::Xsha256, b"/a"))),
            (b"XSHA512 /a", Err(CommandError::BadVerb)),
            (b"USER_ alice", Err(CommandError::BadVerb)),
            (b"\xc3\x9cSER a", Err(CommandError::BadVerb)),
            (b"ABCDEFGHI", Err(CommandError::BadVerb)),
            (b"\xff\xf4\xff\xf2ABOR", Err(CommandError::BadVerb)),
            (b"123", Err(CommandError::BadVerb)),
            (b"<script>", Err(CommandError::BadVerb)),
            // Unknown verbs, echoed in a safe form.
            (b"XDEL a", Err(CommandError::Unknown("XDEL".into()))),
            (b"abcdefgh", Err(CommandError::Unknown("ABCDEFGH".into()))),
            (b"Get file", Err(CommandError::Unknown("GET".into()))),
            (b"CLNT x", Err(CommandError::Unknown("CLNT".into()))),
        ];
        for (line, expected) in table {
            assert_eq!(&parse_command(line), expected, "{:?}", line);
        }
    }

    #[test]
    fn every_verb_parses_with_and_without_argument() {
        for &verb in Verb::ALL {
            let name = verb.name();
            assert_eq!(parse_command(name.as_bytes()), cmd(verb, b""));
            let line = format!("{} x y", name.to_ascii_lowercase());
            assert_eq!(parse_command(line.as_bytes()), cmd(verb, b"x y"));
        }
    }

    #[test]
    fn every_single_byte_line_is_handled() {
        // Hostile input sweep: no panic, and a control byte is never accepted.
        for b in 0..=u8::MAX {
            let line = [b'R', b'E', b'T', b'R', b' ', b, b'x'];
            let result = parse_command(&line);
            if is_control(b) {
                assert_eq!(result, Err(CommandError::ControlByte), "{b:#x}");
            } else {
                assert_eq!(result, cmd(Verb::Retr, &[b, b'x']), "{b:#x}");
            }
            let _ = parse_command(&[b]);
            let _ = parse_command(&[b, b' ', b]);
        }
    }

    #[test]
    fn unknown_name_is_safe_to_echo() {
        let table: &[(&[u8], &str)] = &[
            (b"abc", "ABC"),
            (b"a-b.c", "ABC"),
            (b"\r\n230 ok", "230OK"),
            (b"abcdefghijklmnop", "ABCDEFGH"),
            (b"\xff\xfe", ""),
            (b"Zz9", "ZZ9"),
        ];
        for &(name, expected) in table {
            assert_eq!(echo_safe_verb(name), expected);
        }
    }

    #[test]
    fn encode_table() {
        let table: &[(Command, &[u8])] = &[
            (Command::new(Verb::Quit, b""), b"QUIT\r\n"),
            (Command::new(Verb::User, b"alice"), b"USER alice\r\n"),
            (Command::new(Verb::Cwd, b" a b "), b"CWD  a b \r\n"),
            (Command::new(Verb::Mkd, b"x"), b"MKD x\r\n"),
            (
                Command::new(Verb::Retr, "\u{e9}".as_bytes()),
                "RETR \u{e9}\r\n".as_bytes(),
            ),
            (Command::new(Verb::Retr, b"\xff"), b"RETR \xff\r\n"),
            // Hostile arguments built outside the parser cannot split the line.
            (
                Command::new(Verb::Retr, b"a\r\nDELE b"),
                b"RETR a  DELE b\r\n",
            ),
            (Command::new(Verb::Retr, b"a\0\x7f"), b"RETR a  \r\n"),
        ];
        for (command, expected) in table {
            let mut out = b"prefix".to_vec();
            command.encode(&mut out);
            assert_eq!(out.get(6..), Some(*expected), "{command:?}");
        }
    }

    #[test]
    fn parse_then_encode_round_trips() {
        let lines: &[&[u8]] = &[
            b"USER alice",
            b"RETR  two  spaces ",
            b"STOR \xc3\xa9t\xc3\xa9",
            b"LIST",
            b"EPSV ALL",
        ];
        for &line in lines {
            let command = parse_command(line).expect("valid line");
            let mut out = Vec::new();
            command.encode(&mut out);
            let mut expected = line.to_vec();
            expected.extend_from_slice(b"\r\n");
            assert_eq!(out, expected);
        }
        // Aliases and case are normalised.
        let mut out = Vec::new();
        parse_command(b"xcup").expect("valid").encode(&mut out);
        assert_eq!(out, b"CDUP\r\n");
    }

    #[test]
    fn arg_str() {
        assert_eq!(Command::new(Verb::Retr, b"a b").arg_str(), Some("a b"));
        assert_eq!(Command::new(Verb::Retr, b"").arg_str(), Some(""));
        assert_eq!(
            Command::new(Verb::Retr, "\u{e9}".as_bytes()).arg_str(),
            Some("\u{e9}")
        );
        assert_eq!(Command::new(Verb::Retr, b"\xff").arg_str(), None);
        assert_eq!(Command::new(Verb::Retr, b"\xc3").arg_str(), None);
    }

    #[test]
    fn debug_redacts_password() {
        let pass = format!("{:?}", Command::new(Verb::Pass, b"hunter2"));
        assert!(!pass.contains("hunter2"), "{pass}");
        assert!(pass.contains("redacted"), "{pass}");
        let user = format!("{:?}", Command::new(Verb::User, b"alice"));
        assert!(user.contains("alice"), "{user}");
    }

    #[test]
    fn error_display() {
        let table: &[(CommandError, &str)] = &[
            (CommandError::Empty, "empty command line"),
            (CommandError::TooLong, "command line too long"),
            (CommandError::BadVerb, "malformed command verb"),
            (CommandError::Unknown("XYZ".into()), "unknown command XYZ"),
            (
                CommandError::ControlByte,
                "control character in command line",
            ),
        ];
        for (error, text) in table {
            assert_eq!(error.to_string(), *text);
        }
    }
}
