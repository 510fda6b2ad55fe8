//! `USER name@target` (`routing.user_at_host`): the target is only a name of
//! `routing.targets`; the user's own policy applies; the backend sees `USER name`.

use super::*;
use crate::session::control::login::{UserTarget, split_target};

const ROUTED: &str = r#"{
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "backends": { "home": { "servers": ["127.0.0.1:21"] },
                "edi": { "servers": ["127.0.0.1:2021"] } },
  "roles": { "ro": { "allow": ["RETR", "LIST", "PWD"] } },
  "users": { "alice": { "role": "ro", "backend": "home" } },
  "routing": { "user_at_host": true, "targets": { "mainframe": "edi" } }
}"#;

fn routed_script(user_at_host: bool) -> Script {
    let text = ROUTED.replace(
        "\"user_at_host\": true",
        &format!("\"user_at_host\": {user_at_host}"),
    );
    let policy = match parse_policy(&text) {
        Ok(p) => p,
        Err(errors) => panic!("test policy invalid: {errors:?}"),
    };
    let (fsm, _) = ControlFsm::new(config());
    Script { fsm, policy }
}

fn login_record(actions: &[Action]) -> Option<&AuditRecord> {
    actions.iter().find_map(|a| match a {
        Action::Audit(r @ AuditRecord::Login { .. }) => Some(r),
        _ => None,
    })
}

#[test]
fn names_split_at_the_last_at_sign_only_when_routing_is_on() {
    let on = crate::policy::Routing {
        user_at_host: true,
        targets: Default::default(),
    };
    let off = crate::policy::Routing::default();
    let routed = |name: &str, target: &str| UserTarget::Routed {
        name: name.into(),
        target: target.into(),
    };
    assert_eq!(split_target("alice@edi", &on), routed("alice", "edi"));
    assert_eq!(split_target("a@b@edi", &on), routed("a@b", "edi"));
    assert_eq!(split_target("alice@", &on), routed("alice", ""));
    assert_eq!(split_target("@edi", &on), routed("", "edi"));
    assert_eq!(
        split_target("alice@127.0.0.1:22", &on),
        routed("alice", "127.0.0.1:22")
    );
    assert_eq!(
        split_target("alice", &on),
        UserTarget::Plain("alice".into())
    );
    assert_eq!(
        split_target("alice@edi", &off),
        UserTarget::Plain("alice@edi".into())
    );
}

#[test]
fn a_known_target_logs_in_to_its_pool_as_the_plain_user() {
    let mut s = routed_script(true);
    assert_eq!(client_replies(&s.line("USER alice@mainframe")), vec![331]);
    let user = s.fsm.user().expect("user");
    assert_eq!(user.name, "alice", "alice's policy applies");
    assert_eq!(user.target.as_deref(), Some("mainframe"));
    assert_eq!(
        user.known
            .as_ref()
            .map(|k| (k.role.as_str(), k.backend.as_str())),
        Some(("ro", "edi")),
        "alice's role, the target's pool"
    );
    assert!(s.line("PASS secret").contains(&Action::ConnectServer));
    s.fsm.set_server("127.0.0.1:2021".parse().expect("addr"));
    s.event(Event::ServerConnected);
    assert_eq!(
        server_commands(&s.event(reply(220, "hello"))),
        vec!["USER alice"],
        "the backend never sees @target"
    );
    s.event(reply(331, "pw"));
    let actions = s.event(reply(230, "in"));
    assert_eq!(client_replies(&actions), vec![230]);
    assert_eq!(
        login_record(&actions),
        Some(&AuditRecord::Login {
            result: "ok",
            role: Some("ro".into()),
            backend: Some("edi".into()),
            server: Some("127.0.0.1:2021".into()),
            target: Some("mainframe".into()),
            reason: None,
        })
    );
}

#[test]
fn hosts_addresses_and_unknown_targets_fail_like_a_wrong_password() {
    for given in [
        "alice@10.0.0.1",
        "alice@127.0.0.1:22",
        "alice@unknown",
        "alice@",
        "alice@[::1]:21",
        "alice@home",
    ] {
        let mut s = routed_script(true);
        assert_eq!(client_replies(&s.line(&format!("USER {given}"))), vec![331]);
        let actions = s.line("PASS secret");
        assert!(
            !actions.contains(&Action::ConnectServer),
            "{given}: no connection"
        );
        assert!(client_replies(&actions).is_empty(), "{given}: 530 waits");
        assert!(actions.contains(&Action::SetTimer(
            TimerKind::FailedLogin,
            Duration::from_millis(1000)
        )));
        assert!(actions.contains(&Action::LoginFailed), "{given}: counted");
        let target = given.rsplit_once('@').map(|(_, t)| t.to_string());
        assert_eq!(
            login_record(&actions),
            Some(&AuditRecord::Login {
                result: "failed",
                role: None,
                backend: None,
                server: None,
                target,
                reason: Some("unknown_target"),
            }),
            "{given}"
        );
        let actions = s.event(Event::Timer(TimerKind::FailedLogin));
        assert_eq!(client_replies(&actions), vec![530], "{given}");
        assert!(server_commands(&actions).is_empty());
    }
}

#[test]
fn with_routing_off_the_at_sign_is_part_of_the_name() {
    let mut s = routed_script(false);
    s.line("USER alice@mainframe");
    let user = s.fsm.user().expect("user");
    assert_eq!(user.name, "alice@mainframe");
    assert!(user.known.is_none() && user.target.is_none());
    let actions = s.line("PASS x");
    assert!(!actions.contains(&Action::ConnectServer));
    assert!(matches!(
        login_record(&actions),
        Some(AuditRecord::Login {
            reason: Some("unknown_user"),
            ..
        })
    ));
}
