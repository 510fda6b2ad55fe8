//! `workers`, `drain_timeout`, `user`, `listeners`, `passive` and `tls` (`load/listeners.rs`).

use super::*;

#[test]
fn workers_errors() {
    for bad in ["0", "257", "-1", "1.5", "\"many\"", "\"AUTO\"", "\"4\""] {
        let doc = minimal_with(&format!("\"workers\": {bad}"));
        assert_eq!(
            errors(&doc),
            ["6:12: workers: must be \"auto\" or a number of worker processes from 1 to 256"],
            "{bad}"
        );
    }
    assert_eq!(
        parse(&minimal_with("\"workers\": 256")).workers,
        Workers::Count(256)
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": 1")).workers,
        Workers::Count(1)
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": \"auto\"")).workers,
        Workers::Auto
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": null")).workers,
        Workers::Auto
    );
}

#[test]
fn listener_errors() {
    let doc = MINIMAL.replace(r#"[{ "address": "0.0.0.0:2121" }]"#, "[]");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "[]",
            "listeners: at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]"
        )]
    );
    let doc = MINIMAL.replace(
        "  \"listeners\": [{ \"address\": \"0.0.0.0:2121\" }],\n",
        "",
    );
    assert_eq!(
        errors(&doc),
        [
            "1:1: listeners: at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]"
        ]
    );
    expect_one(
        LISTENER,
        "{ }",
        "{ }",
        "listeners[0]: \"address\" is missing (e.g. \"0.0.0.0:21\")",
    );
    expect_one(
        "0.0.0.0:2121",
        "localhost:21",
        "\"localhost:21\"",
        "listeners[0].address: \"localhost:21\": use an IP address; ftpgate does not resolve names",
    );
    expect_one(
        "0.0.0.0:2121",
        "0.0.0.0:0",
        "\"0.0.0.0:0\"",
        "listeners[0].address: \"0.0.0.0:0\": port 0 is not allowed",
    );
    expect_one(
        "0.0.0.0:2121",
        "::1:21",
        "\"::1:21\"",
        "listeners[0].address: \"::1:21\" has no port; write IP:PORT, e.g. \"[::1:21]:21\"",
    );
    expect_one(
        "0.0.0.0:2121",
        "0.0.0.0:99999",
        "\"0.0.0.0:99999\"",
        "listeners[0].address: \"0.0.0.0:99999\" is not an IP:PORT address (e.g. \"0.0.0.0:21\" or \"[::1]:21\")",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "tls": "explict" }"#,
        "\"explict\"",
        "listeners[0].tls: unknown value \"explict\"; expected \"none\", \"explicit\" or \"implicit\"",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "require": "always" }"#,
        "\"always\"",
        "listeners[0].require: unknown value \"always\"; expected \"none\", \"login\" or \"all\"",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121" }, { "address": "0.0.0.0:2121" }"#,
        "\"0.0.0.0:2121\" }]",
        "listeners[1].address: 0.0.0.0:2121 is already used by listeners[0]",
    );
}

