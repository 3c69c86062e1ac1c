//! The same cases in a browser: `wasm-pack test --headless --chrome` (Debian's chromium).
#![cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
include!("wasm/cases.rs");
