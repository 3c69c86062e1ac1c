//! Core properties of the decoder: every format gives the same merged result however the
//! body is cut, bounds are reported and never lose later data, and the provider formats
//! read their documented shapes.
mod common;

use chunkwise::{Format, Options, StreamDecoder, Update};
use common::{all_splits, decode, split_random, Rng};

fn opts(format: Format) -> Options {
    Options { format, ..Options::default() }
}

/// Decodes under every split and checks all agree; returns the whole-input result.
fn decode_all_splits(options: &Options, input: &[u8], random_runs: u64) -> Update {
    let whole = decode(options, &[input]);
    for (i, pieces) in all_splits(input, random_runs).iter().enumerate() {
        let got = decode(options, pieces);
        assert_eq!(got, whole, "split #{i} ({} pieces) of {:?} differs", pieces.len(), String::from_utf8_lossy(input));
    }
    whole
}

/// The oracle: std's lossy UTF-8 decoding (maximal subparts, as WHATWG) after stripping one BOM.
fn reference_utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).into_owned()
}

fn random_utf8ish(rng: &mut Rng, len: usize) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"a",
        b"\n",
        "中".as_bytes(),
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\xEF\xBB\xBF",
        b"\xE4\xB8",
        b"\xF0\x9F",
        b"\x80",
        b"\xFF",
        b"\xC0\xAF",
        b"\xED\xA0\x80",
        b"\xF4\x90\x80\x80",
        b"\xE0\x80",
        b"\xF0\x8F",
    ];
    let mut out = Vec::new();
    while out.len() < len {
        out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
    }
    out
}

/// The glue's whole-chunk path: when the decoder `holds_nothing`, a piece that a strict
/// decoder (here `std::str::from_utf8`, which rejects anything ill-formed or incomplete, as
/// the engine's builtins do) accepts is decoded by it alone, and the decoder is not called;
/// otherwise the decoder decodes it. The same text under every split, BOMs and ill-formed
/// bytes included, and the decoder is never left holding bytes it should not.
#[test]
fn utf8_whole_chunks_decoded_elsewhere_when_nothing_is_held_equal_whatwg_utf8_decode() {
    use chunkwise::utf8::Utf8Decoder;
    let mut rng = Rng::new(12);
    let mut elsewhere = 0;
    for _ in 0..300 {
        let len = rng.below(24);
        let mut input = random_utf8ish(&mut rng, len);
        if rng.below(4) == 0 {
            input.splice(0..0, *b"\xEF\xBB\xBF");
        }
        for pieces in all_splits(&input, 8) {
            let mut d = Utf8Decoder::new();
            let mut out = String::new();
            for piece in &pieces {
                match std::str::from_utf8(piece) {
                    Ok(text) if d.holds_nothing() => {
                        out.push_str(text);
                        elsewhere += 1;
                    }
                    _ => d.decode(piece, &mut out, false),
                }
            }
            d.decode(&[], &mut out, true);
            assert_eq!(out, reference_utf8(&input), "input {input:02X?} in {} pieces", pieces.len());
        }
    }
    assert!(elsewhere > 1000, "{elsewhere} pieces decoded elsewhere");
    // What it reports: nothing held only once the BOM is decided and no character is cut.
    let mut d = Utf8Decoder::new();
    let mut out = String::new();
    assert!(!d.holds_nothing(), "a new decoder has not decided the BOM");
    d.decode(b"\xEF\xBB", &mut out, false);
    assert!(!d.holds_nothing(), "the first bytes of a BOM");
    d.decode(b"\xBFa\xE6", &mut out, false);
    assert!(!d.holds_nothing(), "a cut character");
    d.decode(b"\xB5\x81", &mut out, false);
    assert!(d.holds_nothing());
    assert_eq!(out, "a流");
    d.decode(&[], &mut out, true);
    assert!(!d.holds_nothing(), "after the last piece the next stream starts over");
}

