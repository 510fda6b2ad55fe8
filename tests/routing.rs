//! Backend routing details: backend connections leave from the pinned `source_address`,
//! and a pool with a dead server still serves from the live one.

mod common;

use std::net::{Ipv4Addr, TcpListener};

use serde_json::json;

use common::*;

#[test]
fn backend_connections_leave_from_the_pinned_source_address() {
    let vs = Vsftpd::start();
    let data = random_bytes(100_000, 81);
    vs.put_file("pub/s.bin", &data);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(
            &["backends", "vsftpd", "source_address"],
            json!("127.0.0.5"),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/s.bin"), data);
    let log = vs.log();
    assert!(
        log.contains("Client \"127.0.0.5\""),
        "vsftpd saw the pinned address: {log}"
    );
    assert!(!log.contains("Client \"127.0.0.1\""), "{log}");
}

#[test]
fn a_pool_with_a_dead_server_serves_from_the_live_one() {
    let vs = Vsftpd::start();
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let gate = Ftpgate::builder()
        .backend("pool", dead_addr)
        .standard_roles()
        .user("anonymous", "full", "pool")
        .set(
            &["backends", "pool", "servers"],
            json!([dead_addr.to_string(), vs.addr().to_string()]),
        )
        .set(&["backends", "pool", "balance"], json!("first-available"))
        .start();
    for _ in 0..3 {
        let mut c = Ftp::connect(gate.addr());
        c.login_ok("anonymous", "x");
        assert_eq!(c.cmd("PWD").0, 257);
        assert_eq!(c.cmd("QUIT").0, 221);
    }
}
