//! How the client wants its next data connection: PASV and EPSV (a passive listener of
//! ftpgate's, answered with its own 227/229), PORT and EPRT (checked against bounce and FXP).

use std::net::{IpAddr, SocketAddr};

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PassiveKind {
    Pasv,
    Epsv,
}

/// The client's side of the data channel, from PASV/EPSV/PORT/EPRT to the end of the
/// transfer that uses it. Each state carries what it needs; nothing else says where the
/// client's data connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ClientData {
    /// No PASV, EPSV, PORT or EPRT, or the last one was used up.
    None,
    /// PASV or EPSV asked the shell for a listener; the reply (and its audit event) waits
    /// for it.
    Opening { kind: PassiveKind, arg: Vec<u8> },
    /// ftpgate's passive listener waits for the client.
    Listening,
    /// PORT or EPRT named this address (checked); ftpgate connects when a transfer asks.
    Active(SocketAddr),
    /// Connecting to the PORT/EPRT address for a transfer.
    Connecting,
    /// The connection is up (accepted or connected). `ready` once it may carry file data:
    /// at once in plain text, for a protected one once its TLS handshake is finished and
    /// accepted (session reuse).
    Up { ready: bool },
}

impl ClientData {
    /// Ready for file data.
    pub(super) fn ready(&self) -> bool {
        matches!(self, ClientData::Up { ready: true })
    }

    /// Up at the TCP level, its TLS handshake not accepted yet.
    pub(super) fn handshaking(&self) -> bool {
        matches!(self, ClientData::Up { ready: false })
    }
}

impl PassiveKind {
    pub(super) fn verb(self) -> &'static str {
        match self {
            PassiveKind::Pasv => "PASV",
            PassiveKind::Epsv => "EPSV",
        }
    }
}

impl ControlFsm {
    /// RFC 2428: after EPSV ALL only EPSV may set up data connections (a NAT in front of the
    /// client relies on it). True when `cmd` was refused for that.
    fn refused_after_epsv_all(&mut self, cmd: &Command, out: &mut Vec<Action>) -> bool {
        if !self.epsv_all {
            return false;
        }
        self.local(
            cmd,
            "deny",
            codes::BAD_SEQUENCE,
            "Only EPSV is allowed after EPSV ALL.",
            out,
        );
        true
    }

    pub(super) fn on_pasv(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.refused_after_epsv_all(cmd, out) {
            return;
        }
        self.client = ClientData::Opening {
            kind: PassiveKind::Pasv,
            arg: Vec::new(),
        };
        out.push(Action::OpenPassive);
    }

    pub(super) fn on_epsv(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if !self.config.epsv_reachable {
            return self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED,
                "EPSV is not available behind this load balancer; use PASV.",
                out,
            );
        }
        match parse_epsv_arg(&cmd.arg) {
            Ok(EpsvArg::All) => {
                self.epsv_all = true;
                self.local(cmd, "allow", codes::COMMAND_OK, "EPSV ALL ok.", out)
            }
            Ok(EpsvArg::Family(af)) if af != self.client_family() => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                if self.client_family() == 1 {
                    "Network protocol not supported, use (1)"
                } else {
                    "Network protocol not supported, use (2)"
                },
                out,
            ),
            Ok(_) => {
                self.client = ClientData::Opening {
                    kind: PassiveKind::Epsv,
                    arg: cmd.arg.clone(),
                };
                out.push(Action::OpenPassive);
            }
            Err(crate::ftp::address::AddressError::BadFamily) => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2)",
                out,
            ),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Bad EPSV argument.",
                out,
            ),
        }
    }

    pub(super) fn client_family(&self) -> u8 {
        match self.config.client_ip {
            IpAddr::V4(_) => 1,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => 1,
            IpAddr::V6(_) => 2,
        }
    }

    pub(super) fn on_passive_opened(&mut self, addr: SocketAddr, out: &mut Vec<Action>) {
        let ClientData::Opening { kind, arg } =
            std::mem::replace(&mut self.client, ClientData::None)
        else {
            return;
        };
        let reply = match (kind, addr) {
            (PassiveKind::Pasv, SocketAddr::V4(v4)) => format_pasv_reply(v4),
            (PassiveKind::Pasv, SocketAddr::V6(v6)) => match v6.ip().to_ipv4_mapped() {
                Some(ip) => format_pasv_reply(std::net::SocketAddrV4::new(ip, v6.port())),
                None => {
                    self.abort_data(out);
                    self.audit_command("PASV", b"", "allow", codes::CANT_OPEN_DATA, out);
                    return self.reply(codes::CANT_OPEN_DATA, "PASV is IPv4 only; use EPSV.", out);
                }
            },
            (PassiveKind::Epsv, addr) => format_epsv_reply(addr.port()),
        };
        self.client = ClientData::Listening;
        let code = reply.code;
        out.push(Action::SendClient(reply));
        self.audit_command(kind.verb(), &arg, "allow", code, out);
        out.push(Action::SetTimer(
            TimerKind::DataConnect,
            secs(self.data_connect_timeout()),
        ));
    }

    pub(super) fn on_port(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.refused_after_epsv_all(cmd, out) {
            return;
        }
        match parse_port_arg(&cmd.arg) {
            Ok(addr) => self.set_active(cmd, SocketAddr::V4(addr), out),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal PORT command.",
                out,
            ),
        }
    }

    pub(super) fn on_eprt(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.refused_after_epsv_all(cmd, out) {
            return;
        }
        match parse_eprt_arg(&cmd.arg) {
            Ok(addr) => self.set_active(cmd, addr, out),
            Err(crate::ftp::address::AddressError::BadFamily) => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2)",
                out,
            ),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal EPRT command.",
                out,
            ),
        }
    }

    pub(super) fn set_active(&mut self, cmd: &Command, addr: SocketAddr, out: &mut Vec<Action>) {
        // SECURITY: no bounce, no FXP. The data connection may only go back to the client's
        // own control-connection address, and never to a privileged port.
        let fxp_allowed = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .is_some_and(|k| k.allow_fxp_to.iter().any(|c| c.contains(addr.ip())));
        if !(same_ip(addr.ip(), self.config.client_ip) || fxp_allowed) || addr.port() < 1024 {
            out.push(Action::Audit(AuditRecord::PolicyViolation {
                kind: "bounce",
                detail: format!("{} named {addr}", cmd.verb.name()),
            }));
            return self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal PORT command: address not permitted.",
                out,
            );
        }
        self.abort_data(out);
        self.client = ClientData::Active(addr);
        let text = format!(
            "{} command successful. Consider using PASV.",
            cmd.verb.name()
        );
        self.local(cmd, "allow", codes::COMMAND_OK, &text, out);
    }

    /// The user's data connect timeout once known, else the default.
    pub(super) fn data_connect_timeout(&self) -> u64 {
        self.user_timeouts()
            .map_or(self.config.data_connect_timeout, |t| t.data_connect)
    }
}