/// `Utf8Decoder::edges` as the glue runs it (the chunk's bytes stay in JS; the decoder sees
/// its length and first and last four bytes): when the decoder holds nothing and a strict
/// decoder (`std::str::from_utf8`, standing in for the engine's builtins) accepts the whole
/// piece, the decoder is not called; else `edges` decides the ends, the strict decoder
/// decodes the middle, and when it rejects the middle the decoder is restored to its state
/// before `edges` and decodes the piece itself. The same text as WHATWG UTF-8 decode under
/// every split, BOMs and ill-formed bytes included, and both ways out of `edges` are taken.
#[test]
fn utf8_edges_path_equals_whatwg_utf8_decode_under_every_split() {
    use chunkwise::utf8::{Utf8Decoder, EDGES_MIN};
    let mut rng = Rng::new(13);
    let (mut middles, mut undone) = (0, 0);
    for case in 0..400 {
        let len = rng.below(48);
        let mut input = random_utf8ish(&mut rng, len);
        if case % 2 == 0 {
            // Mostly valid text, so that middles are accepted too.
            input = String::from_utf8_lossy(&input).into_owned().into_bytes();
            input.insert(rng.below(input.len() + 1), [0x80, 0xE6, 0xFF][rng.below(3)]);
        }
        if rng.below(4) == 0 {
            input.splice(0..0, *b"\xEF\xBB\xBF");
        }
        let mut splits = all_splits(&input, 8);
        for seed in 0..8 {
            splits.push(split_random(&input, 100 + seed, EDGES_MIN + seed as usize * 3));
        }
        for pieces in splits {
            let mut d = Utf8Decoder::new();
            let mut out = String::new();
            for piece in &pieces {
                // As the glue does: the whole chunk only when it ends in ASCII, so that a clean
                // decoder also meets valid chunks ending inside a character through edges.
                let ascii_end = piece.last().is_some_and(|b| b.is_ascii());
                if let (true, true, Ok(text)) = (d.holds_nothing(), ascii_end, std::str::from_utf8(piece)) {
                    out.push_str(text);
                    continue;
                }
                let n = piece.len();
                let before = d.clone();
                let edge = |at: usize| -> [u8; 4] { std::array::from_fn(|i| piece.get(at + i).copied().unwrap_or(0)) };
                let Some(e) = d.edges(n, edge(0), edge(n.saturating_sub(4))) else {
                    assert!(n < EDGES_MIN, "edges declined {piece:02X?}");
                    d.decode(piece, &mut out, false);
                    continue;
                };
                match std::str::from_utf8(&piece[e.head..n - e.tail]) {
                    Ok(middle) => {
                        out.extend(e.completed);
                        out.push_str(middle);
                        assert_eq!(d.holds_nothing(), e.tail == 0);
                        middles += 1;
                    }
                    Err(_) => {
                        d = before;
                        d.decode(piece, &mut out, false);
                        undone += 1;
                    }
                }
            }
            d.decode(&[], &mut out, true);
            assert_eq!(out, reference_utf8(&input), "input {input:02X?} in pieces {pieces:02X?}");
        }
    }
    assert!(middles > 2000 && undone > 2000, "{middles} middles decoded elsewhere, {undone} undone");
}

#[test]
fn text_equals_whatwg_utf8_decode_under_every_split() {
    let mut rng = Rng::new(7);
    for _ in 0..300 {
        let len = rng.below(24);
        let input = random_utf8ish(&mut rng, len);
        let got = decode_all_splits(&opts(Format::Text), &input, 8);
        assert_eq!(got.text, reference_utf8(&input), "input {input:02X?}");
        assert!(got.done);
    }
}

