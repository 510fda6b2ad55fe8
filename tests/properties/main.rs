//! Property-based tests of the pure parsers and codecs, on arbitrary and hostile input.
//!
//! Every parser in `ftp` and `policy` promises "no panic on any input, bounded memory", and
//! every formatter that has a parser as its inverse promises a round trip. These properties
//! check those promises on generated input: raw bytes, inputs biased toward the interesting
//! shapes (verbs, CR/LF/IAC, reply codes, JSON punctuation), arbitrary read boundaries, and
//! random edits of a valid policy, textual and structural. Independent reference models
//! (written here from the documented rules, not copied from `src/`) pin the exact output of
//! the line framer, the Telnet filter, the PORT argument parser and the 227 reply search.
//!
//! Case counts are kept moderate so the file runs in a few seconds in debug builds; set
//! `PROPTEST_CASES` to run more (see [`config`]).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use ftpgate::ftp::address::{
    AddressError, EpsvArg, format_eprt_arg, format_epsv_reply, format_pasv_reply, format_port_arg,
    parse_eprt_arg, parse_epsv_arg, parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use ftpgate::ftp::command::{Command, CommandError, Verb, parse_command};
use ftpgate::ftp::line::{Framed, LineFramer, TelnetFilter};
use ftpgate::ftp::reply::{Reply, ReplyError, ReplyParser};
use ftpgate::limits::{
    MAX_COMMAND_LINE, MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES, MAX_VERB_LEN,
};
use ftpgate::policy::parse_policy;

const IAC: u8 = 0xff;

/// The smallest policy the loader accepts (one listener, one backend, one role, one user).
const MINIMAL_POLICY: &str = r#"{"listeners":[{"address":"0.0.0.0:2121"}],"backends":{"files":{"servers":["10.0.0.11:21"]}},"roles":{"download":{"allow":["RETR","LIST","CWD","PWD"]}},"users":{"alice":{"role":"download","backend":"files"}}}"#;

/// `default` cases, or `PROPTEST_CASES` times `default / 256` when that variable is set (so
/// `PROPTEST_CASES=25600` runs every property a hundred times longer).
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default, |n| (n / 256).max(1).saturating_mul(default));
    ProptestConfig::with_cases(cases)
}

/// Config for the cheap properties.
fn cheap() -> ProptestConfig {
    config(256)
}

/// Config for the properties that build large inputs (multi-kilobyte lines, many lines).
fn heavy() -> ProptestConfig {
    config(48)
}

mod addresses;
mod commands;
mod framing;
mod helpers;
mod policy;
mod replies;
mod strategies;

use helpers::*;
use strategies::*;
