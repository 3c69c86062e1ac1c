//! All generations of this relay, by id, and the ids themselves.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Generation;

/// All generations, by id.
pub struct Registry {
    map: Mutex<HashMap<String, Arc<Generation>>>,
    running: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { map: Mutex::new(HashMap::new()), running: AtomicUsize::new(0) }
    }
}

impl Registry {
    pub fn insert(&self, g: Arc<Generation>) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(g.id.clone(), g);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Generation>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Generation>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// The generations whose answer has not ended yet.
    pub fn unfinished(&self) -> Vec<Arc<Generation>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|g| !g.is_finished()).cloned().collect()
    }

    pub fn running(&self) -> &AtomicUsize {
        &self.running
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets generations that finished more than `ttl` ago, and beyond `max_finished` kept
    /// answers the oldest ones first (so a burst of traffic cannot hold memory for a whole TTL).
    pub fn sweep(&self, ttl: Duration, max_finished: usize) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(deadline) = Instant::now().checked_sub(ttl) {
            map.retain(|_, g| !g.finished_before(deadline));
        }
        let mut finished: Vec<(Instant, String)> =
            map.iter().filter_map(|(id, g)| g.finished_at().map(|t| (t, id.clone()))).collect();
        if finished.len() > max_finished {
            finished.sort_unstable();
            for (_, id) in &finished[..finished.len() - max_finished] {
                map.remove(id);
            }
        }
    }
}

/// A fresh unguessable generation id (the id is the capability to resume and cancel).
pub fn new_id() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        raw.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u128::from_le_bytes(raw);
    let mut id = String::with_capacity(31);
    id.push_str("chatcmpl-");
    for _ in 0..22 {
        id.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn sweep_keeps_at_most_max_finished_answers_newest_first() {
        let r = Registry::default();
        let mut ids = Vec::new();
        for i in 0..5 {
            let g = Arc::new(Generation::new(
                format!("g{i}"),
                "m".into(),
                String::new(),
                4096,
                Arc::new(Metrics::default()),
            ));
            if i != 2 {
                g.end("stop", None);
            }
            ids.push(g.id.clone());
            r.insert(g);
            std::thread::sleep(Duration::from_millis(2));
        }
        r.sweep(Duration::from_secs(600), 2);
        let kept: Vec<bool> = ids.iter().map(|id| r.get(id).is_some()).collect();
        // g2 is running (never swept); of the finished g0, g1, g3, g4 the newest two stay.
        assert_eq!(kept, [false, false, true, true, true]);
    }

    #[test]
    fn ids_are_unique_and_url_safe() {
        let a = new_id();
        assert_ne!(a, new_id());
        assert!(a.starts_with("chatcmpl-") && a.len() == 31 && a[9..].chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