#[test]
fn bom_is_stripped_once_and_only_at_the_start() {
    let input = b"\xEF\xBB\xBF\xEF\xBB\xBFa";
    assert_eq!(decode_all_splits(&opts(Format::Text), input, 4).text, "\u{FEFF}a");
    assert_eq!(decode_all_splits(&opts(Format::Text), b"\xEF\xBB", 4).text, "\u{FFFD}");
    assert_eq!(decode_all_splits(&opts(Format::Text), b"a\xEF\xBB\xBF", 4).text, "a\u{FEFF}");
    // The first bytes of a BOM that is not one are content, in every framing.
    let lines = |body: &[u8]| {
        let got = decode_all_splits(&opts(Format::Ndjson), body, 4);
        got.events.into_iter().map(|e| e.data).collect::<Vec<_>>()
    };
    assert_eq!(lines(b"\xEF\xBB\xBF{}\n"), ["{}"]);
    assert_eq!(lines(b"\xEF\xBB{}\n"), ["\u{FFFD}{}"]);
    assert_eq!(lines(b"\xEF\xBB"), ["\u{FFFD}"]);
    assert_eq!(lines(b"\xEF\n{}\n"), ["\u{FFFD}", "{}"]);
}

#[test]
fn decoder_is_reusable_after_reset_and_finish() {
    let mut d = StreamDecoder::new(opts(Format::Text));
    assert_eq!(d.push(b"\xE4\xB8").text, "");
    d.reset();
    assert_eq!(d.push("中".as_bytes()).text, "中");
    assert_eq!(d.finish().text, "");
    assert_eq!(d.push(b"\xEF\xBB\xBFx").text, "x", "a finished decoder strips the BOM of the next stream");
}

const SSE: &str = "\u{FEFF}: comment\r\nevent: add\r\ndata: 1\r\ndata:2\r\nid: 7\r\n\r\ndata\rdata: x\r\rretry: 100\n\nid: a\0b\ndata: y\n\nid\ndata: z\n\nevent: e\n\ndata: lost";

#[test]
fn sse_events_follow_the_whatwg_rules_under_every_split() {
    let got = decode_all_splits(&opts(Format::Sse), SSE.as_bytes(), 40);
    let events: Vec<(&str, &str, &str)> =
        got.events.iter().map(|e| (e.event.as_str(), e.data.as_str(), e.id.as_str())).collect();
    assert_eq!(
        events,
        vec![("add", "1\n2", "7"), ("message", "\nx", "7"), ("message", "y", "7"), ("message", "z", "")],
        "an id with NUL is ignored, an empty id resets, an event without data is not dispatched, an unfinished one is dropped"
    );
    assert!(got.errors.is_empty());
}

fn openai_chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
        serde_json::to_string(content).unwrap()
    )
}

#[test]
fn openai_stream_under_every_split() {
    let mut body = String::from(": keep-alive\n\n");
    body += "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"想一想\"}}]}\n\n";
    for piece in ["你好", "，世界 ", "👨‍👩‍👧", "\n```js\n"] {
        body += &openai_chunk(piece);
    }
    body += "data:{\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n";
    body += "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    body += "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n";
    body += "data: [DONE]\n\n";
    let got = decode_all_splits(&opts(Format::OpenAi), body.as_bytes(), 20);
    assert_eq!(got.text, "你好，世界 👨‍👩‍👧\n```js\n");
    assert_eq!(got.reasoning, "想一想");
    assert_eq!(got.finish_reason.as_deref(), Some("stop"));
    assert_eq!(got.usage.as_deref(), Some("{\"prompt_tokens\":5,\"completion_tokens\":7}"));
    assert!(got.done && got.errors.is_empty());
}

#[test]
fn bad_event_is_reported_and_decoding_continues() {
    let body = format!("{}data: {{not json\n\n{}", openai_chunk("a"), openai_chunk("b"));
    let got = decode_all_splits(&opts(Format::OpenAi), body.as_bytes(), 10);
    assert_eq!(got.text, "ab");
    assert_eq!(got.errors.len(), 1);
    assert_eq!(got.errors[0].kind, "bad_event");
    assert!(got.errors[0].message.contains("{not json"), "{}", got.errors[0].message);
}

