//! The transfer event names both data connections by their two ends (`data_client`,
//! `data_client_gate`, `data_backend_gate`, `data_backend`): checked against what the client
//! itself sees of its data connection, in passive and in active mode, and against the
//! backend's address; a transfer refused before any relay has none of them.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use common::*;

fn addr(event: &Value, key: &str) -> SocketAddr {
    event[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing: {event}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}: {event}"))
}

fn transfers(gate: &Ftpgate, n: usize) -> Vec<Value> {
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= n
    });
    events
        .into_iter()
        .filter(|e| e["event"] == "transfer")
        .collect()
}

#[test]
fn transfer_events_name_both_data_connections_in_passive_and_active_mode() {
    let vs = Vsftpd::start();
    let data = random_bytes(64 * 1024, 91);
    vs.put_file("pub/a.bin", &data);
    let gate = Ftpgate::for_vsftpd(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);

    // Passive: the client connects to ftpgate's port.
    let mut conn = c.pasv_connect();
    let client_end = conn.local_addr().expect("local");
    let gate_end = conn.peer_addr().expect("peer");
    let (code, _) = c.cmd("RETR /pub/a.bin");
    assert!(matches!(code, 125 | 150));
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
    let passive = transfers(&gate, 1).remove(0);
    assert_eq!(addr(&passive, "data_client"), client_end, "{passive}");
    assert_eq!(addr(&passive, "data_client_gate"), gate_end, "{passive}");
    let backend = addr(&passive, "data_backend");
    assert_eq!(backend.ip(), vs.addr().ip(), "{passive}");
    assert_ne!(backend.port(), vs.addr().port(), "the backend's data port");
    let toward = addr(&passive, "data_backend_gate");
    assert_ne!(toward, gate_end, "another connection");

    // Active: ftpgate connects to the client's PORT address.
    let listener = c.port_listen();
    let listen_at = listener.local_addr().expect("addr");
    let (code, _) = c.cmd("RETR /pub/a.bin");
    assert!(matches!(code, 125 | 150));
    let mut conn = accept_within(&listener, Duration::from_secs(10));
    let gate_end = conn.peer_addr().expect("peer");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
    let active = transfers(&gate, 2).remove(1);
    assert_eq!(addr(&active, "data_client"), listen_at, "{active}");
    assert_eq!(addr(&active, "data_client_gate"), gate_end, "{active}");
    assert_eq!(addr(&active, "data_backend").ip(), vs.addr().ip());

    // A download of a file the backend does not have: no relay, no addresses.
    let _conn = c.pasv_connect();
    let (code, _) = c.cmd("RETR /pub/missing.bin");
    assert_eq!(code, 550);
    let failed = transfers(&gate, 3).remove(2);
    assert_eq!(failed["result"], "failed", "{failed}");
    assert!(failed.get("data_client").is_none(), "{failed}");
    assert_eq!(c.cmd("QUIT").0, 221);
}
