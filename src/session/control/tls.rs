//! The TLS commands toward the client (RFC 4217): AUTH, PBSZ, PROT, CCC, and the TLS level
//! a session must meet.

use super::*;

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
        if self.tls_active {
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
        self.tls_active = true;
        if mechanism == "TLS-P" || mechanism == "SSL" {
            // RFC 4217 §4: the historical AUTH SSL and TLS-P imply protected data.
            self.data_protected = true;
        }
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
        if !self.tls_active {
            return self.local(cmd, "deny", codes::BAD_SEQUENCE, "Use AUTH TLS first.", out);
        }
        let arg = String::from_utf8_lossy(&cmd.arg)
            .trim()
            .to_ascii_uppercase();
        match cmd.verb {
            Verb::Pbsz => {
                self.pbsz_done = true;
                self.local(cmd, "allow", codes::COMMAND_OK, "PBSZ=0", out)
            }
            Verb::Prot if !self.pbsz_done => {
                self.local(cmd, "deny", codes::BAD_SEQUENCE, "PBSZ first.", out)
            }
            Verb::Prot if arg == "P" => {
                self.data_protected = true;
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
                self.data_protected = false;
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
