// The wasm test cases, included by wasm/tests/wasm_node.rs and wasm/tests/wasm_browser.rs.

use chunkwise::{Format, Options, StreamDecoder, Update};
use chunkwise_wasm::RawDecoder;
use wasm_bindgen_test::wasm_bindgen_test;

const BODY: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"先想\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好👋🏽，\"}}]}\r\n\r\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"世界\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\n",
    "data: [DONE]\n\n",
);

fn decode(pieces: &[&[u8]]) -> Update {
    let mut d = StreamDecoder::new(Options { format: Format::OpenAi, ..Options::default() });
    let mut all = Update::default();
    for p in pieces {
        all.merge(d.push(p));
    }
    all.merge(d.finish());
    all
}

#[wasm_bindgen_test]
fn openai_stream_is_split_invariant_in_wasm() {
    let bytes = BODY.as_bytes();
    let whole = decode(&[bytes]);
    assert_eq!(whole.text, "你好👋🏽，世界");
    assert_eq!(whole.reasoning, "先想");
    assert_eq!(whole.usage.as_deref(), Some("{\"total_tokens\":9}"));
    for at in 0..=bytes.len() {
        assert_eq!(decode(&[&bytes[..at], &bytes[at..]]), whole, "cut at {at}");
    }
    assert_eq!(decode(&bytes.chunks(1).collect::<Vec<_>>()), whole);
}

/// The results block, as JS reads it.
fn results(raw: &RawDecoder) -> [u32; 6] {
    // SAFETY: results_ptr points at the decoder's six-number results block.
    unsafe { *(raw.results_ptr() as *const [u32; 6]) }
}

/// What JS reads: the UTF-16 code units at the output address of the results block.
fn out_units(raw: &RawDecoder, len: u32) -> Vec<u16> {
    // SAFETY: the address is the output buffer of at least `len` units, which stays
    // untouched until the next call on `raw`.
    unsafe { std::slice::from_raw_parts(results(raw)[0] as *const u16, len as usize) }.to_vec()
}

/// The text of a `tick` or `skip` result, as the glue reads it (js/decoder.js, `_text`): up
/// to three UTF-16 code units in the number itself, else (negated) a length in `out` or, with
/// the MORE bit, a UTF-8 range in the results block.
fn shown_text(raw: &RawDecoder, shown: f64) -> String {
    if shown < 0.0 {
        let r = -shown as u32;
        if r & (1 << 31) != 0 {
            let [.., from, to, _] = results(raw);
            // SAFETY: the range is UTF-8 text in wasm memory until the next call on `raw`.
            let bytes = unsafe { std::slice::from_raw_parts(from as *const u8, (to - from) as usize) };
            return std::str::from_utf8(bytes).unwrap().to_owned();
        }
        return String::from_utf16(&out_units(raw, r)).unwrap();
    }
    let packed = shown as u64;
    let units: Vec<u16> = (0..packed & 3).map(|i| (packed >> (2 + 16 * i)) as u16).collect();
    String::from_utf16(&units).unwrap()
}

/// Writes `bytes` where JS writes a chunk; returns the input's address.
fn write_input(_raw: &mut RawDecoder, bytes: &[u8]) -> *mut u8 {
    let ptr = chunkwise_wasm::input(bytes.len());
    // SAFETY: input(len) returned a buffer of at least len bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
    ptr
}

fn feed(raw: &mut RawDecoder, bytes: &[u8]) -> u32 {
    write_input(raw, bytes);
    raw.push(bytes.len())
}

