//! The wasm module's allocator: one free list per power-of-two size class, over memory taken
//! from `memory.grow` and handed out in order. The module's own build installs it (the
//! `wasm-allocator` feature, which `build.sh` enables); a crate that depends on this one keeps
//! its own allocator.
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
//! answer has streamed. wasm memory never shrinks, with any allocator. What that costs in
//! peak memory is measured in the crate's README.
//!
//! Safety: the state has no lock, so it is installed only where the module is
//! single-threaded: wasm32-unknown-unknown without the `atomics` target feature (no shared
//! memory, no threads).
//!
//! The heap's logic ([`Heap`]) takes its pages from a [`Pages`] source, so the tests run it
//! natively over an arena.

use std::alloc::Layout;
use std::ptr::null_mut;

pub(crate) const PAGE: usize = 65536;
/// Memory is taken at least this many pages at a time: each `memory.grow` detaches the JS
/// side's views of the memory, which then builds them again.
const GROW: usize = 4;
/// Blocks are aligned to their size up to this. A request aligned more takes a block from a
/// list only if the block's address happens to be aligned enough.
const ALIGN: usize = 16;

/// Where the heap's memory comes from: linear memory's `memory.grow`.
pub(crate) trait Pages {
    /// Adds `pages` pages of [`PAGE`] bytes at the end of memory; returns the memory's size
    /// in pages before, or `usize::MAX` when it cannot grow.
    fn grow(&mut self, pages: usize) -> usize;
}

pub(crate) struct Heap<P> {
    /// The first free block of each class (0: none); a free block holds the next one's address.
    free: [usize; usize::BITS as usize],
    /// The unused memory taken so far: `next..end`.
    next: usize,
    end: usize,
    pages: P,
}

/// The class of a request: the power of two its block is, at least 8 bytes and at least its
/// alignment.
fn class(l: &Layout) -> usize {
    let size = l.size().max(l.align()).max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

impl<P: Pages> Heap<P> {
    pub(crate) const fn new(pages: P) -> Self {
        Heap { free: [0; usize::BITS as usize], next: 0, end: 0, pages }
    }

    // (inlined into the global allocator's entry points: one call fewer per allocation,
    // which the interpreter running the module pays as a call)
    #[inline(always)]
    pub(crate) fn alloc(&mut self, l: Layout) -> *mut u8 {
        let c = class(&l);
        // A block is aligned to its size up to ALIGN, so a request aligned up to that takes
        // the first block of its class; one aligned more (none of the renderer's), the first
        // whose address happens to be aligned enough.
        // SAFETY: a free block holds the address of the next one (see `dealloc`).
        let mut link: *mut usize = &mut self.free[c];
        while unsafe { *link } != 0 {
            let block = unsafe { *link };
            if block & (l.align() - 1) == 0 {
                unsafe { *link = *(block as *const usize) };
                return block as *mut u8;
            }
            link = block as *mut usize;
        }
        let size = 1usize << c;
        let align = size.min(ALIGN).max(l.align());
        let mut at = (self.next + align - 1) & !(align - 1);
        if at.checked_add(size).is_none_or(|e| e > self.end) {
            let pages = ((size + align).div_ceil(PAGE)).max(GROW);
            let old = self.pages.grow(pages);
            // (at 4 GiB, the end of memory is past what a 32-bit address holds)
            let Some(end) = old.checked_add(pages).and_then(|p| p.checked_mul(PAGE)) else {
                return null_mut();
            };
            // (memory grown elsewhere is not ours: the region starts anew after it)
            if old * PAGE != self.end {
                self.next = old * PAGE;
            }
            self.end = end;
            at = (self.next + align - 1) & !(align - 1);
        }
        self.next = at + size;
        at as *mut u8
    }

    /// # Safety
    /// `p` was allocated by this heap with layout `l`, and is not used afterwards.
    // (inlined into the global allocator's entry points: one call fewer per allocation,
    // which the interpreter running the module pays as a call)
    #[inline(always)]
    pub(crate) unsafe fn dealloc(&mut self, p: *mut u8, l: Layout) {
        let c = class(&l);
        unsafe { *(p as *mut usize) = self.free[c] };
        self.free[c] = p as usize;
    }

    /// # Safety
    /// As [`Heap::dealloc`] for `p` and `l`; `new_size` is a valid size for `l`'s alignment.
    pub(crate) unsafe fn realloc(&mut self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        if class(&new) == class(&l) {
            return p;
        }
        let q = self.alloc(new);
        if !q.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
        }
        q
    }
}

