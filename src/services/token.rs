//! The mio token of a session's socket: which slot of the reactor's slab, which generation
//! of that slot (so that an event for a session that is gone never reaches the next session
//! in the same slot: nginx's instance bit, widened), and which of the session's sockets.
//!
//! Layout, from the low bits: the role (3 bits), the slot ([`SLOT_BITS`]), the low
//! [`GENERATION_BITS`] of the generation. Tokens from [`MAX_TOKEN`] up are the reactor's own
//! (listeners, wakers, probes).

use mio::Token;

/// The sockets of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum SocketRole {
    ClientCtrl = 0,
    ServerCtrl = 1,
    PassiveListener = 2,
    ClientData = 3,
    ServerData = 4,
}

impl SocketRole {
    pub fn from_bits(bits: usize) -> Option<SocketRole> {
        match bits {
            0 => Some(SocketRole::ClientCtrl),
            1 => Some(SocketRole::ServerCtrl),
            2 => Some(SocketRole::PassiveListener),
            3 => Some(SocketRole::ClientData),
            4 => Some(SocketRole::ServerData),
            _ => None,
        }
    }
}

/// Bits of a token that carry the socket role.
pub const ROLE_BITS: u32 = 3;
/// Bits that carry the slot: far more slots than a worker can have file descriptors.
pub const SLOT_BITS: u32 = 32;
/// Bits of the slot's generation a token carries: a stale event would need 65,536 sessions
/// to pass through one slot between its registration and its delivery.
pub const GENERATION_BITS: u32 = 16;
/// The largest session token; the reactor's own tokens lie above it.
pub const MAX_TOKEN: usize = (1 << (ROLE_BITS + SLOT_BITS + GENERATION_BITS)) - 1;
/// The number of slots a token can name.
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;

/// A session socket's token, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionToken {
    pub slot: usize,
    /// The slot's generation (only its low [`GENERATION_BITS`] travel in the token).
    pub generation: u64,
    pub role: SocketRole,
}

impl SessionToken {
    pub fn encode(self) -> Token {
        let generation = (self.generation as usize) & ((1 << GENERATION_BITS) - 1);
        let slot = self.slot & (MAX_SLOTS - 1);
        Token((generation << (SLOT_BITS + ROLE_BITS)) | (slot << ROLE_BITS) | self.role as usize)
    }

    /// The session token `token` names, if it is one.
    pub fn decode(token: Token) -> Option<SessionToken> {
        if token.0 > MAX_TOKEN {
            return None;
        }
        Some(SessionToken {
            slot: (token.0 >> ROLE_BITS) & (MAX_SLOTS - 1),
            generation: (token.0 >> (SLOT_BITS + ROLE_BITS)) as u64,
            role: SocketRole::from_bits(token.0 & ((1 << ROLE_BITS) - 1))?,
        })
    }

    /// Whether this token belongs to the slot's current `generation`.
    pub fn is_current(&self, generation: u64) -> bool {
        self.generation == generation & ((1 << GENERATION_BITS) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_carry_the_generation() {
        for (slot, generation, role) in [
            (0, 0, SocketRole::ClientCtrl),
            (7, 1, SocketRole::ServerData),
            (
                MAX_SLOTS - 1,
                (1 << GENERATION_BITS) - 1,
                SocketRole::PassiveListener,
            ),
        ] {
            let t = SessionToken {
                slot,
                generation,
                role,
            };
            let decoded = SessionToken::decode(t.encode()).expect("a session token");
            assert_eq!(decoded, t);
            assert!(decoded.is_current(generation));
            assert!(
                !decoded.is_current(generation + 1),
                "the next session in the slot"
            );
        }
        // A generation wraps in the token but still tells neighbours apart.
        let t = SessionToken {
            slot: 3,
            generation: (1 << GENERATION_BITS) + 5,
            role: SocketRole::ClientData,
        };
        let decoded = SessionToken::decode(t.encode()).expect("token");
        assert!(decoded.is_current((1 << GENERATION_BITS) + 5));
        assert!(!decoded.is_current(6));
    }

    #[test]
    fn the_reactors_own_tokens_are_not_session_tokens() {
        assert!(SessionToken::decode(Token(usize::MAX)).is_none());
        assert!(SessionToken::decode(Token(MAX_TOKEN + 1)).is_none());
        assert!(SessionToken::decode(Token(4)).is_some());
        assert!(SessionToken::decode(Token(5)).is_none(), "no role 5");
    }
}
