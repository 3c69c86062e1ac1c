//! The wasm module's allocator (wasm32 only): one free list per power-of-two size class,
//! over memory taken from `memory.grow` and handed out in order.
//!
//! Why not the standard library's (dlmalloc): an append makes a few dozen small allocations
//! (a patch, its paths, a grown text node, the tokens of a re-highlighted code line), and in
//! an interpreter, as WeChat's logic layer on iOS runs wasm, each of dlmalloc's bin searches,
//! splits and merges is paid instruction by instruction. Here an allocation is a pop from its
//! class's list or a bump of a pointer, a free is a push, and a `String` or `Vec` that grows
//! within its class keeps its place. It is also a smaller module than dlmalloc.
//!
//! What it gives up: a block is only ever reused by a request of its own class (sizes rounded
//! up to a power of two, so a block holds up to twice what was asked), and freed memory is
//! never merged. The requests of a streamed answer repeat (the same nodes and paths append
//! after append, buffers doubling), so the lists serve nearly all of them once the first
//! answer has streamed. wasm memory never shrinks, with any allocator.
//!
//! Safety: the module is single-threaded (wasm32-unknown-unknown without threads), so the
//! state needs no lock.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

const PAGE: usize = 65536;
/// Memory is taken at least this many pages at a time: each `memory.grow` detaches the JS
/// side's views of the memory, which then builds them again.
const GROW: usize = 4;
/// Blocks are aligned to their size up to this; a request aligned more never takes a block
/// from a list.
const ALIGN: usize = 16;

struct Heap {
    /// The first free block of each class (0: none); a free block holds the next one's address.
    free: [usize; 32],
    /// The unused memory taken so far: `next..end`.
    next: usize,
    end: usize,
}

pub(crate) struct ClassAlloc(UnsafeCell<Heap>);

// (single-threaded: see the module doc)
unsafe impl Sync for ClassAlloc {}

#[global_allocator]
static ALLOC: ClassAlloc = ClassAlloc(UnsafeCell::new(Heap { free: [0; 32], next: 0, end: 0 }));

/// The class of a request: the power of two its block is, at least 8 bytes and at least its
/// alignment.
fn class(l: &Layout) -> usize {
    let size = l.size().max(l.align()).max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for ClassAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let h = unsafe { &mut *self.0.get() };
        let c = class(&l);
        let head = h.free[c];
        if head != 0 && l.align() <= ALIGN {
            h.free[c] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << c;
        let align = size.min(ALIGN).max(l.align());
        let mut at = (h.next + align - 1) & !(align - 1);
        if at.checked_add(size).is_none_or(|e| e > h.end) {
            let pages = ((size + align).div_ceil(PAGE)).max(GROW);
            let old = core::arch::wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                return null_mut();
            }
            // (memory the module grew elsewhere is not ours: the region starts anew after it)
            if old * PAGE != h.end {
                h.next = old * PAGE;
            }
            h.end = (old + pages) * PAGE;
            at = (h.next + align - 1) & !(align - 1);
        }
        h.next = at + size;
        at as *mut u8
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let h = unsafe { &mut *self.0.get() };
        let c = class(&l);
        unsafe { *(p as *mut usize) = h.free[c] };
        h.free[c] = p as usize;
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        if class(&new) == class(&l) {
            return p;
        }
        let q = unsafe { self.alloc(new) };
        if !q.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
        }
        q
    }
}
