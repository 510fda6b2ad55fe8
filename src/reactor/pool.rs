//! The bounded pool of relay buffers.
//!
//! A session holds a relay buffer only while data moves; an idle session holds none. The
//! pool never grows past its bound: when it is empty the transfer is refused (425) instead
//! of the process growing without limit. Buffers are allocated lazily up to the bound and
//! reused afterwards, so a quiet gateway does not hold memory it does not use.

use std::cell::RefCell;
use std::rc::Rc;

/// A fixed-capacity byte buffer with private cursors: `data()` is what was filled and not
/// yet consumed, `space()` is where the next read goes.
pub struct RelayBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
    home: Rc<RefCell<PoolInner>>,
}

impl RelayBuffer {
    /// Bytes filled and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Free room after the filled bytes.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.bytes[self.end..]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn is_full(&self) -> bool {
        self.end == self.bytes.len()
    }

    /// Marks `n` bytes of `space()` as filled.
    pub fn fill(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }

    /// Marks `n` bytes of `data()` as consumed; an emptied buffer rewinds to its start.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

impl Drop for RelayBuffer {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        if let Ok(mut inner) = self.home.try_borrow_mut() {
            inner.checked_out = inner.checked_out.saturating_sub(1);
            inner.free.push(bytes);
        }
    }
}

struct PoolInner {
    free: Vec<Box<[u8]>>,
    checked_out: usize,
    buffer_size: usize,
    max_buffers: usize,
}

/// A per-worker pool of equally sized buffers (single-threaded: the reactor owns it).
#[derive(Clone)]
pub struct BufferPool {
    inner: Rc<RefCell<PoolInner>>,
}

impl BufferPool {
    pub fn new(buffer_size: usize, max_buffers: usize) -> BufferPool {
        BufferPool {
            inner: Rc::new(RefCell::new(PoolInner {
                free: Vec::new(),
                checked_out: 0,
                buffer_size,
                max_buffers,
            })),
        }
    }

    /// Borrows a buffer, or `None` when the bound is reached.
    pub fn checkout(&self) -> Option<RelayBuffer> {
        let mut inner = self.inner.try_borrow_mut().ok()?;
        let bytes = match inner.free.pop() {
            Some(bytes) => bytes,
            None if inner.checked_out < inner.max_buffers => {
                vec![0u8; inner.buffer_size].into_boxed_slice()
            }
            None => return None,
        };
        inner.checked_out += 1;
        Some(RelayBuffer {
            bytes,
            start: 0,
            end: 0,
            home: Rc::clone(&self.inner),
        })
    }

    /// Buffers currently lent out.
    pub fn in_use(&self) -> usize {
        self.inner.try_borrow().map(|i| i.checked_out).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_bounded_and_reuses_buffers() {
        let pool = BufferPool::new(16, 2);
        let a = pool.checkout().expect("first");
        let b = pool.checkout().expect("second");
        assert!(pool.checkout().is_none(), "third must be refused");
        assert_eq!(pool.in_use(), 2);
        drop(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.checkout().expect("returned buffer is reused");
        drop(b);
        drop(c);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn cursors_fill_and_consume() {
        let pool = BufferPool::new(8, 1);
        let mut buf = pool.checkout().expect("buffer");
        assert!(buf.is_empty());
        buf.space()[..5].copy_from_slice(b"hello");
        buf.fill(5);
        assert_eq!(buf.data(), b"hello");
        buf.consume(2);
        assert_eq!(buf.data(), b"llo");
        assert_eq!(buf.space().len(), 3);
        buf.fill(3);
        assert!(buf.is_full());
        buf.consume(100);
        assert!(buf.is_empty());
        assert_eq!(buf.space().len(), 8, "an emptied buffer rewinds");
    }
}
