//! Temporary placeholder until the pacer module lands (replaced in the same session).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceOptions {
    pub cps: f64,
    pub max_lag_ms: f64,
    pub drain_ms: f64,
}
impl Default for PaceOptions {
    fn default() -> Self {
        PaceOptions { cps: 40.0, max_lag_ms: 1500.0, drain_ms: 1000.0 }
    }
}
#[derive(Debug, Clone)]
pub struct Pacer {
    queue: String,
}
impl Pacer {
    pub fn new(_o: PaceOptions) -> Pacer {
        Pacer { queue: String::new() }
    }
    pub fn push(&mut self, t: &str) {
        self.queue.push_str(t)
    }
    pub fn end(&mut self) {}
    pub fn tick_into(&mut self, _now: f64, out: &mut String) {
        out.push_str(&self.queue);
        self.queue.clear()
    }
    pub fn pending(&self) -> usize {
        self.queue.chars().count()
    }
    pub fn skip_into(&mut self, out: &mut String) {
        out.push_str(&self.queue);
        self.queue.clear()
    }
}
