//! How events sit in a generation's Redis stream: one entry holds one or more consecutive
//! events, and its id is the number of the last of them (`<seq>-0`), so `XREAD … <seq>-0`
//! returns every entry that holds an event after `seq`.
//!
//! Fields: `k`, one letter per event ([`Kind::letter`]); `p`, the payloads one after
//! another; `n`, their byte lengths separated by commas, only when there is more than one.
//! Why several events per entry: Redis's cost is mostly per entry, and the writer sends what
//! one generation produced since its last batch together.

use redis::streams::StreamId;

use super::{seq_of, LOST};
use crate::generation::Kind;

/// The events of one generation in one batch, as one entry.
#[derive(Default)]
pub(super) struct Packed {
    pub(super) last: u64,
    pub(super) letters: String,
    pub(super) payloads: String,
    pub(super) lengths: String,
    pub(super) count: usize,
}

impl Packed {
    pub(super) fn push(&mut self, seq: u64, kind: Kind, payload: &str) {
        if self.count > 0 {
            self.lengths.push(',');
        }
        self.lengths.push_str(&payload.len().to_string());
        self.last = seq;
        self.letters.push_str(kind.letter());
        self.payloads.push_str(payload);
        self.count += 1;
    }

    /// `XADD` arguments after the stream's name and trimming: the id and the fields.
    pub(super) fn args(&self, cmd: &mut redis::Cmd) {
        cmd.arg(format!("{}-0", self.last)).arg("k").arg(&self.letters).arg("p").arg(&self.payloads);
        if self.count > 1 {
            cmd.arg("n").arg(&self.lengths);
        }
    }
}

/// The events of an entry as `(seq, kind letter, payload)`. An entry that cannot be read
/// (its lengths do not add up) reads as the lost mark at its first event: a reader ends there
/// with an error instead of sending a guess.
pub(super) fn events(entry: &StreamId) -> Vec<(u64, String, String)> {
    let field = |name: &str| entry.map.get(name).and_then(|v| redis::from_redis_value::<String>(v).ok());
    let last = seq_of(&entry.id).unwrap_or(0);
    let letters = field("k").unwrap_or_default();
    let payloads = field("p").unwrap_or_default();
    let count = letters.len().max(1);
    if count == 1 {
        return vec![(last, letters, payloads)];
    }
    let first = (last + 1).saturating_sub(count as u64);
    let lengths: Vec<usize> = field("n").unwrap_or_default().split(',').filter_map(|n| n.trim().parse().ok()).collect();
    let fits = letters.is_ascii()
        && lengths.len() == count
        && lengths.iter().sum::<usize>() == payloads.len()
        && lengths
            .iter()
            .scan(0, |at, n| {
                *at += n;
                Some(*at)
            })
            .all(|at| payloads.is_char_boundary(at));
    if !fits {
        return vec![(first, LOST.to_string(), String::new())];
    }
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for (i, (letter, len)) in letters.chars().zip(lengths).enumerate() {
        out.push((first + i as u64, letter.to_string(), payloads[at..at + len].to_string()));
        at += len;
    }
    out
}

/// The number and kind letter of the last event of an entry.
pub(super) fn last_event(entry: &StreamId) -> (u64, String) {
    let letters = entry.map.get("k").and_then(|v| redis::from_redis_value::<String>(v).ok()).unwrap_or_default();
    let last = letters.chars().last().map(String::from).unwrap_or_default();
    (seq_of(&entry.id).unwrap_or(0), last)
}

/// The number of the first event of an entry.
pub(super) fn first_seq(entry: &StreamId) -> u64 {
    let count =
        entry.map.get("k").and_then(|v| redis::from_redis_value::<String>(v).ok()).map_or(1, |k| k.len().max(1));
    (seq_of(&entry.id).unwrap_or(0) + 1).saturating_sub(count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &str)]) -> StreamId {
        let mut e = StreamId { id: id.into(), ..StreamId::default() };
        for (k, v) in fields {
            e.map.insert(k.to_string(), redis::Value::BulkString(v.as_bytes().to_vec()));
        }
        e
    }

    #[test]
    fn packed_events_read_back_with_their_numbers() {
        let mut p = Packed::default();
        p.push(7, Kind::Content, "片段");
        p.push(8, Kind::Reasoning, "");
        p.push(9, Kind::Content, "ab");
        let mut cmd = redis::cmd("XADD");
        p.args(&mut cmd);
        let e = entry("9-0", &[("k", &p.letters), ("p", &p.payloads), ("n", &p.lengths)]);
        let got = events(&e);
        assert_eq!(got, [(7, "c".into(), "片段".into()), (8, "r".into(), String::new()), (9, "c".into(), "ab".into())]);
        assert_eq!(last_event(&e), (9, "c".into()));
        assert_eq!(first_seq(&e), 7);
        // One event per entry: the shape without `n`.
        let one = entry("3-0", &[("k", "d"), ("p", "")]);
        assert_eq!(events(&one), [(3, "d".into(), String::new())]);
        assert_eq!(first_seq(&one), 3);
    }

    #[test]
    fn an_entry_that_does_not_add_up_reads_as_lost() {
        for n in ["6,1", "1,1,1", "1,5"] {
            let e = entry("9-0", &[("k", "cc"), ("p", "片段"), ("n", n)]);
            assert_eq!(events(&e), [(8, LOST.into(), String::new())], "n={n}");
        }
    }
}
