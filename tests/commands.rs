//! The file and directory commands of the "full" role, relayed through ftpgate to vsftpd: each
//! test proves the effect on the backend's disk (or the exact reply), not only the reply code.

mod common;

use std::fs;
use std::io::Read;
use std::time::{Duration, SystemTime};

use common::*;

struct Setup {
    gate: Ftpgate,
    vs: Vsftpd,
}

fn setup() -> Setup {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    Setup { gate, vs }
}

impl Setup {
    /// A logged-in control connection as the full user, in binary mode.
    fn full(&self) -> Ftp {
        let mut c = Ftp::connect(self.gate.addr());
        c.login_ok("anonymous", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        c
    }
}

#[test]
fn list_and_nlst_contain_the_names() {
    let s = setup();
    s.vs.put_file("pub/alpha.txt", b"alpha");
    s.vs.put_file("pub/beta file.bin", &random_bytes(3000, 1));
    let mut c = s.full();

    let (code, listing) = c.list("LIST /pub");
    assert_eq!(code, 226);
    assert!(listing.contains("alpha.txt"), "{listing}");
    assert!(listing.contains("beta file.bin"), "{listing}");
    assert!(listing.contains("3000"), "LIST shows sizes: {listing}");

    let (code, names) = c.list("NLST /pub");
    assert_eq!(code, 226);
    let names: Vec<&str> = names
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert!(names.contains(&"alpha.txt"), "{names:?}");
    assert!(names.contains(&"beta file.bin"), "{names:?}");
    assert_eq!(c.cmd("QUIT").0, 221);

    // curl's directory listing (LIST) and name-only listing (NLST).
    let url = ftp_url(s.gate.addr(), "/pub/");
    let out = curl(&["-u", "anonymous:x", &url]);
    out.assert_success("curl LIST");
    assert!(
        out.stdout_str().contains("alpha.txt"),
        "{}",
        out.stdout_str()
    );
    let out = curl(&["-u", "anonymous:x", "--list-only", &url]);
    out.assert_success("curl NLST");
    let names: Vec<String> = out.stdout_str().lines().map(str::to_string).collect();
    assert!(names.iter().any(|n| n == "beta file.bin"), "{names:?}");
}

#[test]
fn size_is_213_with_the_exact_size() {
    let s = setup();
    s.vs.put_file("pub/sized.bin", &random_bytes(123_457, 2));
    let mut c = s.full();
    assert_eq!(
        c.cmd("SIZE /pub/sized.bin"),
        (213, "213 123457".to_string())
    );
    assert_eq!(c.cmd("SIZE /pub/missing.bin").0, 550);
}

#[test]
fn mdtm_is_213_with_the_mtime() {
    let s = setup();
    let path = s.vs.put_file("pub/dated.txt", b"x");
    // 2021-03-04 05:06:07 UTC
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_614_834_367);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let mut c = s.full();
    assert_eq!(
        c.cmd("MDTM /pub/dated.txt"),
        (213, "213 20210304050607".to_string())
    );
}

#[test]
fn cwd_cdup_pwd() {
    let s = setup();
    let mut c = s.full();
    assert_eq!(c.cmd("CWD /pub").0, 250);
    let (code, text) = c.cmd("PWD");
    assert_eq!(code, 257);
    assert!(text.contains("\"/pub\""), "{text}");
    assert_eq!(c.cmd("CDUP").0, 250);
    let (code, text) = c.cmd("PWD");
    assert_eq!(code, 257);
    assert!(text.contains("\"/\""), "{text}");
    assert_eq!(c.cmd("CWD /no-such-dir").0, 550);
}

#[test]
fn mkd_and_rmd_change_the_disk() {
    let s = setup();
    let mut c = s.full();
    let (code, text) = c.cmd("MKD /pub/newdir");
    assert_eq!(code, 257, "{text}");
    assert!(s.vs.pub_dir().join("newdir").is_dir());
    assert_eq!(c.cmd("RMD /pub/newdir").0, 250);
    assert!(!s.vs.pub_dir().join("newdir").exists());
}