// (outside the crate's unit tests, which count allocations with an allocator of their own,
// this module is compiled only where the global allocator is sound: see its `mod` in lib.rs)
#[cfg(not(test))]
mod global {
    use super::{Heap, Pages};
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;

    /// The module's linear memory.
    pub(crate) struct Memory;

    impl Pages for Memory {
        fn grow(&mut self, pages: usize) -> usize {
            core::arch::wasm32::memory_grow(0, pages)
        }
    }

    pub(crate) struct ClassAlloc(UnsafeCell<Heap<Memory>>);

    // SAFETY: installed only without threads (see the module doc).
    unsafe impl Sync for ClassAlloc {}

    #[global_allocator]
    static ALLOC: ClassAlloc = ClassAlloc(UnsafeCell::new(Heap::new(Memory)));

    unsafe impl GlobalAlloc for ClassAlloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            unsafe { &mut *self.0.get() }.alloc(l)
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { (*self.0.get()).dealloc(p, l) }
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            unsafe { (*self.0.get()).realloc(p, l, new_size) }
        }
    }
}

/// The heap's logic natively, over an arena standing in for linear memory, against a model
/// of what an allocator owes its callers.
#[cfg(test)]
mod tests {
    use super::*;

    /// Page-aligned memory handed out page by page, as `memory.grow` does; `elsewhere` pages
    /// are taken by someone else before each grow (as the JS glue may grow the memory).
    struct Arena {
        base: *mut u8,
        used: usize,
        max: usize,
        elsewhere: usize,
    }

    impl Arena {
        fn new(max: usize) -> Self {
            let base = unsafe { std::alloc::alloc(Layout::from_size_align(max * PAGE, PAGE).unwrap()) };
            assert!(!base.is_null());
            Arena { base, used: 0, max, elsewhere: 0 }
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            unsafe { std::alloc::dealloc(self.base, Layout::from_size_align(self.max * PAGE, PAGE).unwrap()) }
        }
    }

    impl Pages for Arena {
        fn grow(&mut self, pages: usize) -> usize {
            self.used += self.elsewhere.min(self.max - self.used);
            if self.used + pages > self.max {
                return usize::MAX;
            }
            let old = self.base as usize / PAGE + self.used;
            self.used += pages;
            old
        }
    }

