//! Sizes and rates as written in the policy file: `"2GiB"`, `"10 MiB"`, `"512"`, `"5MiB/s"`.
//!
//! Pure string parsing with checked arithmetic: garbage and overflow are error messages, never
//! panics or wrapped values. Units are case-sensitive on purpose (`Mb` would be megabits).

/// The units a size may carry, and their value in bytes.
const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

const UNIT_LIST: &str = "B, KB, MB, GB, TB, KiB, MiB, GiB or TiB";

/// A size in bytes: digits, optionally followed by spaces and a unit (`"2GiB"`, `"10 MB"`,
/// `"512"`). Zero is accepted here; callers decide whether it means anything.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_amount(text, "a size", "\"10MiB\"")
}

/// A rate in bytes per second: a size followed by `/s` (`"5MiB/s"`, `"512/s"`).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    match text.strip_suffix("/s") {
        Some(amount) => parse_amount(amount, "a rate", "\"5MiB/s\""),
        None => Err(format!(
            "{text:?} is not a rate: write bytes per second with \"/s\", e.g. \"5MiB/s\""
        )),
    }
}

fn parse_amount(text: &str, what: &str, example: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at_checked(digits_end).unwrap_or((text, ""));
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not {what}: expected a whole number of bytes, optionally with a unit, e.g. {example}"
        ));
    }
    if rest.starts_with(['.', ',']) {
        return Err(format!(
            "{text:?}: use a whole number with a smaller unit instead of a fraction, e.g. \"1536MiB\""
        ));
    }
    let unit = rest.trim_start_matches(' ');
    let multiplier = if unit.is_empty() && rest.is_empty() {
        1
    } else {
        match UNITS.iter().find(|(name, _)| *name == unit) {
            Some(&(_, multiplier)) => multiplier,
            None => {
                return Err(format!(
                    "unknown unit {unit:?} in {text:?}; use {UNIT_LIST}"
                ));
            }
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is too large (the limit is {} bytes)", u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("3KiB"), Ok(3072));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("7KB"), Ok(7_000));
        assert_eq!(parse_size("7kB"), Ok(7_000));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("5TB"), Ok(5_000_000_000_000));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn size_garbage_and_overflow() {
        let err = |s: &str| parse_size(s).expect_err(s);
        assert!(err("").contains("is not a size"));
        assert!(err("MiB").contains("is not a size"));
        assert!(err("-5").contains("is not a size"));
        assert!(err("+5").contains("is not a size"));
        assert!(err(" 5").contains("is not a size"));
        assert!(err("1.5GiB").contains("whole number"));
        assert!(err("1,5GiB").contains("whole number"));
        assert_eq!(
            err("10XB"),
            "unknown unit \"XB\" in \"10XB\"; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
        );
        assert!(
            err("10mib").contains("unknown unit \"mib\""),
            "units are case-sensitive"
        );
        assert!(err("10Mb").contains("unknown unit"));
        assert!(err("10MiB ").contains("unknown unit \"MiB \""));
        assert!(err("10 ").contains("unknown unit \"\""));
        assert!(err("10MiB/s").contains("unknown unit \"MiB/s\""));
        assert!(err("18446744073709551616").contains("too large"));
        assert!(err("99999999999999999999999999").contains("too large"));
        assert!(err("16777216TiB").contains("too large"));
        assert!(err("٣MiB").contains("is not a size"), "only ASCII digits");
        assert!(err("5é").contains("unknown unit \"é\""));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("5MiB/s"), Ok(5 << 20));
        assert_eq!(parse_rate("5 MiB/s"), Ok(5 << 20));
        assert_eq!(parse_rate("512/s"), Ok(512));
        assert_eq!(parse_rate("512B/s"), Ok(512));
        assert_eq!(parse_rate("1GB/s"), Ok(1_000_000_000));
        let err = |s: &str| parse_rate(s).expect_err(s);
        assert!(err("5MiB").contains("\"/s\""));
        assert!(err("512").contains("\"/s\""));
        assert!(err("/s").contains("is not a rate"));
        assert!(err("5MiB/S").contains("\"/s\""));
        assert!(err("5MiB/s/s").contains("unknown unit \"MiB/s\""));
        assert!(err("99999999TiB/s").contains("too large"));
        assert!(err("").contains("\"/s\""));
    }
}