#[test]
fn over_long_lines_are_reported_skipped_and_bounded() {
    let options = Options { format: Format::OpenAi, max_buffer_bytes: 64, ..Options::default() };
    let short = |t: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n");
    let body = format!("{}{}{}", short("a"), short(&"x".repeat(100)), short("b"));
    let got = decode_all_splits(&options, body.as_bytes(), 10);
    assert_eq!(got.text, "ab");
    assert_eq!(got.errors.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["buffer_limit"]);
}

#[test]
fn in_stream_provider_error_is_reported() {
    let body = format!(
        "{}data: {{\"error\":{{\"message\":\"Rate limit\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}}}\n\n",
        openai_chunk("partial")
    );
    let got = decode_all_splits(&opts(Format::OpenAi), body.as_bytes(), 5);
    assert_eq!(got.text, "partial");
    let e = &got.errors[0];
    assert_eq!(
        (e.kind.as_str(), e.message.as_str(), e.code.as_deref()),
        ("requests", "Rate limit", Some("\"rate_limit_exceeded\""))
    );
}

#[test]
fn a_json_error_body_instead_of_a_stream_is_read() {
    let body = b"{\n  \"error\": {\"message\": \"Incorrect API key\", \"type\": \"invalid_request_error\", \"code\": \"invalid_api_key\"}\n}\n";
    let got = decode_all_splits(&opts(Format::OpenAi), body, 10);
    assert_eq!(got.errors.len(), 1);
    assert_eq!(got.errors[0].message, "Incorrect API key");
}

#[test]
fn a_missing_final_blank_line_loses_nothing_in_provider_formats() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"end\"}}]}";
    assert_eq!(decode_all_splits(&opts(Format::OpenAi), body.as_bytes(), 5).text, "end");
}

#[test]
fn hex_records_as_the_php_backend_writes_them() {
    // The article's backend re-sends the whole message each time: cumulative.
    let mut body = Vec::new();
    let mut msg = String::new();
    for piece in ["你", "好，", "世界"] {
        msg += piece;
        body.extend_from_slice(format!("{:x}\r\n{msg}\r\n", msg.len()).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let options = Options { format: Format::HexRecords, cumulative: true, ..Options::default() };
    let got = decode_all_splits(&options, &body, 30);
    assert_eq!(got.text, "你好，世界");
    assert!(got.errors.is_empty() && got.done);
    // Without `cumulative`, payloads are one byte stream: a character may span records.
    let raw = b"2\r\n\xE4\xBD\r\n1\r\n\xA0\r\nzz\r\n3\r\nabc\r\n0\r\n\r\n";
    let got = decode_all_splits(&opts(Format::HexRecords), raw, 30);
    assert_eq!(got.text, "你abc");
    assert_eq!(got.errors.len(), 1, "the bad header is reported: {:?}", got.errors);
}

#[test]
fn ndjson_lines_become_events() {
    let got = decode_all_splits(&opts(Format::Ndjson), b"{\"a\":1}\r\n\n{\"b\":\"\xE4\xB8\xAD\"}", 10);
    let data: Vec<&str> = got.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["{\"a\":1}", "{\"b\":\"中\"}"]);
}

#[test]
fn ollama_native_chat() {
    let body = concat!(
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Hmm\"},\"done\":false}\n",
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":10,\"prompt_eval_count\":3,\"eval_count\":2}\n"
    );
    let got = decode_all_splits(&opts(Format::Ollama), body.as_bytes(), 10);
    assert_eq!((got.text.as_str(), got.reasoning.as_str()), ("Hi", "Hmm"));
    assert_eq!(got.finish_reason.as_deref(), Some("stop"));
    assert_eq!(got.usage.as_deref(), Some("{\"total_duration\":10,\"prompt_eval_count\":3,\"eval_count\":2}"));
    assert!(got.done);
}

#[test]
fn anthropic_merges_usage_and_reads_thinking() {
    let body = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let got = decode_all_splits(&opts(Format::Anthropic), body.as_bytes(), 10);
    assert_eq!((got.text.as_str(), got.reasoning.as_str()), ("Hello", "Let me"));
    assert_eq!(got.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(got.usage.as_deref(), Some("{\"input_tokens\":25,\"output_tokens\":15}"));
    assert!(got.done);
}

#[test]
fn gemini_sse_and_json_array() {
    let chunk = |t: &str, extra: &str| {
        format!(
            "{{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":{}}}],\"role\":\"model\"}}{extra}}}]}}",
            serde_json::to_string(t).unwrap()
        )
    };
    let parts = [chunk("Hello ", ""), chunk("world", ",\"finishReason\":\"STOP\"")];
    let sse: String = parts.iter().map(|p| format!("data: {p}\r\n\r\n")).collect();
    let array = format!("[{},\r\n{}]", parts[0], parts[1]);
    for body in [sse, array] {
        let got = decode_all_splits(&opts(Format::Gemini), body.as_bytes(), 10);
        assert_eq!(got.text, "Hello world");
        assert_eq!(got.finish_reason.as_deref(), Some("STOP"));
        assert!(got.errors.is_empty(), "{:?}", got.errors);
    }
}