/// `edges` as the glue runs it: the chunk stays out of wasm memory; the text of its middle
/// is decoded here by `from_utf8`, standing in for the engine's builtins, and when that
/// rejects it the decoder is rolled back and decodes the chunk (`undo_edges` + `push`).
/// Returns the text and whether `edges` decided (else the chunk went to `push` directly).
fn feed_edges(raw: &mut RawDecoder, bytes: &[u8]) -> (String, bool) {
    let n = bytes.len();
    let word = |at: usize| u32::from_le_bytes(std::array::from_fn(|i| bytes.get(at + i).copied().unwrap_or(0)));
    let e = raw.edges(n, word(0), word(n.saturating_sub(4)));
    if e != 0 {
        let (head, tail, completed) = ((e >> 24 & 3) as usize, (e >> 26 & 3) as usize, e & 0xFF_FFFF);
        if let Ok(middle) = std::str::from_utf8(&bytes[head..n - tail]) {
            let mut text: String = char::from_u32(completed.wrapping_sub(1)).into_iter().collect();
            text.push_str(middle);
            return (text, true);
        }
        raw.undo_edges();
    }
    let len = feed(raw, bytes);
    (String::from_utf16(&out_units(raw, len)).unwrap(), false)
}

#[wasm_bindgen_test]
fn raw_decoder_decides_the_ends_of_chunks_that_js_keeps() {
    let mut raw = RawDecoder::create(0, false, 0.0, 0.0, 0.0, 1 << 20, 0).unwrap();
    let bytes = "\u{FEFF}流式 😀 ok 流式 😀".as_bytes(); // EF BB BF, E6 B5 81, E5 BC 8F, 20, F0 9F 98 80, ...
    // The BOM is not decided yet: push decodes (and removes it); 流 is held.
    assert_eq!(feed_edges(&mut raw, &bytes[..5]), (String::new(), false));
    // 流 completed from the first bytes; 式 and the space in the middle; 😀 held (3 bytes).
    assert_eq!(feed_edges(&mut raw, &bytes[5..13]), ("流式 ".to_string(), true));
    assert_eq!(results(&raw)[5], 1, "a cut character is held");
    assert_eq!(feed_edges(&mut raw, &bytes[13..]), ("😀 ok 流式 😀".to_string(), true));
    assert_eq!(results(&raw)[5], 0);
    // Ill-formed bytes in the middle: rolled back, then replaced by push, one U+FFFD per
    // maximal subpart, and a held character is not lost on the way.
    assert_eq!(feed_edges(&mut raw, b"a\xE0\x80b\xED\xA0\x80\xE6"), ("a\u{FFFD}\u{FFFD}b\u{FFFD}\u{FFFD}\u{FFFD}".to_string(), false));
    assert_eq!(feed_edges(&mut raw, b"\xB5\x81\xFF cdefg"), ("流\u{FFFD} cdefg".to_string(), false));
    // Too short to decide from its ends.
    assert_eq!(feed_edges(&mut raw, "流式".as_bytes()), ("流式".to_string(), false));
    assert_eq!(raw.finish() & ((1 << 30) - 1), 0);
    let mut sse = RawDecoder::create(1, false, 0.0, 0.0, 0.0, 1 << 20, 0).unwrap();
    assert_eq!(sse.edges(16, 0, 0), 0, "only plain text");
}

/// The results block says when plain text holds nothing (JS then decodes a whole chunk that
/// the builtins accept without calling the decoder): never before the BOM is decided, never
/// with a character cut, never after the stream ended, never for other formats.
#[wasm_bindgen_test]
fn raw_decoder_says_when_it_holds_no_plain_text() {
    let held = |raw: &RawDecoder| results(raw)[5];
    let mut raw = RawDecoder::create(0, false, 0.0, 0.0, 0.0, 1 << 20, 0).unwrap();
    assert_eq!(held(&raw), 1, "the BOM is undecided");
    feed(&mut raw, b"\xEF\xBB");
    assert_eq!(held(&raw), 1, "the first bytes of a BOM");
    feed(&mut raw, b"\xBFa");
    assert_eq!(held(&raw), 0);
    feed_edges(&mut raw, b"bcdefghi\xE6\xB5");
    assert_eq!(held(&raw), 1, "a cut character, after edges");
    feed_edges(&mut raw, b"\x81cdefghi");
    assert_eq!(held(&raw), 0);
    raw.finish();
    assert_eq!(held(&raw), 1, "the next stream starts with an undecided BOM");
    feed(&mut raw, b"d");
    assert_eq!(held(&raw), 0);
    raw.reset();
    assert_eq!(held(&raw), 1, "after reset");
    let mut paced = RawDecoder::create(0, false, 40.0, 1500.0, 1000.0, 1 << 20, 0).unwrap();
    feed(&mut paced, b"abc");
    assert_eq!(held(&paced), 1, "paced text always goes through the decoder");
    let mut sse = RawDecoder::create(1, false, 0.0, 0.0, 0.0, 1 << 20, 0).unwrap();
    feed(&mut sse, b"data: x\n\n");
    assert_eq!(held(&sse), 1, "not plain text");
}