#[test]
fn passive_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "\"50000-\"",
            "\"50000-\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\", or one port",
        ),
        (
            "\"a-b\"",
            "\"a-b\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\", or one port",
        ),
        (
            "\"+5000-6000\"",
            "\"+5000-6000\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\", or one port",
        ),
        (
            "\"\"",
            "\"\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\", or one port",
        ),
        (
            "\"1000-2000\"",
            "\"1000-2000\": passive ports must be 1024 or higher (no privileged ports)",
        ),
        (
            "\"60000-70000\"",
            "\"60000-70000\": ports go from 1024 to 65535",
        ),
        (
            "\"50999-50000\"",
            "\"50999-50000\": the first port is higher than the last",
        ),
        (
            "\"2000-2200\"",
            "the range contains the port of listener 0.0.0.0:2121",
        ),
    ];
    for &(ports, message) in cases {
        let doc = minimal_with(&format!("\"passive\": {{ \"ports\": {ports} }}"));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{ports} }}"),
                &format!("passive.ports: {message}")
            )],
            "{ports}"
        );
    }
    let policy = parse(&minimal_with(r#""passive": { "ports": "1024-1024" }"#));
    assert_eq!(policy.passive.ports, (1024, 1024));
    let policy = parse(&minimal_with(r#""passive": { "ports": "60000 - 65535" }"#));
    assert_eq!(policy.passive.ports, (60000, 65535));
    // One port: the single data port (`shared`).
    let policy = parse(&minimal_with(r#""passive": { "ports": "50000" }"#));
    assert_eq!(policy.passive.ports, (50000, 50000));
    assert!(!policy.passive.shared, "not shared unless asked");
    let policy = parse(&minimal_with(
        r#""passive": { "ports": "50000", "shared": true }"#,
    ));
    assert!(policy.passive.shared);

    let cases: &[(&str, &str)] = &[
        (
            "\"nat.example.com\"",
            "\"nat.example.com\": use an IP address; ftpgate does not resolve names",
        ),
        ("\"203.0.113\"", "\"203.0.113\" is not an IP address"),
        (
            "\"0.0.0.0\"",
            "0.0.0.0 cannot be advertised; name the address clients connect to",
        ),
        (
            "\"2001:db8::1\"",
            "must be an IPv4 address: it only goes into 227 replies to PASV (EPSV replies carry no address)",
        ),
    ];
    for &(advertise, message) in cases {
        let doc = minimal_with(&format!("\"passive\": {{ \"advertise\": {advertise} }}"));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                advertise,
                &format!("passive.advertise: {message}")
            )],
            "{advertise}"
        );
    }

    // Four workers cannot share two ports.
    let doc = minimal_with(r#""workers": 4, "passive": { "ports": "50000-50001" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "4,",
            "workers: 4 workers cannot share the 2 passive ports of passive.ports: each worker needs at least one"
        )]
    );
}

#[test]
fn shared_passive_ports_are_refused_behind_a_balancer_and_need_a_port_per_worker() {
    let doc = minimal_with(
        r#""passive": { "ports": "50000-50009", "shared": true, "proxy_protocol": true,
        "proxy_from": ["192.0.2.0/24"] }"#,
    );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "true, \"proxy_protocol\"",
            "passive.shared: cannot be combined with \"proxy_protocol\": true (data connections \
             through a balancer all come from its address; a shared port tells sessions apart \
             by the client's address)"
        )]
    );
    let doc = minimal_with(r#""passive": { "shared": "yes" }"#);
    assert_eq!(errors(&doc).len(), 1, "a boolean: {:?}", errors(&doc));
    // Two workers and one shared port: the same rule as for any range.
    let doc = minimal_with(r#""workers": 2, "passive": { "ports": "50000", "shared": true }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "2,",
            "workers: 2 workers cannot share the 1 passive ports of passive.ports: each worker needs at least one"
        )]
    );
}

#[test]
fn a_global_tls_requirement_is_refused_next_to_a_plain_listener() {
    let doc = r#"{
  "listeners": [ { "address": "0.0.0.0:21", "tls": "explicit" },
                 { "address": "0.0.0.0:2121" } ],
  "tls": { "certificate": "/c.pem", "private_key": "/k.pem", "require": "login" },
  "backends": { "files": { "servers": ["10.0.0.11:21"] } },
  "roles": { "download": { "allow": ["RETR"] } },
  "users": { "alice": { "role": "download", "backend": "files" } }
}"#;
    let errors = errors(doc);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, column) = at(doc, "\"login\"");
    assert!(
        errors[0].starts_with(&format!(
            "{line}:{column}: tls.require: \"login\" also applies to listeners[1]"
        )),
        "{errors:?}"
    );
}