#[test]
fn x_aliases_work_for_the_full_user() {
    let s = setup();
    let mut c = s.full();
    let (code, text) = c.cmd("XMKD /pub/xdir");
    assert_eq!(code, 257, "XMKD: {text}");
    assert!(
        s.vs.pub_dir().join("xdir").is_dir(),
        "XMKD did not create the folder"
    );
    assert_eq!(c.cmd("XCWD /pub/xdir").0, 250);
    let (code, text) = c.cmd("XPWD");
    assert_eq!(code, 257);
    assert!(text.contains("/pub/xdir"), "{text}");
    assert_eq!(c.cmd("XCUP").0, 250);
    let (code, text) = c.cmd("XPWD");
    assert_eq!(code, 257);
    assert!(text.contains("\"/pub\""), "{text}");
    assert_eq!(c.cmd("XRMD xdir").0, 250);
    assert!(
        !s.vs.pub_dir().join("xdir").exists(),
        "XRMD did not remove it"
    );
}

#[test]
fn rnfr_rnto_renames_on_disk() {
    let s = setup();
    s.vs.put_file("pub/old name.txt", b"renamed content");
    let mut c = s.full();
    assert_eq!(c.cmd("RNFR /pub/old name.txt").0, 350);
    assert_eq!(c.cmd("RNTO /pub/new name.txt").0, 250);
    assert!(!s.vs.pub_dir().join("old name.txt").exists());
    assert_eq!(
        fs::read(s.vs.pub_dir().join("new name.txt")).unwrap(),
        b"renamed content"
    );
}

#[test]
fn dele_removes_the_file() {
    let s = setup();
    let path = s.vs.put_file("pub/doomed.txt", b"bye");
    let mut c = s.full();
    assert_eq!(c.cmd("DELE /pub/doomed.txt").0, 250);
    assert!(!path.exists());
    assert_eq!(c.cmd("DELE /pub/doomed.txt").0, 550);
}

#[test]
fn appe_appends_on_disk() {
    let s = setup();
    let path = s.vs.put_file("pub/log.txt", b"hello ");
    let mut c = s.full();
    assert_eq!(c.transfer_out("APPE /pub/log.txt", b"world"), 226);
    assert_eq!(fs::read(&path).unwrap(), b"hello world");
    assert_eq!(c.cmd("QUIT").0, 221);

    // curl --append: a large tail.
    let local = temp_dir();
    let tail = local.path().join("tail.bin");
    let tail_data = random_bytes(1_000_000, 3);
    fs::write(&tail, &tail_data).unwrap();
    let out = curl(&[
        "-v",
        "-u",
        "anonymous:x",
        "--append",
        "-T",
        &tail.to_string_lossy(),
        &ftp_url(s.gate.addr(), "/pub/log.txt"),
    ]);
    out.assert_success("curl --append");
    assert!(sent_verb(&curl_sent(&out.stderr), "APPE"), "{}", out.stderr);
    let mut expected = b"hello world".to_vec();
    expected.extend_from_slice(&tail_data);
    assert_eq!(sha256_file(&path), sha256_bytes(&expected));
}

#[test]
fn rest_resumes_an_interrupted_download() {
    let s = setup();
    let data = random_bytes(BIG, 4);
    s.vs.put_file("pub/big.bin", &data);
    let sha = sha256_bytes(&data);

    // curl -C - continues from the size of the partial local file.
    let local = temp_dir();
    let partial = local.path().join("big.bin");
    let cut = 3_000_001;
    fs::write(&partial, &data[..cut]).unwrap();
    let out = curl(&[
        "-v",
        "-u",
        "anonymous:x",
        "-C",
        "-",
        "-o",
        &partial.to_string_lossy(),
        &ftp_url(s.gate.addr(), "/pub/big.bin"),
    ]);
    out.assert_success("curl -C -");
    let sent = curl_sent(&out.stderr);
    assert!(sent.iter().any(|c| c == &format!("REST {cut}")), "{sent:?}");
    assert_eq!(sha256_file(&partial), sha);

    // Raw: REST n then RETR sends exactly the bytes from n on.
    let mut c = s.full();
    let mut conn = c.pasv_connect();
    assert_eq!(c.cmd("REST 1000").0, 350);
    let (code, text) = c.cmd("RETR /pub/big.bin");
    assert_eq!(code, 150, "{text}");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(rest.len(), BIG - 1000);
    assert_eq!(sha256_bytes(&rest), sha256_bytes(&data[1000..]));
}
