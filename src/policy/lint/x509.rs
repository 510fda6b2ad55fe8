//! The two fields of an X.509 certificate the lint needs: the end of its validity
//! (`notAfter`) and the type of its public key, read from the DER with no crate beyond what
//! the tree has.
//!
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, subject,
//! subjectPublicKeyInfo SEQUENCE { algorithm SEQUENCE { OID, parameters }, key }, ... },
//! ... } (RFC 5280 section 4.1; the key algorithms of RFC 3279, 5480 and 8410). Times are UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or
//! GeneralizedTime (`YYYYMMDDHHMMSSZ`), always in UTC for certificates.

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: (tag, content, rest after it).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = rest.get(..count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest.get(count..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The fields of the DER certificate's tbsCertificate from `validity` on.
fn from_validity(der: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    Some(rest)
}

/// `notAfter` of the DER certificate, in seconds since the Unix epoch; `None` when the
/// bytes are not a certificate this reader understands.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, validity, _) = element(from_validity(der)?)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

/// The type of a certificate's public key, as far as choosing among certificates goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    /// ECDSA on the named curve (`P-256`, `P-384`, `P-521`, or `other curve`).
    Ecdsa(&'static str),
    Ed25519,
    Ed448,
}

impl KeyType {
    pub fn name(self) -> String {
        match self {
            KeyType::Rsa => "RSA".to_owned(),
            KeyType::Ecdsa(curve) => format!("ECDSA {curve}"),
            KeyType::Ed25519 => "Ed25519".to_owned(),
            KeyType::Ed448 => "Ed448".to_owned(),
        }
    }
}

const OID: u8 = 0x06;
/// rsaEncryption (1.2.840.113549.1.1.1) and RSASSA-PSS (1.2.840.113549.1.1.10).
const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// id-ecPublicKey (1.2.840.10045.2.1) and its named curves.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519 (1.3.101.112) and id-Ed448 (1.3.101.113).
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x2b, 0x65, 0x71];

/// The type of the DER certificate's public key; `None` when the bytes are not a
/// certificate this reader understands or the algorithm is none of [`KeyType`]'s.
pub fn key_type(der: &[u8]) -> Option<KeyType> {
    let rest = from_validity(der)?;
    // validity, subject.
    let rest = element(element(rest)?.2)?.2;
    let (tag, spki, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, algorithm, _) = element(spki)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, parameters) = element(algorithm)?;
    if tag != OID {
        return None;
    }
    match oid {
        RSA | RSA_PSS => Some(KeyType::Rsa),
        ED25519 => Some(KeyType::Ed25519),
        ED448 => Some(KeyType::Ed448),
        EC_PUBLIC_KEY => {
            let curve = match element(parameters) {
                Some((OID, P256, _)) => "P-256",
                Some((OID, P384, _)) => "P-384",
                Some((OID, P521, _)) => "P-521",
                _ => "other curve",
            };
            Some(KeyType::Ecdsa(curve))
        }
        _ => None,
    }
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy = digits(text.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (digits(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element with a short length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(content.len()).expect("short")];
        out.extend_from_slice(content);
        out
    }

    fn certificate(not_after: (u8, &str)) -> Vec<u8> {
        with_key(not_after, &[tlv(OID, RSA), vec![0x05, 0x00]].concat())
    }

    /// A certificate whose subjectPublicKeyInfo's algorithm holds `algorithm`.
    fn with_key(not_after: (u8, &str), algorithm: &[u8]) -> Vec<u8> {
        let validity = [
            tlv(UTC_TIME, b"240101000000Z"),
            tlv(not_after.0, not_after.1.as_bytes()),
        ]
        .concat();
        let spki = [tlv(SEQUENCE, algorithm), tlv(0x03, &[0, 1, 2])].concat();
        let tbs = [
            tlv(VERSION, &tlv(0x02, &[2])),
            tlv(0x02, &[1, 2, 3]),
            tlv(SEQUENCE, &tlv(0x06, &[42])),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &validity),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &spki),
        ]
        .concat();
        tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[])].concat(),
        )
    }

    #[test]
    fn utc_and_generalized_times() {
        assert_eq!(
            not_after(&certificate((UTC_TIME, "700101000000Z"))),
            Some(0)
        );
        assert_eq!(
            not_after(&certificate((UTC_TIME, "261202141500Z"))),
            Some(1_796_220_900)
        );
        assert_eq!(
            not_after(&certificate((GENERALIZED_TIME, "20261202141500Z"))),
            Some(1_796_220_900)
        );
        // UTCTime years below 50 are 20YY.
        assert_eq!(
            not_after(&certificate((UTC_TIME, "491231235959Z"))),
            Some(2_524_607_999)
        );
        assert_eq!(
            not_after(&certificate((GENERALIZED_TIME, "99991231235959Z"))),
            Some(253_402_300_799)
        );
    }

    #[test]
    fn key_types() {
        let at = (UTC_TIME, "261202141500Z");
        let ec = |curve: &[u8]| with_key(at, &[tlv(OID, EC_PUBLIC_KEY), tlv(OID, curve)].concat());
        assert_eq!(key_type(&certificate(at)), Some(KeyType::Rsa));
        assert_eq!(
            key_type(&with_key(at, &tlv(OID, RSA_PSS))),
            Some(KeyType::Rsa)
        );
        assert_eq!(key_type(&ec(P256)), Some(KeyType::Ecdsa("P-256")));
        assert_eq!(key_type(&ec(P384)), Some(KeyType::Ecdsa("P-384")));
        assert_eq!(key_type(&ec(P521)), Some(KeyType::Ecdsa("P-521")));
        assert_eq!(
            key_type(&ec(&[0x2b, 1])),
            Some(KeyType::Ecdsa("other curve"))
        );
        assert_eq!(
            key_type(&with_key(at, &tlv(OID, ED25519))),
            Some(KeyType::Ed25519)
        );
        assert_eq!(
            key_type(&with_key(at, &tlv(OID, ED448))),
            Some(KeyType::Ed448)
        );
        assert_eq!(key_type(&with_key(at, &tlv(OID, &[0x2b, 0x65]))), None);
        assert_eq!(key_type(&with_key(at, &tlv(0x04, RSA))), None);
        assert_eq!(KeyType::Ecdsa("P-256").name(), "ECDSA P-256");
        let good = ec(P256);
        for cut in 0..good.len() {
            let _ = key_type(&good[..cut]);
        }
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&certificate((UTC_TIME, "2612021415Z"))), None);
        assert_eq!(not_after(&certificate((UTC_TIME, "261302141500Z"))), None);
        assert_eq!(not_after(&certificate((0x04, "261202141500Z"))), None);
        let good = certificate((UTC_TIME, "261202141500Z"));
        for cut in 0..good.len() {
            let _ = not_after(&good[..cut]);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = not_after(&bad);
        }
    }
}
