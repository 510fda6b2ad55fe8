//! The tables of spellings next to the enums of the model (`SPELLINGS`,
//! `SYSLOG_FACILITIES`): each variant exactly once, and `name()` writes what the loader reads.

use super::*;

/// `all` is every variant of one enum: each is in `table` exactly once, and no spelling is
/// there twice; `name()` (given as `name`) answers the table's spelling.
fn check_spellings<T: Copy + PartialEq + std::fmt::Debug>(
    table: &[(&str, T)],
    all: &[T],
    name: fn(T) -> &'static str,
) {
    assert_eq!(table.len(), all.len(), "{table:?}");
    for &variant in all {
        let entries = table.iter().filter(|&&(_, v)| v == variant).count();
        assert_eq!(entries, 1, "{variant:?} in {table:?}");
    }
    for (i, &(text, variant)) in table.iter().enumerate() {
        assert!(
            table.iter().skip(i + 1).all(|&(other, _)| other != text),
            "{text:?} twice in {table:?}"
        );
        assert_eq!(name(variant), text);
    }
}

#[test]
fn every_variant_is_spelled_exactly_once() {
    // Each `match` has no `_` arm: a new variant does not compile here until it is added to
    // the list below it, and then the check fails until it has a spelling.
    let all = [TlsMode::None, TlsMode::Explicit, TlsMode::Implicit];
    for variant in all {
        match variant {
            TlsMode::None | TlsMode::Explicit | TlsMode::Implicit => {}
        }
    }
    check_spellings(TlsMode::SPELLINGS, &all, TlsMode::name);

    let all = [TlsRequire::None, TlsRequire::Login, TlsRequire::All];
    for variant in all {
        match variant {
            TlsRequire::None | TlsRequire::Login | TlsRequire::All => {}
        }
    }
    check_spellings(TlsRequire::SPELLINGS, &all, TlsRequire::name);

    let all = [
        Balance::RoundRobin,
        Balance::FirstAvailable,
        Balance::Sticky,
    ];
    for variant in all {
        match variant {
            Balance::RoundRobin | Balance::FirstAvailable | Balance::Sticky => {}
        }
    }
    check_spellings(Balance::SPELLINGS, &all, Balance::name);

    let all = [AuditMode::Monitor, AuditMode::Filecopy];
    for variant in all {
        match variant {
            AuditMode::Monitor | AuditMode::Filecopy => {}
        }
    }
    check_spellings(AuditMode::SPELLINGS, &all, AuditMode::name);

    let all = [SyslogFormat::Rfc5424, SyslogFormat::Rfc3164];
    for variant in all {
        match variant {
            SyslogFormat::Rfc5424 | SyslogFormat::Rfc3164 => {}
        }
    }
    check_spellings(SyslogFormat::SPELLINGS, &all, SyslogFormat::name);

    let all = [AuditFailure::RefuseSessions, AuditFailure::Continue];
    for variant in all {
        match variant {
            AuditFailure::RefuseSessions | AuditFailure::Continue => {}
        }
    }
    check_spellings(AuditFailure::SPELLINGS, &all, AuditFailure::name);

    let all = [CopyFailure::Abort, CopyFailure::Continue];
    for variant in all {
        match variant {
            CopyFailure::Abort | CopyFailure::Continue => {}
        }
    }
    check_spellings(CopyFailure::SPELLINGS, &all, CopyFailure::name);
}

#[test]
fn every_syslog_facility_is_spelled_once_and_named_back() {
    for (i, &(name, code)) in SYSLOG_FACILITIES.iter().enumerate() {
        let rest = SYSLOG_FACILITIES.iter().skip(i + 1);
        assert!(
            rest.clone().all(|&(other, _)| other != name),
            "{name:?} twice"
        );
        assert!(
            rest.clone().all(|&(_, other)| other != code),
            "{code} twice"
        );
        let syslog = SyslogPolicy {
            facility: code,
            app_name: String::new(),
            socket: PathBuf::new(),
            cee: false,
            format: SyslogFormat::default(),
        };
        assert_eq!(syslog.facility_name(), name);
    }
    assert!(
        SYSLOG_FACILITIES
            .iter()
            .any(|&(name, _)| name == DEFAULT_SYSLOG_FACILITY)
    );
}