#[wasm_bindgen_test]
fn raw_decoder_hands_text_to_js_as_utf16() {
    let mut raw = RawDecoder::create(0, false, 0.0, 0.0, 0.0, 1 << 20, 0).expect("format 0 is text");
    let text = "流式传输 😀";
    let bytes = text.as_bytes();
    let first = feed(&mut raw, &bytes[..4]); // cut inside 式
    assert_eq!(String::from_utf16(&out_units(&raw, first)).unwrap(), "流");
    let second = feed(&mut raw, &bytes[4..]);
    assert_eq!(second & (1 << 31), 0, "plain text needs no meta");
    assert_eq!(String::from_utf16(&out_units(&raw, second & ((1 << 30) - 1))).unwrap(), "式传输 😀");
    let end = raw.finish();
    assert_ne!(end & (1 << 30), 0, "finish sets DONE");
}

#[wasm_bindgen_test]
fn raw_decoder_rejects_unknown_formats_and_paces() {
    assert!(RawDecoder::create(Format::ALL.len() as u32, false, 0.0, 0.0, 0.0, 1, 0).is_none());
    let mut raw = RawDecoder::create(0, false, 40.0, 1500.0, 1000.0, 1 << 20, 0).unwrap();
    feed(&mut raw, "ab".as_bytes());
    raw.finish();
    let mut shown = String::new();
    let mut now = 0.0;
    while raw.pending() > 0 || shown.len() < 2 {
        let tick = raw.tick(now, u32::MAX);
        shown += &shown_text(&raw, tick);
        now += 16.0;
        assert!(now < 5_000.0, "drains within drainMs");
    }
    assert_eq!(shown, "ab");
}

/// Text of one to three UTF-16 code units travels in the result of `tick` and `skip`; longer
/// text in `out` (or, from `utf8_min` bytes, as UTF-8). A surrogate pair is two units, and
/// U+0000 and U+FFFF are units like any other.
#[wasm_bindgen_test]
fn tick_and_skip_carry_short_text_in_their_result() {
    for text in ["", "a", "\0", "\u{FFFF}", "中", "ab", "中文", "😀", "a😀", "abc", "中\0\u{FFFF}", "abcd", "😀😀", "長い文章です"] {
        for utf8_min in [u32::MAX, 4, 1] {
            let mut raw = RawDecoder::create(0, false, 40.0, 1500.0, 1000.0, 1 << 20, 1).unwrap();
            feed(&mut raw, text.as_bytes());
            raw.finish();
            let shown = raw.skip(utf8_min);
            let units = text.encode_utf16().count();
            assert_eq!(shown >= 0.0, units <= 3, "{text:?}: in the result only when short");
            assert_eq!(shown_text(&raw, shown), text, "{text:?}, utf8_min {utf8_min}");
        }
    }
    // A tick at the drain deadline shows everything, the same way.
    let mut raw = RawDecoder::create(0, false, 40.0, 1500.0, 0.0, 1 << 20, 1).unwrap();
    feed(&mut raw, "x😀".as_bytes());
    raw.finish();
    let shown = raw.tick(0.0, u32::MAX);
    assert_eq!(shown_text(&raw, shown), "x😀");
    assert_eq!(raw.tick(16.0, u32::MAX), 0.0, "nothing left to show");
}

