//! Asking a backend for the SHA-256 of a file it stored: `HASH` (draft-bryan-ftpext-hash,
//! answered by ProFTPD's mod_digest and others) or the older `XSHA256`.
//!
//! ftpgate asks `OPTS HASH SHA-256` and `HASH`, and `XSHA256` where the backend refuses
//! either (session::control::verify; the replies say what a backend has, whatever its
//! `FEAT` claims), and reads the digest out of the reply ([`digest_from_reply`]). Pure and
//! bounded: a reply is one already parsed [`Reply`], and only a 64-digit hex string is
//! accepted as a digest.

use super::reply::Reply;

/// How a backend is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `HASH path` (after `OPTS HASH SHA-256`).
    Hash,
    /// `XSHA256 path`.
    Xsha256,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Hash => "HASH",
            Method::Xsha256 => "XSHA256",
        }
    }
}

/// The SHA-256 (lower-case hex) a final reply to `HASH` or `XSHA256` names; None for a
/// negative reply or one that names no SHA-256 of the whole file.
///
/// `HASH`: `213 SHA-256 0-12 a9489...447 name` (the algorithm, the byte range, the digest,
/// the path): the range must start at 0, and ends at the size ftpgate relayed (`size`).
/// `XSHA256`: `250 A9489...447` (the digest alone, sometimes before the name).
pub fn digest_from_reply(method: Method, reply: &Reply, size: u64) -> Option<String> {
    let last = reply.lines.last()?;
    let text = std::str::from_utf8(last.get(4..)?).ok()?;
    let mut words = text.split_ascii_whitespace();
    let digest = match method {
        Method::Hash => {
            if reply.code != 213 {
                return None;
            }
            let algo = words.next()?;
            if !algo.eq_ignore_ascii_case("SHA-256") {
                return None;
            }
            let (first, end) = words.next()?.split_once('-')?;
            if first != "0" || end.parse::<u64>().ok()? != size {
                return None;
            }
            words.next()?
        }
        Method::Xsha256 => {
            if reply.code != 250 && reply.code != 213 {
                return None;
            }
            words.find(|w| is_sha256_hex(w))?
        }
    };
    is_sha256_hex(digest).then(|| digest.to_ascii_lowercase())
}

fn is_sha256_hex(word: &str) -> bool {
    word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

    fn reply(code: u16, last: &str) -> Reply {
        Reply::multi(code, &["Computing digest", last])
    }

    #[test]
    fn the_digest_comes_from_the_final_reply() {
        let hash = Method::Hash;
        let ok = Reply::new(213, &format!("SHA-256 0-12 {DIGEST} pub/a.txt"));
        assert_eq!(digest_from_reply(hash, &ok, 12).as_deref(), Some(DIGEST));
        let multi = reply(213, &format!("SHA-256 0-12 {DIGEST} pub/a.txt"));
        assert_eq!(digest_from_reply(hash, &multi, 12).as_deref(), Some(DIGEST));
        let upper = Reply::new(250, &DIGEST.to_ascii_uppercase());
        assert_eq!(
            digest_from_reply(Method::Xsha256, &upper, 12).as_deref(),
            Some(DIGEST)
        );
    }

    #[test]
    fn replies_that_prove_nothing_give_no_digest() {
        let hash = Method::Hash;
        // Another size than the bytes relayed, a partial range, another algorithm.
        let sized = Reply::new(213, &format!("SHA-256 0-11 {DIGEST} a"));
        assert_eq!(digest_from_reply(hash, &sized, 12), None);
        let partial = Reply::new(213, &format!("SHA-256 4-12 {DIGEST} a"));
        assert_eq!(digest_from_reply(hash, &partial, 12), None);
        let sha1 = Reply::new(213, "SHA-1 0-12 22596363b3de40b06f981fb85d82312e8c0ed511 a");
        assert_eq!(digest_from_reply(hash, &sha1, 12), None);
        let refused = Reply::new(550, "pub/a.txt: No such file");
        assert_eq!(digest_from_reply(hash, &refused, 12), None);
        assert_eq!(digest_from_reply(Method::Xsha256, &refused, 12), None);
        let short = Reply::new(250, "abc");
        assert_eq!(digest_from_reply(Method::Xsha256, &short, 12), None);
        let not_hex = Reply::new(213, &format!("SHA-256 0-12 {}z a", &DIGEST[..63]));
        assert_eq!(digest_from_reply(hash, &not_hex, 12), None);
    }
}
