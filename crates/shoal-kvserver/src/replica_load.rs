//! The load of a range replica: requests per second over a sliding window, and a sample of the
//! keys requested, from which the split queue picks a key that halves the load and the status
//! API names the hottest keys.
//!
//! ```text
//!   record(k) ─▶ bucket of the current second += 1      qps = Σ buckets in window / window
//!            └─▶ reservoir of SAMPLE_SIZE keys (this window), the previous window's kept
//!   split_key(): median of the sampled keys ── half the sampled requests fall below it
//!   hottest_keys(n): the sampled keys that occur most often
//! ```
//!
//! A reservoir keeps every request equally likely to be sampled, so the median of the sample
//! estimates the key that splits the requests (not the keys) in two. Time and randomness come
//! from the caller (an `Instant` per call, a seed at creation), so tests drive both.
//!
//! # Out of scope
//!
//! Weighting requests by cost (a scan counts as one request at its first key), and CPU time.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use shoal_keys::Key;

/// Keys sampled per window.
pub const SAMPLE_SIZE: usize = 128;
/// The resolution of the request counter.
const BUCKET: Duration = Duration::from_secs(1);

/// Requests per second and sampled keys of one replica.
#[derive(Debug)]
pub struct LoadTracker {
    window: Duration,
    started: Instant,
    /// Per-second request counts, oldest first: (bucket start, count).
    buckets: VecDeque<(Instant, u64)>,
    window_start: Instant,
    current: Vec<Key>,
    seen_in_window: u64,
    previous: Vec<Key>,
    rng: u64,
}

impl LoadTracker {
    /// Returns a tracker averaging over `window`, sampling with randomness from `seed`.
    pub fn new(window: Duration, seed: u64, now: Instant) -> Self {
        LoadTracker {
            window: window.max(BUCKET),
            started: now,
            buckets: VecDeque::new(),
            window_start: now,
            current: Vec::with_capacity(SAMPLE_SIZE),
            seen_in_window: 0,
            previous: Vec::new(),
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(start, _)) = self.buckets.front() {
            if now.saturating_duration_since(start) < self.window {
                break;
            }
            self.buckets.pop_front();
        }
        if now.saturating_duration_since(self.window_start) >= self.window {
            self.previous = std::mem::take(&mut self.current);
            self.seen_in_window = 0;
            self.window_start = now;
        }
    }

    /// Records one request for `key` at `now`.
    pub fn record(&mut self, key: &Key, now: Instant) {
        self.expire(now);
        match self.buckets.back_mut() {
            Some((start, count)) if now.saturating_duration_since(*start) < BUCKET => *count += 1,
            _ => self.buckets.push_back((now, 1)),
        }
        self.seen_in_window += 1;
        if self.current.len() < SAMPLE_SIZE {
            self.current.push(key.clone());
        } else {
            let slot = self.next_random() % self.seen_in_window;
            if let Some(kept) = self.current.get_mut(slot as usize) {
                *kept = key.clone();
            }
        }
    }

    /// Returns the requests per second over the window ending at `now` (over the time since
    /// creation while that is shorter).
    pub fn qps(&mut self, now: Instant) -> f64 {
        self.expire(now);
        let total: u64 = self.buckets.iter().map(|(_, count)| count).sum();
        let span = now.saturating_duration_since(self.started).min(self.window);
        total as f64 / span.max(BUCKET).as_secs_f64()
    }

    /// Returns whether the tracker has watched a whole window: load-based decisions wait for
    /// it, so a burst right after a split does not split again at once.
    pub fn has_full_window(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= self.window
    }

    fn samples(&self) -> Vec<Key> {
        let mut samples: Vec<Key> = self.previous.iter().chain(&self.current).cloned().collect();
        samples.sort();
        samples
    }

    /// Returns the median sampled key: about half the requests were for keys below it. `None`
    /// without samples.
    pub fn split_key(&self) -> Option<Key> {
        let samples = self.samples();
        samples.get(samples.len() / 2).cloned()
    }

    /// Returns up to `n` sampled keys with how often each was sampled, most frequent first.
    pub fn hottest_keys(&self, n: usize) -> Vec<(Key, u64)> {
        let mut counts: BTreeMap<Key, u64> = BTreeMap::new();
        for key in self.samples() {
            *counts.entry(key).or_default() += 1;
        }
        let mut hottest: Vec<(Key, u64)> = counts.into_iter().collect();
        hottest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hottest.truncate(n);
        hottest
    }

    /// Forgets everything (the range changed shape), starting a new window at `now`.
    pub fn reset(&mut self, now: Instant) {
        let rng = self.rng;
        *self = LoadTracker::new(self.window, rng, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        Key::from(format!("k{i:05}"))
    }

    #[test]
    fn qps_averages_over_the_window_and_forgets_what_left_it() {
        let t0 = Instant::now();
        let mut load = LoadTracker::new(Duration::from_secs(10), 7, t0);
        for i in 0..1000u64 {
            load.record(&key(i), t0 + Duration::from_millis(i * 10)); // 100/s for 10 s
        }
        let at = t0 + Duration::from_secs(10);
        assert!(load.has_full_window(at));
        let qps = load.qps(at);
        assert!((90.0..=110.0).contains(&qps), "{qps}");
        assert_eq!(load.qps(t0 + Duration::from_secs(30)), 0.0);
    }

    #[test]
    fn the_split_key_halves_the_requests_not_the_keys() {
        let t0 = Instant::now();
        let mut load = LoadTracker::new(Duration::from_secs(10), 42, t0);
        // 90% of requests on keys 0..100, the rest spread over 0..10000.
        for i in 0..20_000u64 {
            let k = if i % 10 == 0 { (i * 7919) % 10_000 } else { (i * 31) % 100 };
            load.record(&key(k), t0 + Duration::from_micros(i * 100));
        }
        let split = load.split_key().unwrap();
        assert!(split > key(0) && split < key(100), "{split}");
        let hottest = load.hottest_keys(3);
        assert_eq!(hottest.len(), 3);
        assert!(hottest.iter().all(|(k, _)| *k < key(100)), "{hottest:?}");
        assert!(hottest[0].1 >= hottest[2].1);
        load.reset(t0 + Duration::from_secs(3));
        assert_eq!(load.split_key(), None);
    }
}
