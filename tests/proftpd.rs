//! ProFTPD as a backend (the fourth real server of the suite): uploads and downloads through
//! ftpgate arrive intact, by SHA-256 on both ends.

mod common;

use common::*;

#[test]
fn uploads_and_downloads_through_ftpgate_to_proftpd_are_intact() {
    let pro = Proftpd::start();
    let down = random_bytes(2 * 1024 * 1024 + 3, 71);
    pro.put_file("pub/down.bin", &down);
    let gate = Ftpgate::builder()
        .backend("proftpd", pro.addr())
        .standard_roles()
        .user("anonymous", "full", "proftpd")
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(sha256_bytes(&c.retr("/pub/down.bin")), sha256_bytes(&down));
    let up = random_bytes(1024 * 1024 + 11, 72);
    c.stor("/pub/up.bin", &up);
    assert_eq!(
        sha256_file(&pro.root().join("pub/up.bin")),
        sha256_bytes(&up)
    );
    assert_eq!(c.cmd("QUIT").0, 221);
}
