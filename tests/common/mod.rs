//! Split helpers shared by the byte-level tests: every byte-level property must hold
//! however the input is cut, so each test runs its input through these.
#![allow(dead_code)]

pub mod pacer;

use chunkwise::{Options, StreamDecoder, Update};

/// Decodes `pieces` as one body with a fresh decoder, merging every update and `finish()`.
pub fn decode(options: &Options, pieces: &[&[u8]]) -> Update {
    let mut d = StreamDecoder::new(options.clone());
    let mut all = Update::default();
    for p in pieces {
        all.merge(d.push(p));
    }
    all.merge(d.finish());
    all
}

/// A tiny deterministic PRNG (xorshift64*), so failures reproduce from the seed alone.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The input cut in two at `at`.
pub fn split_at(input: &[u8], at: usize) -> Vec<&[u8]> {
    vec![&input[..at], &input[at..]]
}

/// The input cut into random pieces of 0..=max_len bytes (empty pieces included on purpose:
/// `onChunkReceived` can deliver an empty ArrayBuffer).
pub fn split_random(input: &[u8], seed: u64, max_len: usize) -> Vec<&[u8]> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = rng.below(max_len + 1).min(input.len() - at);
        out.push(&input[at..at + n]);
        at += n;
    }
    out
}

/// One byte per piece.
pub fn split_bytes(input: &[u8]) -> Vec<&[u8]> {
    input.chunks(1).collect()
}

/// Every way of cutting the input that the byte-level tests must agree on: whole, one byte
/// at a time, cut in two at every position, and `random_runs` random cuttings.
pub fn all_splits(input: &[u8], random_runs: u64) -> Vec<Vec<&[u8]>> {
    let mut out = vec![vec![input], split_bytes(input)];
    for at in 0..=input.len() {
        out.push(split_at(input, at));
    }
    for seed in 0..random_runs {
        out.push(split_random(input, seed, 1 + (seed as usize % 17)));
    }
    out
}
