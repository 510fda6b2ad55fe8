//! `load_policy`: reading the file, I/O errors at 0:0, owner and mode checks.

use super::*;

#[test]
fn load_policy_reads_files() {
    let path = temp_file("good.json", MINIMAL.as_bytes());
    assert_eq!(load_policy(&path), parse_policy(MINIMAL));
    let _ = std::fs::remove_file(&path);

    let path = temp_file("bad.json", b"{\n  \"workers\": 0,\n  \"listeners\": []\n}");
    let errors: Vec<String> = load_policy(&path)
        .expect_err("bad")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].starts_with("2:14: workers:"), "{errors:?}");
    assert!(errors[1].starts_with("3:16: listeners:"), "{errors:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn load_policy_io_errors_are_at_zero() {
    let missing = std::env::temp_dir().join("ftpgate-no-such-policy.json");
    let errors = load_policy(&missing).expect_err("missing");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (0, 0));
    // The caller names the file (FILE:0:0: message); the message does not repeat it.
    assert!(
        !errors[0].message.contains("ftpgate-no-such-policy"),
        "{errors:?}"
    );
    let os_error = std::fs::metadata(&missing).expect_err("missing");
    assert_eq!(errors[0].message, os_error.to_string());
    assert!(errors[0].to_string().starts_with("0:0: "));

    let errors = load_policy(&std::env::temp_dir()).expect_err("directory");
    assert_eq!(errors[0].to_string(), "0:0: not a regular file");

    let big = vec![b' '; limits::MAX_POLICY_BYTES as usize + 1];
    let path = temp_file("big.json", &big);
    let errors = load_policy(&path).expect_err("too big");
    assert!(
        errors[0].message.contains("larger than 4194304 bytes"),
        "{errors:?}"
    );
    let _ = std::fs::remove_file(&path);

    let path = temp_file("latin1.json", b"{\n  \"users\": { \"j\xf6rg\": {} }\n}");
    let errors = load_policy(&path).expect_err("not UTF-8");
    assert_eq!(
        errors[0].to_string(),
        "2:16: the file is not valid UTF-8 here"
    );
    let _ = std::fs::remove_file(&path);
}

#[cfg(unix)]
#[test]
fn load_policy_refuses_world_writable_files() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_file("open.json", MINIMAL.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let errors = load_policy(&path).expect_err("world-writable");
    let name = path.display();
    assert_eq!(
        errors[0].to_string(),
        format!(
            "0:0: {name}: its group and every user can write it (mode 0666); run chmod go-w \
             {name}"
        )
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o646)).expect("chmod");
    let errors = load_policy(&path).expect_err("world-writable");
    assert_eq!(
        errors[0].message,
        format!("{name}: every user can write it (mode 0646); run chmod o-w {name}")
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).expect("chmod");
    let errors = load_policy(&path).expect_err("group-writable");
    assert_eq!(
        errors[0].message,
        format!("{name}: its group can write it (mode 0620); run chmod g-w {name}")
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(load_policy(&path).is_ok());
    let _ = std::fs::remove_file(&path);
}
