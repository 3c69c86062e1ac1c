//! The core and the binding run as wasm in Node: `wasm-pack test --node`.
#![cfg(target_arch = "wasm32")]
include!("wasm/cases.rs");
