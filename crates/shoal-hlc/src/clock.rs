//! The thread-safe HLC and its injectable physical clock sources.
//!
//! [`Clock`] wraps `hybrid_clocks::OffsetLimiter` (the HLC algorithm plus the max-offset check)
//! behind a mutex, fed by a [`PhysicalClock`]. The mutex is held only for the few instructions
//! of one `now` or `update`; no I/O happens under it.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hybrid_clocks::{ClockSource, OffsetLimiter};

use crate::{Error, Result, Timestamp};

/// The default maximum clock offset tolerated between nodes (design §4).
pub const DEFAULT_MAX_OFFSET: Duration = Duration::from_millis(500);

/// The largest logical counter accepted as is from a remote reading (see [`Clock::update`]).
const LOGICAL_CEILING: u32 = u32::MAX / 2;

/// A source of physical time in nanoseconds since the Unix epoch.
pub trait PhysicalClock: Send + Sync + fmt::Debug {
    /// Returns the current physical time in nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;

    /// Moves a simulated clock forward to `nanos` instead of letting a caller wait for it;
    /// returns false for a real clock, whose time cannot be skipped.
    fn skip_to(&self, nanos: u64) -> bool {
        let _ = nanos;
        false
    }
}

/// The system's real-time clock, shifted by an offset that can be changed at run time.
///
/// The offset exists for fault injection: the Jepsen harness bumps and strobes one node's clock
/// through it. It is zero unless set.
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_nanos: AtomicI64,
}

impl SystemClock {
    /// Returns a system clock with no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the offset added to every reading, in nanoseconds (negative moves the clock back).
    pub fn set_offset_nanos(&self, offset: i64) {
        self.offset_nanos.store(offset, Ordering::SeqCst);
    }

    /// Returns the current offset in nanoseconds.
    pub fn offset_nanos(&self) -> i64 {
        self.offset_nanos.load(Ordering::SeqCst)
    }
}

impl PhysicalClock for SystemClock {
    fn now_nanos(&self) -> u64 {
        // A system clock before 1970 reads as zero; the HLC stays monotonic regardless.
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let real = u64::try_from(real).unwrap_or(u64::MAX);
        real.saturating_add_signed(self.offset_nanos())
    }
}

/// A physical clock that only moves when told to, for tests and simulation.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// Returns a manual clock reading `nanos`.
    pub fn new(nanos: u64) -> Self {
        ManualClock { nanos: AtomicU64::new(nanos) }
    }

    /// Sets the reading (it may move backwards, like a badly behaved real clock).
    pub fn set(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::SeqCst);
    }

    /// Moves the reading forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl PhysicalClock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }

    /// Waiting in simulated time is moving it.
    fn skip_to(&self, nanos: u64) -> bool {
        self.nanos.fetch_max(nanos, Ordering::SeqCst);
        true
    }
}

/// Adapts a [`PhysicalClock`] to `hybrid_clocks::ClockSource`.
#[derive(Debug)]
struct Source(Arc<dyn PhysicalClock>);

impl ClockSource for Source {
    type Time = u64;
    type Delta = u64;

    fn now(&mut self) -> hybrid_clocks::Result<u64> {
        Ok(self.0.now_nanos())
    }
}

/// A thread-safe hybrid logical clock.
pub struct Clock {
    hlc: Mutex<OffsetLimiter<Source>>,
    physical: Arc<dyn PhysicalClock>,
    max_offset: Duration,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("physical", &self.physical)
            .field("max_offset", &self.max_offset)
            .finish()
    }
}

impl Clock {
    /// Returns a clock reading `physical` that rejects remote readings more than `max_offset`
    /// ahead.
    pub fn new(physical: Arc<dyn PhysicalClock>, max_offset: Duration) -> Self {
        let max_offset_nanos = u64::try_from(max_offset.as_nanos()).unwrap_or(u64::MAX);
        let hlc = hybrid_clocks::Clock::new(Source(physical.clone()))
            .expect("Shoal's clock sources never fail")
            .with_max_diff(max_offset_nanos);
        Clock { hlc: Mutex::new(hlc), physical, max_offset }
    }

    /// Returns a clock on the system's real-time clock with the default maximum offset, and the
    /// handle to skew it.
    pub fn system() -> (Self, Arc<SystemClock>) {
        let physical = Arc::new(SystemClock::new());
        (Clock::new(physical.clone(), DEFAULT_MAX_OFFSET), physical)
    }

    /// Returns the configured maximum offset.
    pub fn max_offset(&self) -> Duration {
        self.max_offset
    }

    /// Returns the physical clock's reading as a timestamp with logical zero. It does not
    /// advance the HLC.
    pub fn physical_now(&self) -> Timestamp {
        Timestamp::new(self.physical.now_nanos(), 0)
    }

    /// Returns how long until the physical clock passes `ts`, or `None` if it has (a
    /// simulated clock is moved there at once). A transaction that committed above its
    /// gateway's clock waits this long before acknowledging, so that every transaction that
    /// starts afterwards, anywhere, has `ts` below its uncertainty limit ("commit wait").
    pub fn until(&self, ts: Timestamp) -> Option<Duration> {
        let now = self.physical.now_nanos();
        if now > ts.wall || self.physical.skip_to(ts.wall.saturating_add(1)) {
            return None;
        }
        Some(Duration::from_nanos(ts.wall - now + 1))
    }

