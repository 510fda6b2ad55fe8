//! SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for the shared counter
//! tables (see `counters`), where whoever does not know the key cannot compute inputs that
//! collide.
//!
//! Written out here because std's `SipHasher` is deprecated and std's `DefaultHasher::new()`
//! has fixed, public keys. This is not on the relay path (the audit's SHA-256 comes from the
//! crypto provider); it hashes an address or a user name a few times per session.

/// SipHash-2-4 of `message` under the 128-bit key (`k0`, `k1`), as in the reference
/// implementation (the key's first 8 bytes, little-endian, are `k0`).
pub fn siphash24(k0: u64, k1: u64, message: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut blocks = message.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    // The last block: the remaining bytes, and the message length (mod 256) in the top byte.
    let mut last = [0u8; 8];
    let tail = blocks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = message.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the paper's test vectors: bytes 00 01 .. 0f.
    fn reference_key() -> (u64, u64) {
        let bytes: Vec<u8> = (0u8..16).collect();
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&bytes[..8]);
        k1.copy_from_slice(&bytes[8..]);
        (u64::from_le_bytes(k0), u64::from_le_bytes(k1))
    }

    #[test]
    fn matches_the_published_test_vectors() {
        let (k0, k1) = reference_key();
        let message: Vec<u8> = (0u8..64).collect();
        // From the paper (appendix A) and the reference implementation's vectors.h: the
        // message 00 01 .. 0e, then the empty message and 00 .. 3e.
        assert_eq!(siphash24(k0, k1, &message[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k0, k1, &message[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(k0, k1, &message[..63]), 0x958a_324c_eb06_4572);
    }

    #[test]
    #[allow(deprecated)]
    fn matches_std_siphasher_for_every_length_up_to_64() {
        use std::hash::Hasher;
        let message: Vec<u8> = (0u8..64).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
        for (k0, k1) in [(0, 0), (1, 2), (u64::MAX, 0x0123_4567_89ab_cdef)] {
            for len in 0..=64 {
                let mut std = std::hash::SipHasher::new_with_keys(k0, k1);
                std.write(&message[..len]);
                assert_eq!(
                    siphash24(k0, k1, &message[..len]),
                    std.finish(),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn another_key_gives_another_hash() {
        let a = siphash24(1, 2, b"127.0.0.1");
        let b = siphash24(1, 3, b"127.0.0.1");
        let c = siphash24(1, 2, b"127.0.0.2");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