#[wasm_bindgen_test]
fn raw_decoder_gives_the_response_id_once_known() {
    let openai = Format::ALL.iter().position(|&(n, _)| n == "openai").unwrap() as u32;
    let mut raw = RawDecoder::create(openai, false, 0.0, 0.0, 0.0, 1 << 20, 0).unwrap();
    assert_eq!(raw.response_id(), 0, "not known before the first message");
    feed(&mut raw, b"data: {\"id\":\"chatcmpl-\xE4\xB8\xAD\",\"choices\":[]}\n\n");
    let n = raw.response_id();
    assert_eq!(String::from_utf16(&out_units(&raw, n - 1)).unwrap(), "chatcmpl-中");
}

#[wasm_bindgen_test]
fn read_error_body_answers_with_lengths_of_utf16_text() {
    let read = |body: &[u8]| {
        let ptr = chunkwise_wasm::input(body.len());
        // SAFETY: input(len) returned a buffer of at least len bytes.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), ptr, body.len()) };
        chunkwise_wasm::read_error_body(body.len())
    };
    assert!(read(b"<html>bad gateway</html>").is_null());
    let at = read(br#"{"error":{"message":"slow down","type":"rate_limit","code":429}}"#);
    // SAFETY: four numbers at `at` until the next call.
    let r = unsafe { std::slice::from_raw_parts(at, 4) };
    let (ptr, kind, message, code) = (r[0], r[1], r[2], r[3]);
    let total = (kind - 1 + message + code - 1) as usize;
    // SAFETY: the text lies at `ptr` until the next call.
    let units = unsafe { std::slice::from_raw_parts(ptr as *const u16, total) };
    assert_eq!(String::from_utf16(units).unwrap(), "rate_limitslow down429");
    assert_eq!((kind, message, code), (11, 9, 4));
}

/// Paced plain text that JS decodes (`mode` 2): `edges` queues the chunk JS copied to
/// `input()`, a tick answers how many UTF-16 units of JS's text to show, `undo_edges` takes
/// a rejected chunk back, and `skip` shows the rest of JS's text.
#[wasm_bindgen_test]
fn js_text_decoder_paces_the_bytes_js_decodes() {
    let mut raw = RawDecoder::create(0, false, 40.0, 1500.0, 0.0, 1 << 20, 2).unwrap();
    let edges = |raw: &mut RawDecoder, b: &[u8]| {
        write_input(raw, b);
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let e = raw.edges(b.len(), word(0), word(b.len() - 4));
        (e >> 26 & 3, e >> 24 & 3, e & 0xFF_FFFF)
    };
    // A chunk that ends inside 😀 (F0 9F 98 80): its first three bytes are held.
    assert_eq!(edges(&mut raw, b"\xE4\xB8\xAD\xE6\x96\x87\xF0\x9F\x98"), (3, 0, 0), "tail, head, completed");
    // Its last byte, and text after it.
    assert_eq!(edges(&mut raw, b"\x80abcdefg"), (0, 1, 0x1F600 + 1));
    // A chunk the builtins would reject: taken back.
    edges(&mut raw, b"xx\xFFyyyyyy");
    raw.undo_edges();
    // The first tick shows one cluster; after finish(), the drain deadline (0) the rest.
    assert_eq!(raw.tick(0.0, u32::MAX), 1.0, "中");
    raw.finish();
    assert_eq!(raw.tick(16.0, u32::MAX), (1 + 2 + 7) as f64, "文😀abcdefg");
    assert_eq!(raw.skip(u32::MAX), 0.0);
    assert_eq!(raw.pending(), 0);
}