    /// Returns a timestamp strictly greater than every timestamp this clock returned or
    /// accepted before.
    pub fn now(&self) -> Timestamp {
        let ts = self.lock().now().expect("Shoal's clock sources never fail");
        Timestamp::new(ts.time, ts.count)
    }

    /// Accepts a remote clock reading, so that every later [`Clock::now`] is greater than it.
    ///
    /// Fails with [`Error::RemoteClockAhead`], leaving the clock unchanged, when `remote` is
    /// more than `max_offset` ahead of the local physical clock.
    pub fn update(&self, remote: Timestamp) -> Result<()> {
        // `hybrid-clocks` adds one to the logical counter unchecked. A reading whose counter is
        // near the top is replaced by the next wall tick, a slightly later reading: every later
        // `now()` is still after `remote`, and the counter cannot overflow.
        let accepted = if remote.logical > LOGICAL_CEILING {
            Timestamp::new(remote.wall.saturating_add(1), 0)
        } else {
            remote
        };
        let reading =
            hybrid_clocks::Timestamp { epoch: 0, time: accepted.wall, count: accepted.logical };
        match self.lock().observe(&reading) {
            Ok(()) => Ok(()),
            Err(hybrid_clocks::Error::OffsetTooGreat) => {
                let local = self.physical_now();
                Err(Error::RemoteClockAhead {
                    remote,
                    local,
                    ahead: Duration::from_nanos(remote.wall.saturating_sub(local.wall)),
                    max_offset: self.max_offset,
                })
            }
            Err(err) => unreachable!("Shoal's clock sources never fail: {err}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetLimiter<Source>> {
        // The guarded state is two integers updated atomically under the lock, so a panic
        // elsewhere cannot leave it torn: recover from poisoning.
        self.hlc.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn manual(nanos: u64) -> (Clock, Arc<ManualClock>) {
        let physical = Arc::new(ManualClock::new(nanos));
        (Clock::new(physical.clone(), DEFAULT_MAX_OFFSET), physical)
    }

    #[test]
    fn now_follows_physical_time() {
        let (clock, physical) = manual(10 * SEC);
        assert_eq!(clock.now().wall, 10 * SEC);
        physical.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Timestamp::new(11 * SEC, 0), "a new wall reading resets logical");
    }

    #[test]
    fn now_ticks_logical_when_physical_stalls_or_steps_back() {
        let (clock, physical) = manual(10 * SEC);
        let first = clock.now();
        assert_eq!(clock.now(), Timestamp::new(10 * SEC, first.logical + 1));
        physical.set(5 * SEC);
        assert_eq!(clock.now(), Timestamp::new(10 * SEC, first.logical + 2), "never steps back");
    }

    #[test]
    fn update_moves_clock_past_remote_reading() {
        let (clock, _physical) = manual(10 * SEC);
        let remote = Timestamp::new(10 * SEC + 300_000_000, 7);
        clock.update(remote).unwrap();
        let now = clock.now();
        assert!(now > remote, "{now} must be after {remote}");
        // An older remote reading does not move the clock back.
        clock.update(Timestamp::new(SEC, 0)).unwrap();
        assert!(clock.now() > now);
    }

    #[test]
    fn update_rejects_reading_beyond_max_offset() {
        let (clock, _physical) = manual(10 * SEC);
        let before = clock.now();
        let remote = Timestamp::new(10 * SEC + 600_000_000, 0);
        let err = clock.update(remote).unwrap_err();
        assert_eq!(
            err,
            Error::RemoteClockAhead {
                remote,
                local: Timestamp::new(10 * SEC, 0),
                ahead: Duration::from_millis(600),
                max_offset: DEFAULT_MAX_OFFSET,
            }
        );
        assert!(err.to_string().contains("more than the maximum offset 500ms"), "{err}");
        // The clock was not forwarded to the rejected reading.
        assert!(clock.now() < remote);
        assert!(clock.now() > before);
        // Exactly max_offset ahead is still accepted.
        clock.update(Timestamp::new(10 * SEC + 500_000_000, 0)).unwrap();
    }

    #[test]
    fn update_with_saturated_logical_counter_stays_monotonic() {
        let (clock, _physical) = manual(10 * SEC);
        let remote = Timestamp::new(10 * SEC, u32::MAX);
        clock.update(remote).unwrap();
        let first = clock.now();
        assert!(first > remote, "{first} must be after {remote}");
        assert!(clock.now() > first);
        clock.update(Timestamp::new(first.wall, u32::MAX - 1)).unwrap();
        assert!(clock.now() > Timestamp::new(first.wall, u32::MAX - 1));
    }

    #[test]
    fn system_clock_offset_skews_readings() {
        let (clock, physical) = Clock::system();
        let before = clock.physical_now();
        physical.set_offset_nanos(3_600 * SEC as i64);
        let after = clock.physical_now();
        assert!(after.wall >= before.wall + 3_600 * SEC);
        assert!(clock.now() >= after);
    }

    #[test]
    fn clock_is_shared_across_threads() {
        let (clock, _physical) = manual(SEC);
        let clock = Arc::new(clock);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = clock.clone();
                std::thread::spawn(move || (0..1000).map(|_| clock.now()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<Timestamp> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "every timestamp is unique");
    }
}
