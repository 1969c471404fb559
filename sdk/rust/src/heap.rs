//! The allocator of a plugin built with this SDK (wasm32 only).
//!
//! A filter allocates the same few small buffers on every call: a header
//! value, a key, a property list. Through the standard library's dlmalloc
//! each costs a chain of calls that are not inlined (the standard library
//! comes compiled), and under the gateway's fuel meter every call is paid
//! for; a third of the bundled plugins' time went there. Blocks of up to
//! 2 KiB are instead kept in eight power-of-two classes, each a free list,
//! carved from 64 KiB chunks: an allocation or a free is a few
//! instructions. Larger or more aligned blocks go to dlmalloc. A class's
//! blocks serve only that class, so memory is bounded by the most of each
//! size alive at once, at most twice what was asked; the gateway replaces
//! an instance whose memory grew beyond `recycle_memory`. A plugin runs on
//! one thread (WebAssembly without the threads proposal), so there is no
//! lock.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

const CLASSES: usize = 8;
const MIN: usize = 16; // the smallest block, and the alignment of every block
const MAX: usize = MIN << (CLASSES - 1);
const CHUNK: usize = 64 << 10;

pub struct Heap {
    lists: UnsafeCell<Lists>,
}

struct Lists {
    /// The first free block of each class; a free block holds the next.
    free: [*mut u8; CLASSES],
    /// The part of the current chunk not carved yet.
    next: *mut u8,
    end: *mut u8,
}

// SAFETY: a plugin's instance runs on one thread.
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        Heap { lists: UnsafeCell::new(Lists { free: [ptr::null_mut(); CLASSES], next: ptr::null_mut(), end: ptr::null_mut() }) }
    }
}

/// class is the size class of a layout (block size MIN << class), or None
/// for dlmalloc.
fn class(l: &Layout) -> Option<usize> {
    if l.size() > MAX || l.align() > MIN {
        return None;
    }
    let size = l.size().max(MIN);
    // ceil(log2(size)) - log2(MIN)
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - MIN.trailing_zeros() as usize)
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let c = match class(&l) {
            Some(c) => c,
            None => return System.alloc(l),
        };
        let s = &mut *self.lists.get();
        let head = s.free[c];
        if !head.is_null() {
            s.free[c] = *(head as *mut *mut u8);
            return head;
        }
        let size = MIN << c;
        if (s.end as usize) - (s.next as usize) < size {
            let chunk = System.alloc(Layout::from_size_align_unchecked(CHUNK, MIN));
            if chunk.is_null() {
                return chunk;
            }
            s.next = chunk;
            s.end = chunk.add(CHUNK);
        }
        let p = s.next;
        s.next = p.add(size);
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let c = match class(&l) {
            Some(c) => c,
            None => return System.dealloc(p, l),
        };
        let s = &mut *self.lists.get();
        *(p as *mut *mut u8) = s.free[c];
        s.free[c] = p;
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let nl = Layout::from_size_align_unchecked(new_size, l.align());
        match (class(&l), class(&nl)) {
            (Some(a), Some(b)) if a == b => return p,
            (None, None) => return System.realloc(p, l, new_size),
            _ => {}
        }
        let q = self.alloc(nl);
        if !q.is_null() {
            ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
            self.dealloc(p, l);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |size, align| class(&Layout::from_size_align(size, align).unwrap());
        assert_eq!(c(1, 1), Some(0));
        assert_eq!(c(16, 8), Some(0));
        assert_eq!(c(17, 1), Some(1));
        assert_eq!(c(1024, 1), Some(6));
        assert_eq!(c(1025, 1), Some(7));
        assert_eq!(c(2048, 16), Some(7));
        assert_eq!(c(2049, 1), None);
        assert_eq!(c(8, 32), None);
    }

    /// Blocks alive at once never overlap, are aligned, keep what was
    /// written into them across a realloc, and freed blocks are reused.
    #[test]
    fn blocks() {
        let h = Heap::new();
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 7u32;
        let mut rand = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for i in 0..20000u32 {
            let r = rand();
            if r % 3 == 0 && !live.is_empty() {
                let (p, l, v) = live.swap_remove(r as usize / 3 % live.len());
                for k in 0..l.size() {
                    assert_eq!(unsafe { *p.add(k) }, v, "block of {} bytes overwritten", l.size());
                }
                unsafe { h.dealloc(p, l) };
            } else if r % 3 == 1 && !live.is_empty() {
                let j = r as usize / 3 % live.len();
                let (p, l, v) = live[j];
                let n = 1 + rand() as usize % 3000;
                let q = unsafe { h.realloc(p, l, n) };
                let nl = Layout::from_size_align(n, l.align()).unwrap();
                for k in 0..l.size().min(n) {
                    assert_eq!(unsafe { *q.add(k) }, v, "realloc lost byte {}", k);
                }
                unsafe { ptr::write_bytes(q, v, n) };
                live[j] = (q, nl, v);
            } else {
                let size = 1 + rand() as usize % 3000;
                let align = [1, 2, 4, 8, 16, 32][rand() as usize % 6];
                let l = Layout::from_size_align(size, align).unwrap();
                let p = unsafe { h.alloc(l) };
                assert!(!p.is_null() && p as usize % align == 0);
                let v = i as u8;
                unsafe { ptr::write_bytes(p, v, size) };
                live.push((p, l, v));
            }
        }
        for (p, l, _) in live {
            unsafe { h.dealloc(p, l) };
        }
        // A freed block is the next one of its class.
        let l = Layout::from_size_align(100, 1).unwrap();
        let p = unsafe { h.alloc(l) };
        unsafe { h.dealloc(p, l) };
        assert_eq!(unsafe { h.alloc(Layout::from_size_align(128, 8).unwrap()) }, p);
    }
}
