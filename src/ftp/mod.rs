//! The FTP wire format, as pure functions and small state machines.
//!
//! Nothing here performs I/O or reads a clock. Every parser has a hard length limit and
//! reports malformed input as a value, never as a panic.

pub mod address;
pub mod codes;
pub mod command;
pub mod hash;
pub mod line;
pub mod path;
pub mod permission;
pub mod reply;