#[test]
fn dashscope_cumulative_and_dify() {
    let ds = |t: &str, f: &str| {
        format!("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{{\"output\":{{\"text\":\"{t}\",\"finish_reason\":\"{f}\"}},\"usage\":{{\"total_tokens\":3}}}}\n\n")
    };
    let body = ds("你", "null") + &ds("你好", "null") + &ds("你好！", "stop");
    let options = Options { format: Format::DashScope, cumulative: true, ..Options::default() };
    let got = decode_all_splits(&options, body.as_bytes(), 10);
    assert_eq!(got.text, "你好！");
    assert_eq!(got.finish_reason.as_deref(), Some("stop"));
    let dify = concat!(
        "data: {\"event\": \"message\", \"answer\": \"Hi\"}\n\n",
        "data: {\"event\": \"ping\"}\n\n",
        "data: {\"event\": \"message_end\", \"metadata\": {\"usage\": {\"total_tokens\": 9}}}\n\n"
    );
    let got = decode_all_splits(&opts(Format::Dify), dify.as_bytes(), 10);
    assert_eq!(got.text, "Hi");
    assert_eq!(got.usage.as_deref(), Some("{\"total_tokens\": 9}"));
    assert!(got.done);
}

#[test]
fn responses_api_events() {
    let body = concat!(
        "event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"delta\":\"Think\"}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"total_tokens\":4}}}\n\n",
    );
    let got = decode_all_splits(&opts(Format::OpenAiResponses), body.as_bytes(), 10);
    assert_eq!((got.text.as_str(), got.reasoning.as_str()), ("Hi", "Think"));
    assert_eq!(got.finish_reason.as_deref(), Some("completed"));
    assert!(got.done);
}

#[test]
fn random_garbage_never_panics_and_stays_split_invariant() {
    let mut rng = Rng::new(99);
    let formats = Format::ALL.map(|(_, f)| f);
    for round in 0..200 {
        let len = rng.below(300);
        let mut input = random_utf8ish(&mut rng, len);
        for _ in 0..rng.below(8) {
            let at = rng.below(input.len() + 1);
            let insert: &[u8] =
                [&b"data: "[..], b"\n\n", b"{\"", b"}", b"[DONE]", b"\r", b"0\r\n", b"5\r\n"][rng.below(8)];
            input.splice(at..at, insert.iter().copied());
        }
        let options = Options {
            format: formats[round % formats.len()],
            max_buffer_bytes: 1 + rng.below(64),
            ..Options::default()
        };
        let whole = decode(&options, &[&input]);
        for seed in 0..6 {
            assert_eq!(decode(&options, &split_random(&input, seed, 7)), whole, "{:?} {input:02X?}", options.format);
        }
    }
}

