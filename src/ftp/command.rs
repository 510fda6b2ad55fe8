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
#[path = "command_tests.rs"]
mod tests;
