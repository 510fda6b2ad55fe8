//! `"enforce": false`: what the role refuses is forwarded and audited as would_deny; what
//! no role can allow stays refused.

use super::*;

fn commands(actions: &[Action]) -> Vec<(&str, &str, u16)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Command {
                verb,
                decision,
                reply,
                ..
            }) => Some((verb.as_str(), *decision, *reply)),
            _ => None,
        })
        .collect()
}

fn exceptions(actions: &[Action]) -> Vec<(&str, &str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::PolicyException { kind, detail }) => {
                Some((*kind, detail.as_str()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_refused_command_is_forwarded_and_audited_as_would_deny() {
    let mut s = Script::logged_in("trial");
    let actions = s.line("DELE f");
    assert_eq!(server_commands(&actions), vec!["DELE f"]);
    assert!(client_replies(&actions).is_empty());
    let found = exceptions(&actions);
    assert_eq!(found.len(), 1, "{actions:?}");
    assert_eq!(found[0].0, "would_deny");
    assert!(found[0].1.contains("roles.ro.allow"), "{}", found[0].1);
    assert!(found[0].1.contains("DELE"), "{}", found[0].1);
    let actions = s.event(reply(250, "deleted"));
    assert_eq!(client_replies(&actions), vec![250]);
    assert_eq!(commands(&actions), vec![("DELE", "would_deny", 250)]);
    // The next allowed command is a plain allow again.
    s.line("PWD");
    let actions = s.event(reply(257, "\"/\""));
    assert_eq!(commands(&actions), vec![("PWD", "allow", 257)]);
}

#[test]
fn what_no_role_can_allow_stays_refused_and_an_enforced_user_is_refused() {
    let mut s = Script::logged_in("trial");
    for (line, code) in [("REIN", 502), ("ACCT x", 502), ("SITE EXEC sh", 502)] {
        let actions = s.line(line);
        assert_eq!(client_replies(&actions), vec![code], "{line}");
        assert!(server_commands(&actions).is_empty(), "{line}");
        assert!(exceptions(&actions).is_empty(), "{line}");
    }
    let mut s = Script::logged_in("reader");
    let actions = s.line("DELE f");
    assert_eq!(client_replies(&actions), vec![550]);
    assert!(server_commands(&actions).is_empty());
    assert_eq!(commands(&actions), vec![("DELE", "deny", 550)]);
}
