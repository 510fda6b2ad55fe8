//! The TLS commands toward the client (RFC 4217): AUTH, PBSZ, PROT, CCC, and the TLS level
//! a session must meet.

use super::*;

/// TLS toward the client, as the TLS commands left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientTls {
    /// The control connection is plain text.
    Plain,
    /// The control connection is under TLS (implicit, or after AUTH). `pbsz`: PBSZ was
    /// given (RFC 4217 wants it before PROT); `private`: PROT P, every data connection is
    /// TLS.
    Secured { pbsz: bool, private: bool },
}

impl ClientTls {
    pub(super) fn active(self) -> bool {
        matches!(self, ClientTls::Secured { .. })
    }

    pub(super) fn data_protected(self) -> bool {
        matches!(self, ClientTls::Secured { private: true, .. })
    }
}

impl ControlFsm {
    /// The TLS level the session must meet: the listener's and global requirement,
    /// tightened by the user's own once known.
    pub(super) fn tls_required(&self) -> TlsRequire {
        let user = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .map_or(TlsRequire::None, |k| k.tls_require);
        self.config.tls_require.max(user)
    }

    /// AUTH TLS (and its aliases): 234, then the shell starts TLS once the reply is out.
    pub(super) fn on_auth(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let mechanism = String::from_utf8_lossy(&cmd.arg)
            .trim()
            .to_ascii_uppercase();
        if !self.config.tls_available {
            return self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED,
                "TLS is not enabled on this gateway.",
                out,
            );
        }
        if self.tls.active() {
            return self.local(cmd, "deny", codes::BAD_SEQUENCE, "Already using TLS.", out);
        }
        if !matches!(mechanism.as_str(), "TLS" | "SSL" | "TLS-C" | "TLS-P") {
            return self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED_PARAM,
                "Unknown AUTH mechanism; use AUTH TLS.",
                out,
            );
        }
        self.tls = ClientTls::Secured {
            pbsz: false,
            // RFC 4217 §4: the historical AUTH SSL and TLS-P imply protected data.
            private: mechanism == "TLS-P" || mechanism == "SSL",
        };
        self.local(
            cmd,
            "allow",
            codes::AUTH_OK,
            "Proceed with negotiation.",
            out,
        );
        out.push(Action::StartClientTls);
    }

    /// PBSZ, PROT and CCC (RFC 4217).
    pub(super) fn on_tls_command(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let ClientTls::Secured { pbsz, private } = self.tls else {
            return self.local(cmd, "deny", codes::BAD_SEQUENCE, "Use AUTH TLS first.", out);
        };
        let arg = String::from_utf8_lossy(&cmd.arg)
            .trim()
            .to_ascii_uppercase();
        match cmd.verb {
            Verb::Pbsz => {
                self.tls = ClientTls::Secured {
                    pbsz: true,
                    private,
                };
                self.local(cmd, "allow", codes::COMMAND_OK, "PBSZ=0", out)
            }
            Verb::Prot if !pbsz => self.local(cmd, "deny", codes::BAD_SEQUENCE, "PBSZ first.", out),
            Verb::Prot if arg == "P" => {
                self.tls = ClientTls::Secured {
                    pbsz,
                    private: true,
                };
                self.local(cmd, "allow", codes::COMMAND_OK, "PROT now Private.", out)
            }
            Verb::Prot if arg == "C" => {
                if self.tls_required() == TlsRequire::All {
                    return self.local(
                        cmd,
                        "deny",
                        codes::REQUEST_DENIED_POLICY,
                        "PROT C refused: data connections must be protected.",
                        out,
                    );
                }
                self.tls = ClientTls::Secured {
                    pbsz,
                    private: false,
                };
                self.local(cmd, "allow", codes::COMMAND_OK, "PROT now Clear.", out)
            }
            Verb::Prot if arg == "S" || arg == "E" => self.local(
                cmd,
                "deny",
                codes::PROT_LEVEL_NOT_SUPPORTED,
                "PROT S and E are not supported.",
                out,
            ),
            Verb::Prot => self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED_PARAM,
                "PROT needs C or P.",
                out,
            ),
            // SECURITY: CCC would drop the control channel back to plaintext.
            _ => self.local(
                cmd,
                "deny",
                codes::REQUEST_DENIED_POLICY,
                "CCC is not permitted.",
                out,
            ),
        }
    }
}