#[test]
fn tls_section_and_listener_tls() {
    let doc = with("").replacen(
        "{ \"listeners\": [{ \"address\": \"0.0.0.0:21\" }]",
        r#"{ "tls": { "certificate": "/etc/c.pem", "private_key": "/etc/k.pem", "require": "login" },
            "listeners": [{ "address": "0.0.0.0:21", "tls": "explicit", "require": "all" },
                          { "address": "0.0.0.0:990", "tls": "implicit", "proxy_protocol": true,
                            "proxy_from": ["10.0.0.5", "10.1.0.0/16"] }]"#,
        1,
    );
    let (policy, messages) = validate(&doc);
    assert_eq!(messages, Vec::<String>::new());
    assert_eq!(
        policy.tls,
        Some(TlsPolicy::single(
            PathBuf::from("/etc/c.pem"),
            PathBuf::from("/etc/k.pem"),
            TlsRequire::Login,
        ))
    );
    assert_eq!(policy.listeners[0].tls, TlsMode::Explicit);
    assert_eq!(policy.listeners[0].require, TlsRequire::All);
    assert_eq!(policy.listeners[1].tls, TlsMode::Implicit);
    assert!(policy.listeners[1].proxy_protocol);
    let summary = policy.summary();
    assert!(
        summary.contains("  0.0.0.0:21 tls explicit, require all\n"),
        "{summary}"
    );
    assert!(
        summary
            .contains("  0.0.0.0:990 tls implicit, PROXY protocol from 10.0.0.5/32 10.1.0.0/16\n"),
        "{summary}"
    );
    assert!(summary.contains("tls: certificate /etc/c.pem, key /etc/k.pem, require login\n"));

    let doc = with("").replacen(
        "{ \"listeners\": [{ \"address\": \"0.0.0.0:21\" }]",
        r#"{ "tls": { "certificate": "c.pem" },
            "listeners": [{ "address": "0.0.0.0:21", "require": "login" }]"#,
        1,
    );
    assert_eq!(
        validate(&doc).1,
        [
            "listeners[0].require: requires TLS, but this listener has \"tls\": \"none\"",
            "tls.certificate: \"c.pem\" must be an absolute path (starting with /)",
            "tls: \"private_key\" is missing",
        ]
    );
    let doc = with("").replacen(
        "\"0.0.0.0:21\" }",
        "\"0.0.0.0:21\", \"tls\": \"implicit\" }",
        1,
    );
    assert_eq!(
        validate(&doc).1,
        ["listeners[0].tls: \"implicit\" needs the \"tls\" section (certificate and private_key)"]
    );
}

#[test]
fn proxy_protocol_needs_the_balancers() {
    let proxy = r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true }"#;
    expect_one(
        LISTENER,
        proxy,
        "true",
        "listeners[0].proxy_protocol: needs \"proxy_from\": the load balancers' addresses, \
         e.g. [\"10.0.0.5/32\"]",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true, "proxy_from": [] }"#,
        "[]",
        "listeners[0].proxy_from: must name at least one network: the load balancers' \
         addresses, e.g. [\"10.0.0.5/32\"]",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true, "proxy_from": ["10.0.0.300"] }"#,
        "\"10.0.0.300\"",
        "listeners[0].proxy_from[0]: \"10.0.0.300\" is not an address or network (e.g. \
         \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "proxy_from": ["10.0.0.5"] }"#,
        "\"proxy_from\"",
        "listeners[0].proxy_from: only applies with \"proxy_protocol\": true",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "proxy_protocol": "on" }"#,
        "\"on\"",
        "listeners[0].proxy_protocol: invalid type: string \"on\", expected a boolean",
    );

    // Passive data connections through the balancers: their own list, or the listeners'.
    let doc = minimal_with(r#""passive": { "proxy_protocol": true }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "true",
            "passive.proxy_protocol: needs \"proxy_from\": the balancers that forward the \
             passive ports (none of the listeners has \"proxy_protocol\" to borrow them from)"
        )]
    );
    let doc = minimal_with(r#""passive": { "proxy_from": ["10.0.0.5"] }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"proxy_from\"",
            "passive.proxy_from: only applies with \"proxy_protocol\": true"
        )]
    );
    let proxied = MINIMAL.replace(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true, "proxy_from": ["10.0.0.5"] },
           { "address": "0.0.0.0:2122", "proxy_protocol": true, "proxy_from": ["10.0.0.6/31"] }"#,
    );
    let body = proxied.strip_suffix("\n}").expect("ends with }");
    let policy = parse(&format!(
        "{body},\n\"passive\": {{ \"proxy_protocol\": true }}\n}}"
    ));
    let cidr = |t: &str| t.parse::<crate::policy::Cidr>().unwrap();
    assert_eq!(policy.listeners[0].proxy_from, [cidr("10.0.0.5")]);
    assert_eq!(
        policy.passive.proxy_from,
        [cidr("10.0.0.5"), cidr("10.0.0.6/31")],
        "the listeners' balancers"
    );
    let policy = parse(&format!(
        "{body},\n\"passive\": {{ \"proxy_protocol\": true, \"proxy_from\": [\"10.9.0.0/16\"] }}\n}}"
    ));
    assert_eq!(policy.passive.proxy_from, [cidr("10.9.0.0/16")], "its own");
    assert!(
        policy
            .summary()
            .contains("the address each client connected to, PROXY protocol from 10.9.0.0/16\n"),
        "{}",
        policy.summary()
    );
    let policy = parse(&proxied);
    assert!(
        policy.passive.proxy_from.is_empty(),
        "data from the clients by default"
    );
}