    fn next(seed: &mut u64) -> u64 {
        // xorshift64*
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Mostly small requests, as an append makes, some of a few KB, a few up to 200 KB;
    /// alignments 1 to 64.
    fn layout(seed: &mut u64) -> Layout {
        let size = match next(seed) % 20 {
            0 => next(seed) % 200_001,
            1..=3 => next(seed) % 5000,
            _ => next(seed) % 100,
        } as usize;
        Layout::from_size_align(size, 1 << (next(seed) % 7)).unwrap()
    }

    struct Block {
        p: *mut u8,
        l: Layout,
        fill: u8,
    }

    fn write(b: &Block) {
        unsafe { std::ptr::write_bytes(b.p, b.fill, b.l.size()) }
    }

    fn intact(b: &Block, len: usize) -> bool {
        unsafe { std::slice::from_raw_parts(b.p, len) }.iter().all(|&x| x == b.fill)
    }

    /// Checks a new block against the arena and every live block.
    fn check_new(heap: &Heap<Arena>, live: &[Block], b: &Block) {
        let (p, l) = (b.p as usize, b.l);
        assert!(!b.p.is_null(), "{l:?} failed");
        assert_eq!(p % l.align(), 0, "{l:?} at {p:#x}");
        let arena = heap.pages.base as usize;
        assert!(p >= arena && p + l.size() <= arena + heap.pages.used * PAGE, "{l:?} at {p:#x} outside");
        for o in live {
            let q = o.p as usize;
            assert!(
                p + l.size().max(1) <= q || q + o.l.size().max(1) <= p,
                "{l:?} at {p:#x} overlaps {:?} at {q:#x}",
                o.l
            );
        }
    }

    #[test]
    fn random_allocs_reallocs_and_frees_keep_blocks_apart_aligned_and_intact() {
        for (case, elsewhere) in [(1u64, 0usize), (2, 0), (3, 1), (4, 3)] {
            let mut seed = 0x9E37_79B9_7F4A_7C15 ^ case;
            let mut arena = Arena::new(4096);
            arena.elsewhere = elsewhere;
            let mut heap = Heap::new(arena);
            let mut live: Vec<Block> = Vec::new();
            for step in 0..20_000 {
                let op = next(&mut seed) % 10;
                if live.is_empty() || (op < 4 && live.len() < 300) {
                    let l = layout(&mut seed);
                    let b = Block { p: heap.alloc(l), l, fill: step as u8 };
                    check_new(&heap, &live, &b);
                    write(&b);
                    live.push(b);
                } else if op < 7 {
                    let b = live.swap_remove((next(&mut seed) % live.len() as u64) as usize);
                    assert!(intact(&b, b.l.size()), "step {step}: {:?} overwritten", b.l);
                    unsafe { heap.dealloc(b.p, b.l) };
                } else {
                    let old = live.swap_remove((next(&mut seed) % live.len() as u64) as usize);
                    let size = layout(&mut seed).size();
                    let p = unsafe { heap.realloc(old.p, old.l, size) };
                    let b = Block { p, l: Layout::from_size_align(size, old.l.align()).unwrap(), fill: old.fill };
                    check_new(&heap, &live, &b);
                    assert!(intact(&b, old.l.size().min(size)), "step {step}: realloc lost contents");
                    write(&b);
                    live.push(b);
                }
            }
        }
    }

    /// The same requests, round after round, each round freeing what it took: after the
    /// first rounds the freed blocks serve every request and the heap stops growing.
    #[test]
    fn a_steady_alloc_free_loop_reuses_freed_blocks() {
        let mut heap = Heap::new(Arena::new(4096));
        let mut pages = Vec::new();
        for _ in 0..30 {
            let mut seed = 0x1234_5678_9ABC_DEF1;
            let mut live = Vec::new();
            for _ in 0..400 {
                let l = layout(&mut seed);
                let p = heap.alloc(l);
                assert!(!p.is_null() && p as usize % l.align() == 0);
                live.push((p, l));
                if next(&mut seed) % 3 == 0 {
                    let (p, l) = live.swap_remove((next(&mut seed) % live.len() as u64) as usize);
                    unsafe { heap.dealloc(p, l) };
                }
            }
            for (p, l) in live {
                unsafe { heap.dealloc(p, l) };
            }
            pages.push(heap.pages.used);
        }
        assert_eq!(pages[2], pages[29], "pages after each round: {pages:?}");
    }

    #[test]
    fn memory_that_cannot_grow_gives_null() {
        let mut heap = Heap::new(Arena::new(8));
        assert!(!heap.alloc(Layout::from_size_align(100, 8).unwrap()).is_null());
        assert!(heap.alloc(Layout::from_size_align(1 << 20, 8).unwrap()).is_null());
        // (past 4 GiB on wasm32: the end of memory overflows an address)
        struct Top;
        impl Pages for Top {
            fn grow(&mut self, _: usize) -> usize {
                usize::MAX / PAGE - 1
            }
        }
        assert!(Heap::new(Top).alloc(Layout::from_size_align(8, 8).unwrap()).is_null());
    }
}
