//! The worker's memory of backend pools: whose turn it is, which servers failed recently,
//! how many sessions are connecting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::limits::BACKEND_DOWN_SECONDS;
use crate::policy::{Backend, Balance};

/// The worker's memory of backend pools: whose turn it is, and who failed recently.
#[derive(Default)]
pub struct BackendBook {
    next: HashMap<String, usize>,
    down_until: HashMap<SocketAddr, Instant>,
    /// Sessions whose backend connection is in progress.
    waiting: u32,
}

impl BackendBook {
    pub fn new() -> BackendBook {
        BackendBook::default()
    }

    /// The servers of `backend` in the order to try them: round-robin or first-available
    /// order, with servers that failed recently moved to the end (still tried, last).
    pub fn candidates(&mut self, backend: &Backend, now: Instant) -> Vec<SocketAddr> {
        let servers = &backend.servers;
        if servers.is_empty() {
            return Vec::new();
        }
        let start = match backend.balance {
            Balance::RoundRobin => {
                let next = self.next.entry(backend.name.clone()).or_insert(0);
                let start = *next % servers.len();
                *next = next.wrapping_add(1);
                start
            }
            Balance::FirstAvailable => 0,
        };
        self.down_until.retain(|_, until| *until > now);
        let mut up = Vec::with_capacity(servers.len());
        let mut down = Vec::new();
        for i in 0..servers.len() {
            let addr = servers[(start + i) % servers.len()];
            if self.down_until.contains_key(&addr) {
                down.push(addr);
            } else {
                up.push(addr);
            }
        }
        up.extend(down);
        up
    }

    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    pub fn start_waiting(&mut self) {
        self.waiting = self.waiting.saturating_add(1);
    }

    pub fn stop_waiting(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// Takes a server out of rotation for a while after a failed connect.
    pub fn mark_down(&mut self, addr: SocketAddr, now: Instant) {
        self.down_until
            .insert(addr, now + Duration::from_secs(BACKEND_DOWN_SECONDS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn backend(balance: Balance, n: u16) -> Backend {
        Backend {
            name: "pool".into(),
            servers: (0..n)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], 2000 + i)))
                .collect(),
            balance,
            tls: Default::default(),
            source_address: None,
            tls_settings: Default::default(),
            feature_probe: true,
        }
    }
    #[test]
    fn round_robin_rotates_and_skips_failed_servers() {
        let mut book = BackendBook::new();
        let b = backend(Balance::RoundRobin, 3);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, now)[0].port(), 2001);
        book.mark_down(b.servers[2], now);
        let order: Vec<u16> = book.candidates(&b, now).iter().map(|a| a.port()).collect();
        assert_eq!(order, vec![2000, 2001, 2002], "failed server goes last");
        let later = now + Duration::from_secs(BACKEND_DOWN_SECONDS + 1);
        let order: Vec<u16> = book
            .candidates(&b, later)
            .iter()
            .map(|a| a.port())
            .collect();
        assert_eq!(order, vec![2000, 2001, 2002]);
    }
    #[test]
    fn first_available_always_starts_at_the_first_server() {
        let mut book = BackendBook::new();
        let b = backend(Balance::FirstAvailable, 2);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        book.mark_down(b.servers[0], now);
        assert_eq!(book.candidates(&b, now)[0].port(), 2001);
    }
}