#[test]
fn the_metrics_port_must_be_on_loopback() {
    let doc = minimal_with(r#""metrics": { "listen": "127.0.0.1:9464" }"#);
    assert_eq!(parse(&doc).metrics_listen, Some(addr("127.0.0.1:9464")));
    assert_eq!(parse(MINIMAL).metrics_listen, None);
    let doc = minimal_with(r#""metrics": { "listen": "[::1]:9464" }"#);
    assert_eq!(parse(&doc).metrics_listen, Some(addr("[::1]:9464")));
    let doc = minimal_with(r#""metrics": { "listen": "0.0.0.0:9464" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"0.0.0.0:9464\"",
            "metrics.listen: \"0.0.0.0:9464\": the metrics port must be on a loopback address \
             (127.0.0.0/8 or ::1): it has no authentication"
        )]
    );
    let doc = minimal_with(r#""metrics": { "listen": "127.0.0.1" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"127.0.0.1\"",
            "metrics.listen: \"127.0.0.1\" has no port; write IP:PORT, e.g. \"127.0.0.1:9464\""
        )]
    );
}

#[test]
fn passive_advertise_by_the_clients_network() {
    let doc = minimal_with(
        r#""passive": { "advertise": [
    { "from": ["10.0.0.0/8", "192.168.0.0/16"] },
    { "from": ["172.16.0.0/12"], "address": "172.16.0.1" },
    { "address": "203.0.113.7" } ] }"#,
    );
    let passive = parse(&doc).passive;
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    // Inside the NAT: the address the client connected to.
    assert_eq!(passive.advertise_for(ip("10.1.2.3")), None);
    assert_eq!(passive.advertise_for(ip("192.168.7.7")), None);
    assert_eq!(
        passive.advertise_for(ip("172.20.0.9")),
        Some(ip("172.16.0.1"))
    );
    // Outside, and an IPv4 client seen through an IPv6 socket.
    assert_eq!(
        passive.advertise_for(ip("198.51.100.1")),
        Some(ip("203.0.113.7"))
    );
    assert_eq!(passive.advertise_for(ip("::ffff:10.0.0.1")), None);
    // Without a catch-all rule, clients outside every network get their own address.
    let doc = minimal_with(
        r#""passive": { "advertise": [ { "from": ["10.0.0.0/8"], "address": "10.0.0.1" } ] }"#,
    );
    assert_eq!(parse(&doc).passive.advertise_for(ip("198.51.100.1")), None);
}

#[test]
fn passive_advertise_rule_errors() {
    let doc = minimal_with(
        r#""passive": { "advertise": [ { "address": "203.0.113.7" }, { "from": ["10.0.0.0/8"] } ] }"#,
    );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            r#"{ "address": "203.0.113.7" }"#,
            "passive.advertise[0]: a rule without \"from\" takes every client: it must be the \
             last one (the rules after it would never match)"
        )]
    );
    let doc = minimal_with(
        r#""passive": { "advertise": [ { "from": ["10.0.0.0/33"], "address": "0.0.0.0" } ] }"#,
    );
    let found = errors(&doc);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("passive.advertise[0].from[0]"),
        "{found:?}"
    );
    assert!(
        found[1].contains("passive.advertise[0].address: 0.0.0.0 cannot be advertised"),
        "{found:?}"
    );
    let doc =
        minimal_with(r#""passive": { "advertise": [ { "from": [], "address": "10.0.0.1" } ] }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "[]",
            "passive.advertise[0].from: names no network"
        )]
    );
    let doc = minimal_with(r#""passive": { "advertise": [ { "form": ["10.0.0.0/8"] } ] }"#);
    let found = errors(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("unknown field `form`"), "{found:?}");
}