#[test]
fn utf16_transcoding_matches_std() {
    let mut rng = Rng::new(5);
    for _ in 0..500 {
        let len = rng.below(64);
        let text = reference_utf8(&random_utf8ish(&mut rng, len));
        let mut out = vec![0xABCD];
        chunkwise::utf8::push_utf16(&mut out, &text);
        let expected: Vec<u16> = std::iter::once(0xABCD).chain(text.encode_utf16()).collect();
        assert_eq!(out, expected, "{text:?}");
    }
}

/// The UTF-16 sink (what the wasm build hands to JS) validates and transcodes in one pass;
/// it must agree with the oracle under every split too.
#[test]
fn utf16_sink_equals_whatwg_utf8_decode_under_every_split() {
    use chunkwise::utf8::Utf8Decoder;
    let mut rng = Rng::new(11);
    for _ in 0..400 {
        let len = rng.below(40);
        let input = random_utf8ish(&mut rng, len);
        let expected: Vec<u16> = reference_utf8(&input).encode_utf16().collect();
        // The reused buffer of the wasm binding starts dirty on purpose: stale units must
        // never show through.
        let mut reused = chunkwise::utf8::Utf16Buffer::default();
        for pieces in all_splits(&input, 6) {
            let mut d = Utf8Decoder::new();
            let mut out: Vec<u16> = Vec::new();
            let mut d2 = Utf8Decoder::new();
            reused.clear();
            for p in &pieces {
                d.decode(p, &mut out, false);
                d2.decode(p, &mut reused, false);
            }
            d.decode(&[], &mut out, true);
            d2.decode(&[], &mut reused, true);
            assert_eq!(out, expected, "input {input:02X?} in {} pieces", pieces.len());
            assert_eq!(reused.as_slice(), &expected[..], "Utf16Buffer, input {input:02X?}");
        }
    }
}

/// Found in review: `null` where an object may stand must not make the message invalid.
#[test]
fn null_objects_in_gemini_and_dashscope_are_tolerated() {
    let got = decode_all_splits(
        &opts(Format::Gemini),
        b"data: {\"candidates\":[{\"content\":null,\"finishReason\":\"SAFETY\"}]}\n\n",
        4,
    );
    assert_eq!((got.finish_reason.as_deref(), got.errors.len()), (Some("SAFETY"), 0), "{:?}", got.errors);
    let body = b"data:{\"output\":{\"choices\":[{\"message\":null,\"finish_reason\":\"stop\"}]}}\n\n";
    let got = decode_all_splits(&opts(Format::DashScope), body, 4);
    assert_eq!((got.finish_reason.as_deref(), got.errors.len()), (Some("stop"), 0), "{:?}", got.errors);
}

/// Found in review: how much leading whitespace there is, and where it is cut, must not
/// change whether a body is read as JSON or SSE.
#[test]
fn leading_whitespace_of_any_length_and_cut_is_split_invariant() {
    let json = b"{\"choices\":[{\"index\":0,\"message\":{\"content\":\"hi\"}}]}";
    for ws in [&b" "[..], b"\n", b"\r\n", b" \t\n  "] {
        let mut body = ws.repeat(6000 / ws.len());
        body.extend_from_slice(json);
        let whole = decode(&opts(Format::OpenAi), &[&body]);
        assert_eq!(whole.text, "hi");
        for seed in 0..8 {
            assert_eq!(decode(&opts(Format::OpenAi), &split_random(&body, seed, 3000)), whole);
        }
        assert_eq!(decode(&opts(Format::OpenAi), &[&body[..3000], &body[3000..6000], &body[6000..]]), whole);
    }
}

/// Found in review: a JSON body (an error, a non-streamed answer) behind a BOM.
#[test]
fn a_json_body_after_a_bom_is_read() {
    let body = b"\xEF\xBB\xBF{\"choices\":[{\"index\":0,\"message\":{\"content\":\"hi\"}}]}";
    assert_eq!(decode_all_splits(&opts(Format::OpenAi), body, 10).text, "hi");
    let sse = b"\xEF\xBB\xBFdata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n";
    assert_eq!(decode_all_splits(&opts(Format::OpenAi), sse, 10).text, "ok");
}
