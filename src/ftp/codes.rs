//! Named FTP reply codes (vsftpd's ftpcodes.h style).
//!
//! This module owns the numeric reply codes ftpgate sends or reacts to, so the state machines
//! never carry bare numbers. It holds constants only: no text, no logic. The reply texts live
//! with the code that sends them.

/// 150: file status okay; about to open the data connection (RFC 959).
pub const DATA_OPENING: u16 = 150;

/// 200: command okay (TYPE, MODE, STRU, PORT, EPRT, PBSZ, PROT, OPTS, NOOP).
pub const COMMAND_OK: u16 = 200;
/// 202: command not implemented, superfluous at this site (ALLO, ACCT when not needed).
pub const COMMAND_SUPERFLUOUS: u16 = 202;
/// 211: system status, or the FEAT list (RFC 2389).
pub const SYSTEM_STATUS: u16 = 211;
/// 213: file status (SIZE and MDTM answers, RFC 3659).
pub const FILE_STATUS: u16 = 213;
/// 214: help message.
pub const HELP: u16 = 214;
/// 215: NAME system type (SYST).
pub const SYSTEM_TYPE: u16 = 215;
/// 220: service ready for new user (the greeting).
pub const SERVICE_READY: u16 = 220;
/// 221: service closing control connection (QUIT).
pub const CLOSING_CONTROL: u16 = 221;
/// 226: closing data connection; requested file action successful.
pub const DATA_CLOSE_OK: u16 = 226;
/// 227: entering passive mode (h1,h2,h3,h4,p1,p2).
pub const ENTERING_PASSIVE: u16 = 227;
/// 229: entering extended passive mode (|||port|) (RFC 2428).
pub const ENTERING_EXT_PASSIVE: u16 = 229;
/// 230: user logged in, proceed.
pub const LOGGED_IN: u16 = 230;
/// 234: security mechanism accepted, TLS handshake follows (AUTH TLS, RFC 4217).
pub const AUTH_OK: u16 = 234;
/// 250: requested file action okay, completed.
pub const FILE_ACTION_OK: u16 = 250;
/// 257: "PATHNAME" created (MKD) or current directory (PWD).
pub const PATHNAME_CREATED: u16 = 257;

/// 331: user name okay, need password.
pub const NEED_PASSWORD: u16 = 331;
/// 332: need account for login.
pub const NEED_ACCOUNT: u16 = 332;
/// 350: requested file action pending further information (REST, RNFR).
pub const PENDING_FURTHER: u16 = 350;

/// 421: service not available, closing control connection (limits, timeouts, shutdown).
pub const SERVICE_NOT_AVAILABLE: u16 = 421;
/// 425: can't open data connection.
pub const CANT_OPEN_DATA: u16 = 425;
/// 426: connection closed; transfer aborted.
pub const TRANSFER_ABORTED: u16 = 426;
/// 450: requested file action not taken; file unavailable (e.g. busy).
pub const FILE_ACTION_NOT_TAKEN: u16 = 450;
/// 451: requested action aborted: local error in processing.
pub const LOCAL_ERROR: u16 = 451;

/// 500: syntax error, command unrecognised (also: line too long).
pub const SYNTAX_ERROR: u16 = 500;
/// 501: syntax error in parameters or arguments (bad PORT/EPRT argument).
pub const SYNTAX_ERROR_ARGS: u16 = 501;
/// 502: command not implemented; also used for commands the user's role does not permit.
pub const NOT_IMPLEMENTED: u16 = 502;
/// 503: bad sequence of commands (PASS before USER, RNTO without RNFR).
pub const BAD_SEQUENCE: u16 = 503;
/// 504: command not implemented for that parameter (TYPE E, MODE B, STRU R).
pub const NOT_IMPLEMENTED_PARAM: u16 = 504;
/// 521: data connection cannot be opened with this PROT setting (vsftpd: "Data
/// connections must be encrypted.").
pub const DATA_NOT_PROTECTED: u16 = 521;
/// 522: network protocol not supported, use (1,2) (EPRT/EPSV, RFC 2428).
pub const EXT_NETWORK_PROTOCOL_NOT_SUPPORTED: u16 = 522;
/// 530: not logged in (anything but login commands before login; failed login).
pub const NOT_LOGGED_IN: u16 = 530;
/// 534: request denied for policy reasons (TLS required, RFC 4217).
pub const REQUEST_DENIED_POLICY: u16 = 534;
/// 536: requested PROT level not supported by mechanism (PROT S, PROT E; RFC 2228).
pub const PROT_LEVEL_NOT_SUPPORTED: u16 = 536;
/// 550: requested action not taken; file unavailable, or a file action the role denies.
pub const FILE_UNAVAILABLE: u16 = 550;
/// 552: requested file action aborted: exceeded storage allocation (file size limit).
pub const EXCEEDED_STORAGE: u16 = 552;
/// 553: requested action not taken: file name not allowed.
pub const FILE_NAME_NOT_ALLOWED: u16 = 553;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every constant with its expected value, written out a second time on purpose: a typo in
    /// either place fails the test.
    const TABLE: &[(u16, u16)] = &[
        (DATA_OPENING, 150),
        (COMMAND_OK, 200),
        (COMMAND_SUPERFLUOUS, 202),
        (SYSTEM_STATUS, 211),
        (FILE_STATUS, 213),
        (HELP, 214),
        (SYSTEM_TYPE, 215),
        (SERVICE_READY, 220),
        (CLOSING_CONTROL, 221),
        (DATA_CLOSE_OK, 226),
        (ENTERING_PASSIVE, 227),
        (ENTERING_EXT_PASSIVE, 229),
        (LOGGED_IN, 230),
        (AUTH_OK, 234),
        (FILE_ACTION_OK, 250),
        (PATHNAME_CREATED, 257),
        (NEED_PASSWORD, 331),
        (NEED_ACCOUNT, 332),
        (PENDING_FURTHER, 350),
        (SERVICE_NOT_AVAILABLE, 421),
        (CANT_OPEN_DATA, 425),
        (TRANSFER_ABORTED, 426),
        (FILE_ACTION_NOT_TAKEN, 450),
        (LOCAL_ERROR, 451),
        (SYNTAX_ERROR, 500),
        (SYNTAX_ERROR_ARGS, 501),
        (NOT_IMPLEMENTED, 502),
        (BAD_SEQUENCE, 503),
        (NOT_IMPLEMENTED_PARAM, 504),
        (EXT_NETWORK_PROTOCOL_NOT_SUPPORTED, 522),
        (NOT_LOGGED_IN, 530),
        (REQUEST_DENIED_POLICY, 534),
        (DATA_NOT_PROTECTED, 521),
        (PROT_LEVEL_NOT_SUPPORTED, 536),
        (FILE_UNAVAILABLE, 550),
        (EXCEEDED_STORAGE, 552),
        (FILE_NAME_NOT_ALLOWED, 553),
    ];

    #[test]
    fn values_match_the_rfcs() {
        for &(constant, expected) in TABLE {
            assert_eq!(constant, expected);
        }
    }

    #[test]
    fn codes_are_valid_and_distinct() {
        for (i, &(code, _)) in TABLE.iter().enumerate() {
            assert!((100..=599).contains(&code), "{code} out of range");
            assert!((1..=5).contains(&(code / 100)), "{code} bad class");
            for &(other, _) in TABLE.iter().skip(i + 1) {
                assert_ne!(code, other, "duplicate code {code}");
            }
        }
    }
}