#[test]
fn several_certificates_in_the_order_of_preference() {
    let doc = minimal_with(
        r#""tls": { "certificates": [
    { "certificate": "/etc/ec.pem", "private_key": "/etc/ec.key" },
    { "certificate": "/etc/rsa.pem", "private_key": "/etc/rsa.key" } ] }"#,
    );
    let policy = parse(&doc);
    let tls = policy.tls.as_ref().expect("tls");
    let listed: Vec<(&str, &str)> = tls
        .identities
        .iter()
        .map(|i| {
            (
                i.certificate.to_str().unwrap_or_default(),
                i.private_key.to_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("/etc/ec.pem", "/etc/ec.key"),
            ("/etc/rsa.pem", "/etc/rsa.key")
        ]
    );
    assert_eq!(tls.identity_path(1).to_string(), "tls.certificates[1]");
    let summary = policy.summary();
    assert!(
        summary.contains(
            "tls: certificates /etc/ec.pem (key /etc/ec.key), /etc/rsa.pem (key /etc/rsa.key), \
             require none\n"
        ),
        "{summary}"
    );
    // The single pair still reports at `tls` itself.
    let single = parse(&minimal_with(
        r#""tls": { "certificate": "/etc/c.pem", "private_key": "/etc/k.pem" }"#,
    ));
    let tls = single.tls.as_ref().expect("tls");
    assert_eq!(tls.identities.len(), 1);
    assert_eq!(tls.identity_path(0).to_string(), "tls");
}

#[test]
fn certificate_list_errors() {
    let both = minimal_with(
        r#""tls": { "certificate": "/etc/c.pem", "private_key": "/etc/k.pem",
           "certificates": [{ "certificate": "/etc/e.pem", "private_key": "/etc/e.key" }] }"#,
    );
    assert_eq!(
        errors(&both),
        [err_at(
            &both,
            "[{ \"certificate\": \"/etc/e.pem\"",
            "tls.certificates: give either \"certificate\" and \"private_key\" or \
             \"certificates\", not both"
        )]
    );
    let empty = minimal_with(r#""tls": { "certificates": [] }"#);
    assert_eq!(
        errors(&empty),
        [err_at(
            &empty,
            "[]",
            "tls.certificates: needs at least one certificate and key"
        )]
    );
    let entry = r#"{ "certificate": "/etc/e.pem", "private_key": "/etc/e.key" }"#;
    let five = minimal_with(&format!(
        r#""tls": {{ "certificates": [{}] }}"#,
        [entry; 5].join(", ")
    ));
    assert_eq!(
        errors(&five),
        [err_at(
            &five,
            "[{ \"certificate\": \"/etc/e.pem\", \"private_key\": \"/etc/e.key\" }, ",
            "tls.certificates: at most 4 certificates (one per key type is all a client ever \
             chooses from)"
        )]
    );
    let incomplete = minimal_with(
        r#""tls": { "certificates": [{ "certificate": "/etc/e.pem", "private_key": "/etc/e.key" },
                           { "certificate": "e.pem" }, { "privat_key": "/k" }] }"#,
    );
    assert_eq!(
        errors(&incomplete),
        [
            err_at(
                &incomplete,
                "{ \"certificate\": \"e.pem\"",
                "tls.certificates[1]: \"private_key\" is missing"
            ),
            err_at(
                &incomplete,
                "\"e.pem\"",
                "tls.certificates[1].certificate: \"e.pem\" must be an absolute path (starting \
                 with /)"
            ),
            err_at(
                &incomplete,
                "{ \"privat_key\"",
                "tls.certificates[2]: \"certificate\" is missing"
            ),
            err_at(
                &incomplete,
                "{ \"privat_key\"",
                "tls.certificates[2]: \"private_key\" is missing"
            ),
            err_at(
                &incomplete,
                "\"privat_key\"",
                "tls.certificates[2].privat_key: unknown field `privat_key`, expected \
                 `certificate` or `private_key`"
            ),
        ]
    );
}
